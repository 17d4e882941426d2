"""The shared core below every app: the settings object and the web plumbing."""
