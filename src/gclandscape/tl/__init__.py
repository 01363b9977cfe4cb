"""gclandscape.tl (filled by its issue)."""
