"""Built-in replication strategies, one module per strategy."""
