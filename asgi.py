"""ASGI entry point for the voice service: `hypercorn asgi:app`."""

from voice import create_app

app = create_app()
