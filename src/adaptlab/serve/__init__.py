"""The OpenAI-compatible server: create_app(config) in app.py."""
