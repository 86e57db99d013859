"""The strategy lab: benchmark suites that compare one component's strategies.

Each suite is a module of :mod:`dynamo_toolkit.lab` exposing a click command
(``command``) that ``dtk bench`` mounts; suites share :mod:`dynamo_toolkit.lab.output`
to print a table, emit JSON and draw a plot the same way.
"""

__all__: list[str] = []
