"""Suite ``detectors``: detection time against false suspicions, and what detection costs.

``dtk bench detectors --members 50 --delay lan --loss 0.01`` sweeps the
sensitivity knob of each failure detector (``timeout``: the timeout;
``phi-accrual``: the threshold, for the exponential and the normal model;
``swim``: the suspicion timeout, and optionally the probe timeout), crashes a
member after a measured window of normal operation, and reports per setting:
how long the other members take to consider it unavailable, how often they
wrongly suspected a live member, and the messages per member per second the
detection costs. The engines are in :mod:`dynamo_toolkit_lab.detector_sim`;
``docs/lab/detectors.rst`` describes the design and the JSON fields.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from dynamo_toolkit_lab.detector_sim import (
    DELAY_PRESETS,
    Measurement,
    Normal,
    Scenario,
    Setting,
    delay_preset,
    run_passive,
    run_swim,
    validate_passive,
)
from dynamo_toolkit_lab.output import (
    emit,
    float_list,
    int_list,
    name_list,
    progress,
    suite_options,
)
from dynamo_toolkit_lab.wars import Distribution, distribution_from_json

__all__ = ["DETECTORS", "command", "load_delay", "measure", "validate_model"]

#: The detectors this suite knows how to drive.
DETECTORS = ("timeout", "phi-accrual", "swim")
_PHI_MODELS = ("exponential", "normal")


def load_delay(spec: str) -> tuple[str, str, Distribution]:
    """``(name, description, distribution in ms)`` of a preset or a JSON file.

    The file holds one distribution in the form of
    :func:`dynamo_toolkit_lab.wars.distribution_from_json`, or
    ``{"type": "normal", "mean": ms, "sd": ms}``.
    """
    try:
        return delay_preset(spec)
    except KeyError:
        pass
    path = Path(spec)
    if not path.is_file():
        raise click.BadParameter(
            f"{spec!r} is neither a preset ({', '.join(DELAY_PRESETS)}) nor a JSON file",
            param_hint="--delay",
        )
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and str(data.get("type", "")).lower() == "normal":
            dist: Distribution = Normal(float(data["mean"]), float(data["sd"]))
        else:
            dist = distribution_from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--delay") from exc
    return path.stem, json.dumps(dist.to_json()), dist


def _knob_text(value: float) -> str:
    return f"{value:g}"


def _setting_text(row: dict[str, Any]) -> str:
    unit = " s" if row["knob"].endswith("_s") else ""
    name = {"timeout_s": "timeout", "threshold": "phi", "suspicion_timeout_s": "suspicion"}
    return f"{name.get(row['knob'], row['knob'])} {_knob_text(row['value'])}{unit}"


def passive_settings(
    detectors: Sequence[str],
    timeouts: Sequence[float],
    thresholds: Sequence[float],
    phi_models: Sequence[str],
    heartbeat_interval: float,
) -> list[Setting]:
    """The swept settings of the heartbeat-fed detectors."""
    settings: list[Setting] = []
    if "timeout" in detectors:
        settings += [
            Setting("timeout", "timeout", "timeout_s", t, {"timeout": t}) for t in timeouts
        ]
    if "phi-accrual" in detectors:
        for model in phi_models:
            # An operator sets the assumed first interval to the heartbeat
            # interval; the plugin's other defaults stay (window 1000,
            # min_std_deviation 0.1 s, no acceptable pause).
            settings += [
                Setting(
                    "phi-accrual",
                    f"phi-accrual ({model})",
                    "threshold",
                    phi,
                    {"threshold": phi, "model": model, "first_interval": heartbeat_interval},
                )
                for phi in thresholds
            ]
    return settings


def swim_settings(
    suspicion_timeouts: Sequence[float],
    probe_timeouts: Sequence[float],
    probe_interval: float,
    indirect_checks: int,
) -> list[Setting]:
    """The swept settings of ``swim`` (suspicion timeout x probe timeout)."""
    settings = []
    for probe_timeout in probe_timeouts:
        label = "swim" if len(probe_timeouts) == 1 else f"swim (probe timeout {probe_timeout:g} s)"
        for suspicion in suspicion_timeouts:
            settings.append(
                Setting(
                    "swim",
                    label,
                    "suspicion_timeout_s",
                    suspicion,
                    {
                        "probe_interval": probe_interval,
                        "probe_timeout": probe_timeout,
                        "indirect_checks": indirect_checks,
                        "suspicion_timeout": suspicion,
                    },
                )
            )
    return settings


def measure(
    scenarios: Sequence[Scenario],
    passive: Sequence[Setting],
    swim: Sequence[Setting],
    trials: int,
    swim_trials: int,
    seed: int,
    quiet: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every setting on every scenario: the result rows and the wall times."""
    from dynamo_toolkit.plugin_host import load_plugins

    registry = load_plugins().registry
    total = sum(
        (trials * (s.members - 1) if passive else 0) + swim_trials * len(swim) for s in scenarios
    )
    rows: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    bar, task = progress(total, "detectors", quiet)
    with bar:

        def advance() -> None:
            bar.advance(task)

        for scenario in scenarios:
            results: list[Measurement] = []
            if passive:
                started = time.perf_counter()
                results += run_passive(scenario, passive, registry, trials, seed, advance)
                timings.append(_timing("heartbeat model", scenario, len(passive), trials, started))
            for setting in swim:
                started = time.perf_counter()
                results.append(run_swim(scenario, setting, registry, swim_trials, seed, advance))
                timings.append(
                    _timing("swim on the simulated network", scenario, 1, swim_trials, started)
                )
            rows += [result.summary() for result in results]
    return rows, timings


#: The figures compared by ``--validate``.
VALIDATED = (
    "detection_mean_s",
    "detection_p99_s",
    "mistakes_per_pair_hour",
    "suspected_fraction",
    "msgs_per_member_s",
)


def validate_model(
    scenario: Scenario,
    settings: Sequence[Setting],
    trials: int,
    seed: int,
    quiet: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The heartbeat model and real nodes on the same scenario: rows and wall times."""
    from dynamo_toolkit.plugin_host import load_plugins

    registry = load_plugins().registry
    rows: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    bar, task = progress(trials * (len(settings) + scenario.members - 1), "validation", quiet)
    with bar:

        def advance() -> None:
            bar.advance(task)

        started = time.perf_counter()
        model = run_passive(scenario, settings, registry, trials, seed, advance)
        timings.append(_timing("heartbeat model", scenario, len(settings), trials, started))
        started = time.perf_counter()
        cluster = validate_passive(scenario, settings, trials, seed, advance)
        timings.append(_timing("in-process cluster", scenario, len(settings), trials, started))
    for m, c in zip(model, cluster, strict=True):
        mine, theirs = m.summary(), c.summary()
        rows.append(
            {
                "detector": mine["detector"],
                "label": mine["label"],
                "knob": mine["knob"],
                "value": mine["value"],
                "model": {key: mine[key] for key in VALIDATED},
                "cluster": {key: theirs[key] for key in VALIDATED},
                "cluster_detected_fraction": theirs["detected_fraction"],
            }
        )
    return rows, timings


def _timing(
    engine: str, scenario: Scenario, settings: int, trials: int, started: float
) -> dict[str, Any]:
    return {
        "engine": engine,
        "members": scenario.members,
        "settings": settings,
        "trials": trials,
        "seconds": time.perf_counter() - started,
    }


# -- output --------------------------------------------------------------------------


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{unit}"
    return f"{value}{unit}"


def _table_rows(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    table = []
    for r in rows:
        detection = _cell(r["detection_mean_s"])
        if r["detection_mean_s"] is None and r["detected_fraction"] is not None:
            detection = f"{r['detected_fraction']:.0%} detected"
        table.append(
            [
                r["label"],
                _setting_text(r),
                r["members"],
                detection,
                _cell(r["detection_p99_s"]),
                _cell(r["first_detection_mean_s"]),
                _cell(r["mistakes_per_pair_hour"]),
                _cell(r["suspected_fraction"]),
                _cell(r["mistake_duration_mean_s"]),
                _cell(r["msgs_per_member_s"]),
                _cell(r["bytes_per_member_s"]),
            ]
        )
    return table


_COLUMNS = [
    "detector",
    "setting",
    "members",
    "detection mean (s)",
    "p99 (s)",
    "first (s)",
    "mistakes /pair-h",
    "suspected fraction",
    "mistake length (s)",
    "msgs /member/s",
    "bytes /member/s",
]


_VALIDATED_COLUMNS = {
    "detection_mean_s": "detection mean (s)",
    "detection_p99_s": "p99 (s)",
    "mistakes_per_pair_hour": "mistakes /pair-h",
    "suspected_fraction": "suspected fraction",
    "msgs_per_member_s": "msgs /member/s",
}


def _draw(payload: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = payload["results"]
    largest = max(r["members"] for r in rows)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    for label in labels:
        colour = colours[label]
        curve = [
            (r, max(r["mistakes_per_pair_hour"], 0.5 / r["pair_hours"]))
            for r in rows
            if r["label"] == label and r["members"] == largest
        ]
        # The mean exists only if every observer noticed the crash in time.
        points = [(r, x) for r, x in curve if r["detection_mean_s"] is not None]
        if points:
            xs = [x for _, x in points]
            ys = [r["detection_mean_s"] for r, _ in points]
            left.plot(xs, ys, "-", color=colour, label=f"{label}: mean")
            for (r, x), y in zip(points, ys, strict=True):
                # Hollow: no mistake in the run; drawn at half of one mistake.
                hollow = r["mistakes"] == 0
                left.plot(x, y, "o", color=colour, mfc="white" if hollow else colour)
                left.annotate(
                    _knob_text(r["value"]),
                    (x, y),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
            p99 = [r["detection_p99_s"] for r, _ in points]
            if all(v is not None for v in p99):
                left.plot(xs, p99, ":", color=colour, label=f"{label}: p99")
        if label.startswith("swim"):
            first = [(x, r["first_detection_mean_s"]) for r, x in curve]
            first = [(x, y) for x, y in first if y is not None]
            if first:
                left.plot(
                    [x for x, _ in first],
                    [y for _, y in first],
                    "--^",
                    color=colour,
                    label=f"{label}: first observer",
                )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("false suspicions per monitored pair per hour (hollow: none seen)")
    left.set_ylabel("detection time after a crash (s)")
    left.set_title(f"{payload['delay']['name']}, loss {payload['loss']:g}, {largest} members")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)

    # Cost per label: the knob does not change a passive detector's traffic,
    # and barely SWIM's, so the settings of one label are averaged.
    member_counts = sorted({r["members"] for r in rows})
    cost: dict[tuple[str, int], float] = {}
    for label in labels:
        for n in member_counts:
            values = [
                r["msgs_per_member_s"] for r in rows if r["label"] == label and r["members"] == n
            ]
            if values:
                cost[label, n] = sum(values) / len(values)
    if len(member_counts) > 1:
        # Passive detectors all cost the same heartbeats: styles keep the
        # overlapping lines apart.
        styles = ["o-", "s--", "^:", "D-."]
        for i, label in enumerate(labels):
            sizes = [n for n in member_counts if (label, n) in cost]
            ys = [cost[label, n] for n in sizes]
            right.plot(
                sizes, ys, styles[i % len(styles)], color=colours[label], label=label, mfc="none"
            )
        right.set_xscale("log")
        right.set_xlabel("members")
        right.legend(fontsize=8)
    else:
        n = member_counts[0]
        right.bar(
            range(len(labels)),
            [cost[label, n] for label in labels],
            color=[colours[label] for label in labels],
            tick_label=[label.replace(" (", "\n(") for label in labels],
        )
        right.set_xlabel(f"{n} members")
    right.set_yscale("log")
    right.set_ylabel("messages per member per second")
    right.set_title("cost of detection")
    right.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# -- the command -------------------------------------------------------------------


@click.command("detectors")
@click.option(
    "--detectors",
    "detector_text",
    default=",".join(DETECTORS),
    show_default=True,
    help="Comma-separated detectors.",
)
@click.option("--members", default="50", show_default=True, help="Cluster sizes, comma-separated.")
@click.option(
    "--delay",
    "delay_spec",
    default="lan",
    show_default=True,
    help=f"One-way delay: preset ({', '.join(DELAY_PRESETS)}) or a JSON file (ms).",
)
@click.option("--loss", default=0.01, show_default=True, help="Probability a message is lost.")
@click.option(
    "--heartbeat-interval", default=0.5, show_default=True, help="Seconds between heartbeats."
)
@click.option("--timeouts", default="0.75,1,1.5,2,3,5", show_default=True, help="timeout: seconds.")
@click.option(
    "--phi-thresholds", default="1,2,4,8,16", show_default=True, help="phi-accrual: thresholds."
)
@click.option(
    "--phi-models",
    default=",".join(_PHI_MODELS),
    show_default=True,
    help="phi-accrual: inter-arrival models.",
)
@click.option(
    "--swim-suspicion-timeouts",
    default="1,2,4,8",
    show_default=True,
    help="swim: suspicion timeouts (s).",
)
@click.option(
    "--swim-probe-timeouts", default="0.5", show_default=True, help="swim: probe timeouts (s)."
)
@click.option(
    "--swim-probe-interval", default=1.0, show_default=True, help="swim: protocol period (s)."
)
@click.option(
    "--swim-indirect-checks", default=3, show_default=True, help="swim: indirect probes (k)."
)
@click.option("--warmup", default=30.0, show_default=True, help="Unmeasured start (s).")
@click.option(
    "--duration", default=300.0, show_default=True, help="Measured time before the crash (s)."
)
@click.option(
    "--max-wait",
    default=0.0,
    show_default=True,
    help="Longest wait after the crash (s); 0: until every member could have noticed.",
)
@click.option("--trials", default=3, show_default=True, help="Crashes per setting.")
@click.option(
    "--swim-trials",
    default=0,
    show_default=True,
    help="Crashes per swim setting (each a whole run); 0: as --trials.",
)
@click.option(
    "--validate",
    is_flag=True,
    help="Also run the timeout and phi-accrual settings on real nodes (in-process cluster).",
)
@click.option(
    "--validate-members", default=5, show_default=True, help="Cluster size for --validate."
)
@click.option(
    "--validate-trials", default=10, show_default=True, help="Crashes per setting for --validate."
)
@suite_options
def command(
    detector_text: str,
    members: str,
    delay_spec: str,
    loss: float,
    heartbeat_interval: float,
    timeouts: str,
    phi_thresholds: str,
    phi_models: str,
    swim_suspicion_timeouts: str,
    swim_probe_timeouts: str,
    swim_probe_interval: float,
    swim_indirect_checks: int,
    warmup: float,
    duration: float,
    max_wait: float,
    trials: int,
    swim_trials: int,
    validate: bool,
    validate_members: int,
    validate_trials: int,
    as_json: bool,
    plot_path: Path | None,
    seed: int,
) -> None:
    """Failure detectors: speed, mistakes and cost.

    For each setting of each detector: the time until the other members
    notice a crash, the false suspicions of live members, and the messages
    per member per second that detection costs.
    """
    detectors = name_list(detector_text, DETECTORS, "--detectors")
    sizes = int_list(members, "--members", 3)  # an indirect probe needs a third member
    if not 0.0 <= loss < 1.0:
        raise click.BadParameter("--loss must be in [0, 1)")
    if not heartbeat_interval > 0 or not swim_probe_interval > 0:
        raise click.BadParameter("intervals must be positive")
    if swim_trials < 0:
        raise click.BadParameter("--swim-trials must not be negative")
    swim_trials = swim_trials or trials
    if trials < 1 or warmup < 0 or not duration > 0 or max_wait < 0:
        raise click.BadParameter(
            "need --trials >= 1, --warmup >= 0, --duration > 0, --max-wait >= 0"
        )
    probe_timeouts = float_list(swim_probe_timeouts, "--swim-probe-timeouts")
    if any(t >= swim_probe_interval for t in probe_timeouts):
        raise click.BadParameter(
            "probe timeouts must be shorter than the probe interval",
            param_hint="--swim-probe-timeouts",
        )
    name, description, delay = load_delay(delay_spec)
    passive = passive_settings(
        detectors,
        float_list(timeouts, "--timeouts"),
        float_list(phi_thresholds, "--phi-thresholds"),
        name_list(phi_models, _PHI_MODELS, "--phi-models"),
        heartbeat_interval,
    )
    suspicion = float_list(swim_suspicion_timeouts, "--swim-suspicion-timeouts")
    swim = (
        swim_settings(suspicion, probe_timeouts, swim_probe_interval, swim_indirect_checks)
        if "swim" in detectors
        else []
    )
    scenarios = [
        Scenario(
            members=n,
            delay=delay,
            loss=loss,
            heartbeat_interval=heartbeat_interval,
            warmup=warmup,
            duration=duration,
            # Long enough for the slowest detector: SWIM's last observer probes
            # the dead member up to two rounds (2n periods) after the crash.
            max_wait=max_wait
            or max(
                2 * n * swim_probe_interval + max(suspicion) + 5 * swim_probe_interval,
                60.0,
            ),
        )
        for n in sizes
    ]
    if validate and (validate_members < 3 or validate_trials < 1 or not passive):
        raise click.BadParameter(
            "--validate needs timeout or phi-accrual, --validate-members >= 3 and "
            "--validate-trials >= 1"
        )
    rows, timings = measure(scenarios, passive, swim, trials, swim_trials, seed, quiet=as_json)
    payload: dict[str, Any] = {
        "delay": {"name": name, "description": description, "distribution": delay.to_json()},
        "loss": loss,
        "heartbeat_interval_s": heartbeat_interval,
        "warmup_s": warmup,
        "duration_s": duration,
        "max_wait_s": {str(s.members): s.max_wait for s in scenarios},
        "trials": trials,
        "swim_trials": swim_trials,
        "seed": seed,
        "results": rows,
        "wall_s": timings,
    }
    if validate:
        small = dataclasses.replace(scenarios[0], members=validate_members)
        small = dataclasses.replace(small, max_wait=max(small.max_wait, 60.0))
        checked, more = validate_model(small, passive, validate_trials, seed, quiet=as_json)
        payload["validation"] = {
            "members": validate_members,
            "trials": validate_trials,
            "max_wait_s": small.max_wait,
            "results": checked,
        }
        payload["wall_s"] = timings + more
    emit(
        payload,
        as_json=as_json,
        title=(
            f"failure detectors: delay {name} ({description}), loss {loss:g}, "
            f"{trials} crash(es) per setting, {swim_trials} for swim"
        ),
        columns=_COLUMNS,
        rows=_table_rows(rows),
        plot_path=plot_path,
        draw=_draw,
    )
    if validate and not as_json:
        emit(
            payload,
            as_json=False,
            title=(
                f"--validate: heartbeat model / {validate_members} real nodes "
                f"({validate_trials} crashes per setting)"
            ),
            columns=["detector", "setting", *(_VALIDATED_COLUMNS[key] for key in VALIDATED)],
            rows=[
                [
                    r["label"],
                    _setting_text(r),
                    *(
                        f"{_cell(r['model'][key])} / {_cell(r['cluster'][key])}"
                        for key in VALIDATED
                    ),
                ]
                for r in payload["validation"]["results"]
            ],
        )
