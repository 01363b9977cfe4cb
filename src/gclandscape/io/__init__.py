"""gclandscape.io (filled by its issue)."""
