"""Built-in resolution strategies, one module per strategy."""
