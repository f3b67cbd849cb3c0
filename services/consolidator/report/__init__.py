"""A consolidation run's report rendered for people: CSV files, a printable HTML page, a terminal summary."""
