"""Code shared by the services: contracts, topology, settings, logging, database, NIK rules."""
