"""gclandscape.datasets (filled by its issue)."""
