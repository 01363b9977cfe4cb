"""gclandscape.landscape (filled by its issue)."""
