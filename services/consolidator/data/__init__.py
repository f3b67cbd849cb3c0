"""Versioned reference data of the consolidator, shipped inside the package."""
