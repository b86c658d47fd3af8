"""The learning loop: stored labels turned into training examples with their source weights and poisoning
caps, the global retrain with its champion/challenger comparison, and the per-site corrections. It
may import `core`, `policy`, `store` and the top-level modules; never `checking`, `web` or `cli`.
"""
