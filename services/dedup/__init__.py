"""Dedup: duplicate NIKs, duplicate biometrics and demographic links."""
