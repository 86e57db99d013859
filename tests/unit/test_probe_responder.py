"""The probe responder the node and the lab's SWIM simulation share."""

from __future__ import annotations

import pytest

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.messages import Ack, Ping, PingAck, PingReq
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.probe_responder import ProbeResponder

REGISTRY = load_plugins().registry


def _responder(
    detector_name: str, reply: object, heard: list[str], **params: object
) -> ProbeResponder:
    detector = REGISTRY.create("failure_detector", detector_name, **params)

    async def ping(target: str, timeout: float) -> object:
        return reply

    return ProbeResponder(lambda: detector, lambda: 10.0, ping, heard.append)


async def test_a_passive_detector_answers_incarnation_zero() -> None:
    responder = _responder("timeout", PingAck(5), [])
    assert await responder.answer("n2", Ping()) == PingAck(0)


async def test_an_indirect_probe_relays_the_answer_and_reports_the_target() -> None:
    heard: list[str] = []
    responder = _responder("timeout", PingAck(5), heard)
    assert await responder.answer("n2", PingReq("n3", 0.5)) == PingAck(5)
    assert heard == ["n3"]


async def test_an_indirect_probe_refuses_a_reply_that_is_no_ack() -> None:
    responder = _responder("timeout", Ack(), [])
    with pytest.raises(DynamoError, match="n3 answered a ping with Ack"):
        await responder.answer("n2", PingReq("n3", 0.5))
