"""The test world, shipped in the package: virtual time and conformance suites.

``dynamo_toolkit.testing.conformance`` needs pytest; this module does not.
"""

from dynamo_toolkit.testing.virtual_time import VirtualClock, VirtualTimeLoop, run_virtual

__all__ = ["VirtualClock", "VirtualTimeLoop", "run_virtual"]
