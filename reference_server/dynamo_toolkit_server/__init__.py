"""The reference server: networked nodes, front-ends and clients (work in progress)."""
