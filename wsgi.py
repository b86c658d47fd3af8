"""WSGI entry point: `gunicorn wsgi:app` (or `moderation serve`, which runs gunicorn for you)."""

from moderation.web.serving import wsgi_app

app = wsgi_app()
