"""Built-in storage strategies, one module per strategy."""
