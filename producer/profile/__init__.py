"""Profiles: loading, schema."""
