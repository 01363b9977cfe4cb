"""gclandscape.latent (filled by its issue)."""
