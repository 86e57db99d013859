"""Built-in transport strategies, one module per strategy."""
