"""gclandscape.pl (filled by its issue)."""
