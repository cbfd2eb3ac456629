"""vnas package."""
