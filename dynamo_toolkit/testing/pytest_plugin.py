"""A pytest plugin: ``async def`` tests that run on virtual time, without a wrapper.

Installed with dynamo-toolkit (entry point ``pytest11``), it acts only where
asked: on a test marked ``@pytest.mark.virtual_time``, or on every
``async def`` test when the ini option ``virtual_time_mode = true`` is set
(this project sets it). Each such test runs to completion on a fresh
:class:`~dynamo_toolkit.virtual_time.VirtualTimeLoop`, as
:func:`~dynamo_toolkit.virtual_time.run_virtual` would run it: sleeps and
timeouts take no real time, and a test that can never progress fails with
:class:`~dynamo_toolkit.virtual_time.DeadlockError` instead of hanging.
"""

from __future__ import annotations

import inspect

import pytest

from dynamo_toolkit.virtual_time import run_virtual

__all__ = ["pytest_addoption", "pytest_configure", "pytest_pyfunc_call"]

_MARKER = "virtual_time"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``virtual_time_mode`` ini option."""
    parser.addini(
        "virtual_time_mode",
        "run every 'async def' test on a fresh virtual-time loop (dynamo_toolkit)",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``virtual_time`` marker."""
    config.addinivalue_line(
        "markers", f"{_MARKER}: run this 'async def' test on a fresh virtual-time loop"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a virtual-time test's coroutine on its own loop; leave other tests alone."""
    function = pyfuncitem.obj
    marked = pyfuncitem.get_closest_marker(_MARKER) is not None
    is_async = inspect.iscoroutinefunction(function)
    if not marked and not (is_async and pyfuncitem.config.getini("virtual_time_mode")):
        return None
    if not is_async:
        pytest.fail(f"{pyfuncitem.name} is marked {_MARKER} but is not an 'async def' test")
    names = pyfuncitem._fixtureinfo.argnames
    run_virtual(function(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
