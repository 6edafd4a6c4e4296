"""Training code for models shipped with Nuance Studio (not installed with the app)."""
