"""Simulated regional systems: units, inmates with ground truth, and publishers that act like real UPTs."""
