"""Built-in anti entropy strategies, one module per strategy."""
