"""The reference server: networked nodes, front-ends and clients."""
