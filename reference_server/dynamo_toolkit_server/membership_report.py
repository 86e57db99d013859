"""One node's view of the membership, as status pages and admin commands show it."""

from __future__ import annotations

from typing import Any

from dynamo_toolkit.node import Node

__all__ = ["membership_report"]


def membership_report(node: Node) -> dict[str, Any]:
    """Epochs, owners, every member's record (with its datacenter and rack, empty
    when undeclared), and this node's handoff progress."""
    manager = node.membership
    state = manager.state
    return {
        "node": node.node_id,
        "datacenter": node.info.datacenter,
        "rack": node.info.rack,
        "epoch": state.epoch,
        "serving_epoch": manager.serving_epoch,
        "owners": list(state.owners),
        "proposed_owners": list(state.proposed_owners()),
        "owner": manager.is_owner(),
        "members": [
            {
                "id": member.node_id,
                "address": member.info.address,
                "datacenter": member.info.datacenter,
                "rack": member.info.rack,
                "status": member.status.value,
                "incarnation": member.incarnation,
                "ready_epoch": member.ready_epoch,
            }
            for _, member in sorted(state.members.items())
        ],
        "handoff": manager.progress.to_json(),
    }
