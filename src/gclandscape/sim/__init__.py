"""gclandscape.sim (filled by its issue)."""
