"""gclandscape.engine (filled by its issue)."""
