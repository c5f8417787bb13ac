"""Measurements: one module per measurement, each a named plug-in a campaign step refers to."""
