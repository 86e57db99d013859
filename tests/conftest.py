"""Test-wide settings: hypothesis runs derandomised so every run is the same."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dtk",
    derandomize=True,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("dtk")
