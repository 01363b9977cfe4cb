"""gclandscape.pp (filled by its issue)."""
