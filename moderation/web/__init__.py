"""The Flask application and everything that speaks HTTP: the app factory (`app`), the JSON API and its
OpenAPI document (`api`, `openapi`), the Akismet protocol (`akismet`), the review UI (`review/`),
callbacks (`webhooks`), Prometheus metrics (`metrics`), the per-worker model holder and gunicorn
(`model_holder`, `serving`). It may import every part but `cli`; nothing but `cli` imports it.
"""
