"""Market data read from a valuation's `<market>` element: curves, FX spots, equities with their vols."""
