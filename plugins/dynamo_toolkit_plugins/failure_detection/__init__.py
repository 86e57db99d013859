"""Built-in failure detection strategies, one module per strategy."""
