"""Monitor: live status for supervisors, scoped to what each of them may see."""
