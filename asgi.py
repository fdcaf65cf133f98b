"""ASGI entry point for the voice service (`python -m voice.server` serves it with uvicorn)."""

from voice import create_app

app = create_app()
