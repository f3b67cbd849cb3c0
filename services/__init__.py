"""The four services of the suite."""
