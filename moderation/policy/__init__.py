"""What to do with a score: the site's policy (`decision`: thresholds, bands, precedence of rules) and the
rules beside the model (`rules`: honeypot, too fast, links, block and allow lists, and the judgement of
the history counts). No SQL and no requests: it may import `core`, `moderation.comment` and
`moderation.errors`.
"""
