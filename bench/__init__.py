"""Benchmarks of the vnml mesh (`make bench`): figures, not pass/fail tests."""
