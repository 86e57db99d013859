"""``dtk bench datacenters``: latency per consistency level against the WAN RTT.

Two datacenters of three nodes, six replicas, small runs on virtual time:
the checks are the shape the suite's figures rest on (local levels do not
pay the WAN, cross-datacenter ones pay about one RTT) and determinism.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from dynamo_toolkit_lab.datacenters import command, quantile, wan_config
from testsupport.lab import run_suite

ARGS = ("--requests", "20", "--rtt-ms", "10,100", "--seed", "3")


@pytest.fixture(scope="module")
def payload() -> dict[str, Any]:
    return run_suite(command, *ARGS)


def _cells(payload: dict[str, Any]) -> dict[tuple[float, str], dict[str, Any]]:
    return {(cell["rtt_ms"], cell["level"]): cell for cell in payload["results"]}


def test_local_levels_do_not_grow_with_the_rtt(payload: dict[str, Any]) -> None:
    cells = _cells(payload)
    assert len(cells) == 10
    for level in ("ONE", "LOCAL_QUORUM"):
        for kind in ("write_ms", "read_ms"):
            near, far = cells[(10.0, level)][kind], cells[(100.0, level)][kind]
            assert far["p99"] < 2.0  # intra-datacenter delays only (<= 1 ms each way)
            assert abs(far["p99"] - near["p99"]) < 1.0


def test_cross_datacenter_levels_pay_about_one_rtt(payload: dict[str, Any]) -> None:
    cells = _cells(payload)
    for rtt in (10.0, 100.0):
        for kind in ("write_ms", "read_ms"):
            # 2 of dc2's 3 replicas: about the median round trip, RTT (20 draws).
            assert cells[(rtt, "EACH_QUORUM")][kind]["p50"] >= 0.85 * rtt
            for level in ("QUORUM", "EACH_QUORUM", "ALL"):
                latency = cells[(rtt, level)][kind]
                # A lognormal one-way delay of median RTT/2, p99 1.5x: QUORUM
                # waits for the fastest of three remote replicas, ALL the slowest.
                assert 0.7 * rtt <= latency["p50"] <= 1.6 * rtt + 2.0, (rtt, level, latency)
            assert cells[(rtt, "QUORUM")][kind]["p50"] <= cells[(rtt, "ALL")][kind]["p50"]


def test_cross_datacenter_messages_per_request(payload: dict[str, Any]) -> None:
    # No relays yet: dc1's coordinator sends each of dc2's three replicas the
    # write (or read) itself, and each answers: 6 messages cross, at any level.
    for cell in payload["results"]:
        assert cell["cross_dc_messages_per_write"] == 6.0
        assert cell["cross_dc_messages_per_read"] == 6.0


def test_same_seed_same_json(payload: dict[str, Any]) -> None:
    assert run_suite(command, *ARGS) == payload
    assert run_suite(command, "--requests", "20", "--rtt-ms", "10,100", "--seed", "4") != payload


def test_on_a_constant_wan_each_quorum_takes_at_least_one_rtt() -> None:
    result = run_suite(
        command,
        "--requests",
        "5",
        "--rtt-ms",
        "40",
        "--wan-latency",
        "constant",
        "--levels",
        "local_quorum,each_quorum",
    )
    cells = _cells(result)
    assert set(cells) == {(40.0, "LOCAL_QUORUM"), (40.0, "EACH_QUORUM")}
    for kind in ("write_ms", "read_ms"):
        each = cells[(40.0, "EACH_QUORUM")][kind]
        assert 40.0 <= each["p50"] <= each["p99"] <= 42.0  # one RTT plus local hops
        assert cells[(40.0, "LOCAL_QUORUM")][kind]["p99"] < 2.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rtt-ms", "0"), "positive"),
        (("--levels", "TWO_AND_A_HALF"), "unknown"),
        (("--requests", "0"), "--requests"),
        (("--p99-ratio", "1"), "--p99-ratio"),
    ],
)
def test_bad_options_are_refused(args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(command, list(args))
    assert result.exit_code != 0
    assert message in result.output


def test_helpers() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([5.0], 0.99) == 5.0
    wan = wan_config(80.0)
    assert wan["links"][0]["median_ms"] == 40.0
    assert wan["links"][0]["p99_ms"] == 60.0
    assert wan_config(80.0, "constant")["links"][0] == {
        "between": ["dc1", "dc2"],
        "latency": "constant",
        "ms": 40.0,
    }
