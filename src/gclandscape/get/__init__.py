"""gclandscape.get (filled by its issue)."""
