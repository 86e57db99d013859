"""Consistency levels turned into what a set of replies must hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.consistency import ConsistencyLevel, parse_level, requirement
from dynamo_toolkit.errors import ConfigurationError

#: Two datacenters of three replicas each (Cassandra's {dc1: 3, dc2: 3}).
SIX = {"dc1": 3, "dc2": 3}


def test_levels_are_parsed_by_name_or_count() -> None:
    assert parse_level("local_quorum") is ConsistencyLevel.LOCAL_QUORUM
    assert parse_level("each-quorum") is ConsistencyLevel.EACH_QUORUM
    assert parse_level("2") == 2
    assert parse_level(3) == 3
    with pytest.raises(ConfigurationError, match="unknown consistency level 'some'"):
        parse_level("some")
    with pytest.raises(ConfigurationError, match="at least 1"):
        parse_level(0)


@pytest.mark.parametrize(
    ("level", "total", "per_datacenter", "counted"),
    [
        ("ONE", 1, {}, None),
        ("TWO", 2, {}, None),
        ("THREE", 3, {}, None),
        ("QUORUM", 4, {}, None),
        ("ALL", 6, {}, None),
        ("LOCAL_ONE", 1, {}, {"dc1"}),
        ("LOCAL_QUORUM", 2, {}, {"dc1"}),
        ("EACH_QUORUM", 4, {"dc1": 2, "dc2": 2}, None),
        (5, 5, {}, None),
    ],
)
def test_each_level_of_two_datacenters_of_three(
    level: str | int, total: int, per_datacenter: dict[str, int], counted: set[str] | None
) -> None:
    needed = requirement(level, SIX, "dc1")
    assert needed.total == total
    assert dict(needed.per_datacenter) == per_datacenter
    assert needed.counted == (frozenset(counted) if counted is not None else None)


def test_local_quorum_ignores_the_other_datacenter_and_each_quorum_needs_both() -> None:
    local = requirement("LOCAL_QUORUM", SIX, "dc1")
    assert local.met({"dc1": 2})
    assert not local.met({"dc1": 1, "dc2": 3})  # remote replies never make up for local ones
    each = requirement("EACH_QUORUM", SIX, "dc1")
    assert each.met({"dc1": 2, "dc2": 2})
    assert not each.met({"dc1": 3, "dc2": 1})
    assert each.describe({"dc1": 3, "dc2": 1}) == "EACH_QUORUM not reached: 1 of 2 in dc2"
    assert local.describe({"dc2": 3}) == "LOCAL_QUORUM not reached: 0 of 2 in dc1"
    assert requirement("QUORUM", SIX).describe({"dc1": 3}) == "QUORUM not reached: 3 of 4 in all"


def test_the_replicas_may_be_given_one_datacenter_each() -> None:
    assert requirement("EACH_QUORUM", ["a", "a", "b"]).per_datacenter == {"a": 2, "b": 1}


def test_levels_no_replica_set_can_meet_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="LOCAL_QUORUM: the coordinator's datacenter dc3"):
        requirement("LOCAL_QUORUM", SIX, "dc3")
    with pytest.raises(ConfigurationError, match="THREE needs 3 replicas; the key has 2"):
        requirement("THREE", {"": 2})
    with pytest.raises(ConfigurationError, match="7 replies asked of a key with 6"):
        requirement(7, SIX)


@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 5), min_size=1),
    st.sampled_from(list(ConsistencyLevel)),
)
def test_every_replica_answering_meets_any_level_that_can_be_met(
    replicas: dict[str, int], level: ConsistencyLevel
) -> None:
    local = sorted(replicas)[0]
    try:
        needed = requirement(level, replicas, local)
    except ConfigurationError:
        return  # THREE with fewer than 3 replicas, say
    assert needed.met(replicas)
    assert not needed.met({})
    # Majorities of any two reply sets overlap: QUORUM reads see QUORUM writes.
    if level is ConsistencyLevel.QUORUM:
        assert 2 * needed.total > sum(replicas.values())
