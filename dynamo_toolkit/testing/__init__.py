"""The test world, shipped in the package: virtual time and conformance suites.

Virtual time itself lives in :mod:`dynamo_toolkit.virtual_time` (the demo
and the lab run on it too); it is re-exported here for tests.
``dynamo_toolkit.testing.conformance`` needs pytest; this module does not.
"""

from dynamo_toolkit.virtual_time import VirtualClock, VirtualTimeLoop, run_virtual

__all__ = ["VirtualClock", "VirtualTimeLoop", "run_virtual"]
