"""The strategy lab: benchmark suites that compare one component's strategies.

A layer above the kernel, the built-in plugins and the reference server: it
imports them, nothing imports it. Each suite is a module exposing a click
command (``command``) that ``dtk bench`` mounts through the lab's plugin
(:mod:`dynamo_toolkit_lab.plugin`); suites share :mod:`dynamo_toolkit_lab.output`
to print a table, emit JSON and draw a plot the same way.
"""

__all__: list[str] = []
