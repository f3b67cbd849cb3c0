"""Operations: broker and database provisioning, the local supervisor, the container image."""
