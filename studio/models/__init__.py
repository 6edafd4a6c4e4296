"""Devices, dtypes, model loading and model memory (torch lives here, imported lazily)."""
