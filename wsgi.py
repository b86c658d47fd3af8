"""WSGI entry point: `gunicorn wsgi:app` (or `moderation serve`, which runs gunicorn for you)."""

from moderation.web.app import create_app

app = create_app()
