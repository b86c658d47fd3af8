"""The one path every checked comment takes, whichever door it came through (JSON API, Akismet protocol,
bulk re-check): prepare the comment once, count its history in the store, score it, apply the policy,
store it with its verdict before anyone answers. It may import `core`, `policy`, `store` and the
top-level modules; never `learning`, `web` or `cli`.
"""
