"""vnclient package."""
