"""Self-hosted comment moderation: an explainable spam classifier behind a JSON and an Akismet-compatible API.

Nothing here runs at import time: no model loading, no disk or network access.
"""

__version__ = "0.1.0"
