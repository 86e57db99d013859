"""``dtk bench detectors``: detection, mistakes and cost of the failure detectors.

Small clusters and short runs on virtual time, so each test takes well under
a few seconds; the checks are the properties the suite's figures rest on.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from dynamo_toolkit.messages import Heartbeat
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit_lab import detector_sim
from dynamo_toolkit_lab.detector_sim import (
    Normal,
    Scenario,
    Setting,
    delay_preset,
    onset,
    run_passive,
    run_swim,
)
from dynamo_toolkit_lab.detectors import command, load_delay
from dynamo_toolkit_lab.traffic import frame_bytes
from dynamo_toolkit_lab.wars import Constant
from testsupport.lab import run_suite

FIELDS = {
    "detector",
    "label",
    "knob",
    "value",
    "params",
    "members",
    "trials",
    "observations",
    "detected_fraction",
    "detection_mean_s",
    "detection_p50_s",
    "detection_p99_s",
    "detection_max_s",
    "first_detection_mean_s",
    "mistakes",
    "pair_hours",
    "mistakes_per_pair_hour",
    "suspected_fraction",
    "mistake_duration_mean_s",
    "msgs_per_member_s",
    "bytes_per_member_s",
}
PASSIVE_FIELDS = FIELDS | {"mistakes_per_heartbeat"}
SWIM_FIELDS = FIELDS | {
    "first_suspected_mean_s",
    "probe_gap_samples",
    "probe_gap_mean_periods",
    "probed_within_one_period",
}
SMALL = [
    "--members",
    "6",
    "--warmup",
    "5",
    "--duration",
    "40",
    "--trials",
    "2",
    "--swim-trials",
    "1",
    "--timeouts",
    "0.75,2",
    "--phi-thresholds",
    "1,8",
    "--swim-suspicion-timeouts",
    "1,4",
]


def run(*args: str) -> dict[str, Any]:
    return run_suite(command, *args)


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_plugins().registry


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return run(*SMALL)


def scenario(members: int = 6, loss: float = 0.0, **kwargs: Any) -> Scenario:
    delay = kwargs.pop("delay", Constant(1.0))
    return Scenario(members=members, delay=delay, loss=loss, **kwargs)


def swim(suspicion: float) -> Setting:
    return Setting(
        "swim", "swim", "suspicion_timeout_s", suspicion, {"suspicion_timeout": suspicion}
    )


def test_json_schema(small: dict[str, Any]) -> None:
    assert set(small) == {
        "delay",
        "loss",
        "heartbeat_interval_s",
        "warmup_s",
        "duration_s",
        "max_wait_s",
        "trials",
        "swim_trials",
        "seed",
        "results",
        "wall_s",
    }
    assert small["delay"]["name"] == "lan"
    labels = [r["label"] for r in small["results"]]
    assert labels == [
        "timeout",
        "timeout",
        "phi-accrual (exponential)",
        "phi-accrual (exponential)",
        "phi-accrual (normal)",
        "phi-accrual (normal)",
        "swim",
        "swim",
    ]
    for row in small["results"]:
        expected = SWIM_FIELDS if row["detector"] == "swim" else PASSIVE_FIELDS
        assert set(row) == expected
        trials = 1 if row["detector"] == "swim" else 2
        assert row["members"] == 6
        assert row["trials"] == trials
        assert row["observations"] == trials * 5
        assert row["pair_hours"] > 0
        assert row["msgs_per_member_s"] > 0
    assert {t["engine"] for t in small["wall_s"]} == {
        "heartbeat model",
        "swim on the simulated network",
    }
    assert all(t["seconds"] >= 0 for t in small["wall_s"])


def test_a_crashed_member_is_always_detected(small: dict[str, Any]) -> None:
    for row in small["results"]:
        assert row["detected_fraction"] == 1.0, row["label"]
        assert 0 <= row["first_detection_mean_s"] <= row["detection_mean_s"]
        assert row["detection_mean_s"] <= row["detection_max_s"] < small["max_wait_s"]["6"]


def test_timeout_detection_time_follows_from_the_heartbeat_schedule(registry: Any) -> None:
    # Constant 1 ms delay, no loss: the last heartbeat lands 1 ms after it was
    # sent, at most one interval before the crash, and the timeout runs from there.
    settings = [Setting("timeout", "timeout", "timeout_s", t, {"timeout": t}) for t in (1.0, 3.0)]
    results = run_passive(scenario(warmup=1, duration=20), settings, registry, 5, seed=3)
    for setting, result in zip(settings, results, strict=True):
        assert result.mistakes == 0
        assert result.undetected == 0
        for detection in result.detections:
            assert setting.value - 0.5 + 0.001 <= detection + 1e-6
            assert detection <= setting.value + 0.001 + 1e-6


def test_timeout_mistakes_match_the_loss_model(registry: Any) -> None:
    # With a 0.75 s timeout and heartbeats every 0.5 s, every run of lost
    # heartbeats is one mistake: a rate of p (1 - p) per heartbeat sent.
    p = 0.1
    setting = Setting("timeout", "timeout", "timeout_s", 0.75, {"timeout": 0.75})
    (result,) = run_passive(
        scenario(members=11, loss=p, warmup=5, duration=600), [setting], registry, 1, seed=5
    )
    sent = 10 * 600 / 0.5
    assert result.mistakes == pytest.approx(sent * p * (1 - p), rel=0.1)
    # Each mistake lasts from the timeout to the next heartbeat that arrives.
    assert result.summary()["mistake_duration_mean_s"] == pytest.approx(0.25 + 0.5 * p, rel=0.1)


@pytest.mark.parametrize("model", ["exponential", "normal"])
def test_larger_phi_threshold_fewer_mistakes_slower_detection(registry: Any, model: str) -> None:
    _, _, delay = delay_preset("congested")
    settings = [
        Setting("phi-accrual", model, "threshold", phi, {"threshold": phi, "model": model})
        for phi in (0.5, 1, 2, 4, 8)
    ]
    results = run_passive(
        scenario(members=8, loss=0.05, delay=delay, warmup=10, duration=300),
        settings,
        registry,
        2,
        seed=1,
    )
    mistakes = [r.mistakes for r in results]
    detection = [r.summary()["detection_mean_s"] for r in results]
    # Every setting sees the same heartbeats, so the order is exact, not statistical.
    assert mistakes == sorted(mistakes, reverse=True)
    assert mistakes[0] > mistakes[-1]
    assert detection == sorted(detection)
    assert detection[0] < detection[-1]


def test_phi_threshold_is_a_mistake_probability_when_the_normal_model_fits(
    registry: Any,
) -> None:
    # Normal delays make normal inter-arrival times (sd 141 ms > the 100 ms
    # floor), so phi >= 1 should happen at about 1 heartbeat in 10 (Hayashibara
    # et al. 2004).
    setting = Setting(
        "phi-accrual",
        "normal",
        "threshold",
        1.0,
        {"threshold": 1.0, "model": "normal", "first_interval": 0.5},
    )
    (result,) = run_passive(
        scenario(members=6, delay=Normal(400.0, 100.0), warmup=30, duration=600),
        [setting],
        registry,
        1,
        seed=2,
    )
    assert result.summary()["mistakes_per_heartbeat"] == pytest.approx(0.1, abs=0.015)


def test_swim_cost_stays_flat_while_all_to_all_heartbeats_grow(registry: Any) -> None:
    def cost(members: int) -> dict[str, float]:
        payload = run(
            "--members",
            str(members),
            "--warmup",
            "2",
            "--duration",
            "30",
            "--trials",
            "1",
            "--timeouts",
            "2",
            "--phi-thresholds",
            "8",
            "--phi-models",
            "exponential",
            "--swim-suspicion-timeouts",
            "4",
            "--max-wait",
            "10",
            "--loss",
            "0",
        )
        return {r["detector"]: r["msgs_per_member_s"] for r in payload["results"]}

    small, large = cost(5), cost(40)
    # Heartbeats: n - 1 messages per interval. SWIM: a ping and its ack per period.
    assert small["timeout"] == pytest.approx(4 / 0.5)
    assert large["timeout"] == pytest.approx(39 / 0.5)
    assert small["phi-accrual"] == small["timeout"]
    assert small["swim"] == pytest.approx(2.0, rel=0.05)
    assert large["swim"] == pytest.approx(2.0, rel=0.05)


def test_swim_detection_is_the_first_failed_probe_plus_the_suspicion_timeout(
    registry: Any,
) -> None:
    sc = scenario(members=8, warmup=5, duration=60)
    for suspicion in (1.0, 3.0):
        result = run_swim(sc, swim(suspicion), registry, 2, seed=4)
        row = result.summary()
        assert row["detected_fraction"] == 1.0
        assert row["mistakes"] == 0
        assert row["first_detection_mean_s"] == pytest.approx(
            row["first_suspected_mean_s"] + suspicion, abs=1e-3
        )
        # A probe fails one protocol period after it is sent, and the first
        # that can fail is one sent a round trip (2 ms) before the crash.
        assert min(result.detections) >= suspicion + 1.0 - 0.002 - 1e-6
        assert row["first_suspected_mean_s"] >= 1.0 - 0.002


def test_swim_probes_match_the_papers_odds(registry: Any) -> None:
    # Each member pings one random member per period, so a member escapes
    # every ping of a period with probability (1 - 1/m)^m (SWIM, section 3.1).
    members = 12
    result = run_swim(scenario(members=members, warmup=5, duration=400), swim(4.0), registry, 1, 1)
    m = members - 1
    row = result.summary()
    assert row["probe_gap_samples"] > 10_000
    assert row["probed_within_one_period"] == pytest.approx(1 - (1 - 1 / m) ** m, abs=0.02)
    assert row["probe_gap_mean_periods"] == pytest.approx(math.e / (math.e - 1), abs=0.1)


def test_swim_false_suspicions_appear_with_loss_only(registry: Any) -> None:
    sc = scenario(members=8, warmup=5, duration=120)
    clean = run_swim(sc, swim(1.0), registry, 1, seed=6).summary()
    lossy = run_swim(
        scenario(members=8, loss=0.3, warmup=5, duration=120), swim(1.0), registry, 1, seed=6
    ).summary()
    assert clean["mistakes"] == 0
    assert clean["suspected_fraction"] == 0
    assert lossy["mistakes"] > 0
    assert 0 < lossy["suspected_fraction"] < 1
    # More traffic under loss: indirect probes through k helpers.
    assert lossy["msgs_per_member_s"] > clean["msgs_per_member_s"]


def test_swim_bookkeeping_agrees_with_polling_every_pair(
    registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The harness looks at a detector only when its state can change; a
    # poller that asks every pair every 5 ms must find the same mistakes.
    step = 0.005
    polled = {"onsets": 0, "time": 0.0}
    original = detector_sim._SwimHarness.run

    async def run_with_poller(self: Any, crash: str) -> None:
        async def poll() -> None:
            await asyncio.sleep(self.scenario.warmup)
            state: dict[tuple[str, str], str] = {}
            while True:
                now = self.now()
                live = [m for m in self.members if m.node_id != self.crashed]
                for member in live:
                    for other in live:
                        if other is member:
                            continue
                        key = (member.node_id, other.node_id)
                        before = state.get(key, "old" if now == self.scenario.warmup else "up")
                        if member.detector.is_available(other.node_id, now):
                            state[key] = "up"
                        elif before == "old":  # begun in the warm-up: not counted
                            state[key] = "old"
                        else:
                            polled["time"] += step
                            polled["onsets"] += before == "up"
                            state[key] = "down"
                await asyncio.sleep(step)

        poller = asyncio.get_running_loop().create_task(poll())
        await original(self, crash)
        poller.cancel()

    monkeypatch.setattr(detector_sim._SwimHarness, "run", run_with_poller)
    sc = scenario(members=6, loss=0.4, warmup=5, duration=40)
    result = run_swim(sc, swim(0.5), registry, 1, seed=7)
    assert result.mistakes > 20
    assert result.mistakes == polled["onsets"]
    assert result.suspected == pytest.approx(polled["time"], abs=0.01 * result.mistakes)


def test_same_seed_same_output_other_seed_other_output() -> None:
    def strip(payload: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payload.items() if k != "wall_s"}

    args = [*SMALL, "--loss", "0.2"]
    first, again, other = run(*args), run(*args), run(*args, "--seed", "2")
    assert strip(first) == strip(again)
    assert strip(first) != strip(other)


def test_validate_runs_the_same_settings_on_real_nodes() -> None:
    payload = run(
        *SMALL,
        "--detectors",
        "timeout,phi-accrual",
        "--phi-models",
        "normal",
        "--validate",
        "--validate-members",
        "4",
        "--validate-trials",
        "4",
    )
    validation = payload["validation"]
    assert validation["members"] == 4
    assert validation["trials"] == 4
    checked = validation["results"]
    assert [(r["label"], r["value"]) for r in checked] == [
        ("timeout", 0.75),
        ("timeout", 2.0),
        ("phi-accrual (normal)", 1.0),
        ("phi-accrual (normal)", 8.0),
    ]
    for row in checked:
        model, cluster = row["model"], row["cluster"]
        assert (
            set(model)
            == set(cluster)
            == {
                "detection_mean_s",
                "detection_p99_s",
                "mistakes_per_pair_hour",
                "suspected_fraction",
                "msgs_per_member_s",
            }
        )
        assert row["cluster_detected_fraction"] == 1.0
        # Same schedule up to the crash's place in the heartbeat interval.
        assert cluster["detection_mean_s"] == pytest.approx(model["detection_mean_s"], abs=0.3)
        # Real nodes also gossip, exchange Merkle trees and deliver hints.
        assert cluster["msgs_per_member_s"] > model["msgs_per_member_s"] == 3 / 0.5
    engines = {t["engine"] for t in payload["wall_s"]}
    assert "in-process cluster" in engines


def test_onset_finds_the_switch() -> None:
    assert onset(lambda t: t <= 2.5, 0.0, 10.0) == pytest.approx(2.5, abs=1e-5)
    assert onset(lambda t: False, 1.0, 10.0) == 1.0


def test_heartbeat_frame_size() -> None:
    # [kind, id, ["h", float64]] in msgpack: 3 + 1 + 2 + 9 bytes.
    assert frame_bytes("msg", 0, Heartbeat(0.0)) == 15


def test_delay_presets_and_files(tmp_path: Path) -> None:
    assert load_delay("lan")[0] == "lan"
    assert load_delay("ymmr")[0] == "YMMR"
    normal = tmp_path / "normal.json"
    normal.write_text('{"type": "normal", "mean": 5, "sd": 1}')
    assert load_delay(str(normal))[2] == Normal(5.0, 1.0)
    mixture = tmp_path / "mix.json"
    mixture.write_text('[{"weight": 1, "type": "constant", "value": 2}]')
    assert load_delay(str(mixture))[2].mean() == 2.0
    with pytest.raises(click.BadParameter):
        load_delay("no-such-preset")


@pytest.mark.parametrize(
    "args",
    [
        ["--detectors", "heartbeat"],
        ["--members", "2"],
        ["--loss", "1"],
        ["--timeouts", "0,1"],
        ["--swim-probe-timeouts", "1.5"],
        ["--phi-models", "gamma"],
        ["--detectors", "swim", "--validate"],
        ["--swim-trials", "-1"],
    ],
)
def test_bad_options_are_refused(args: list[str]) -> None:
    result = CliRunner().invoke(command, ["--json", *args])
    assert result.exit_code != 0
    assert "Error" in result.output


def test_plot_is_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "detectors.png"
    result = CliRunner().invoke(
        command,
        [
            *SMALL,
            "--members",
            "4,6",
            "--phi-models",
            "normal",
            "--plot",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert path.stat().st_size > 10_000
