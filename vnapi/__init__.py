"""vnapi package."""
