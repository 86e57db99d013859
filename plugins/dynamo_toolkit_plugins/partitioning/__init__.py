"""Built-in partitioning strategies, one module per strategy."""
