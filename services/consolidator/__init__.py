"""Consolidator: central records, the e-KTP lifecycle and the daily consolidation run."""
