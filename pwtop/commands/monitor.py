"""`pwtop monitor`: measure every interval and print one line (or record) per round.

Headless (no Textual), for a terminal, a pipe, cron or a systemd unit. Each round
collects the chosen components concurrently, judges the alert rules, lets the opt-in
automated responses act, records into the history file and prints one line: a table row
(key figures), one JSON object (JSON lines) or one CSV row (with a header). Alerts that
fired, escalated or resolved in the round are on the same line.

It stops after ``--duration`` seconds (rounds start at 0, interval, 2 x interval... while
before the duration; ``--duration 0`` is one round) or on Ctrl-C / SIGTERM, after
finishing the line it is printing. The exit status is 3 when a critical or emergency
alert fired during the run (so cron and systemd can act), 0 otherwise. A component that
cannot be measured is reported once on stderr (and again when it recovers); only when
none of them can be measured at the first round does monitor give up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import signal
import sys
import time
from typing import Any, TextIO

from pwtop import components as registry
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import Level, Snapshot, to_jsonable
from pwtop.units import format_metric

log = logging.getLogger("pwtop.monitor")

EXIT_ALERT = 3

#: The figures a table row shows per component: (column label, metric).
KEY_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "database": (("db.wal", "database_wal_bytes"), ("db.frag", "database_fragmentation_ratio"),
                 ("db.slow", "database_slow_queries"),
                 ("db.commit/s", "database_commits_per_second")),
    "async": (("ops/s", "async_operations_per_second"),
              ("lag.p99", "async_loop_lag_p99_seconds"),
              ("pool", "async_pool_saturation_ratio"), ("queue", "async_queue_fill_ratio")),
    "realtime": (("conns", "realtime_connections"), ("msg/s", "realtime_messages_out_per_second"),
                 ("drop/s", "realtime_dropped_per_second"),
                 ("deliv.p99", "realtime_delivery_p99_seconds")),
    "system": (("cpu", "system_cpu_percent"), ("mem", "system_memory_used_ratio"),
               ("temp", "system_cpu_temperature_celsius"), ("disk.free", "system_disk_free_bytes")),
}


# ---------------------------------------------------------------- output


class Output:
    """Writes whole lines, each flushed, so a reader (or a Ctrl-C) never sees half a line."""

    def __init__(self, out: TextIO, names: list[str]) -> None:
        self.out = out
        self.names = names

    def write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def start(self) -> None:
        pass

    def row(self, record: dict[str, Any]) -> None:
        raise NotImplementedError


def _alert_text(record: dict[str, Any]) -> str:
    parts = [f"{e['kind'].upper()} {e['level']} {e['rule']}: {e['message']}"
             for e in record["events"]]
    parts += [f"response {r['response']} {r['phase']} {r['key']}: "
              f"{'ok' if r['ok'] else 'failed'}" for r in record["responses"]]
    active = len(record["active"])
    if active and not record["events"]:
        worst = record["active"][0]
        parts.append(f"{active} active (worst {worst['level']} {worst['rule']})")
    return "; ".join(parts)


class TableOutput(Output):
    def start(self) -> None:
        self.columns = [(label, metric, name) for name in self.names
                        for label, metric in KEY_METRICS.get(name, ())]
        self.widths = [max(len(label), 9) for label, _, _ in self.columns]
        head = ["time    "] + [label.rjust(w) for (label, _, _), w in
                               zip(self.columns, self.widths)]
        self.write("  ".join(head + ["alerts"]))

    def row(self, record: dict[str, Any]) -> None:
        metrics, comps = record["metrics"], record["components"]
        cells = [time.strftime("%H:%M:%S", time.localtime(record["t"]))]
        for (label, metric, component), width in zip(self.columns, self.widths):
            down = not comps.get(component, {}).get("ok", True)
            text = "n/a" if down else format_metric(metric, metrics.get(metric))
            cells.append(text.rjust(width))
        self.write("  ".join(cells + [_alert_text(record)]).rstrip())


class JsonOutput(Output):
    def row(self, record: dict[str, Any]) -> None:
        self.write(json.dumps(to_jsonable(record), default=str, separators=(",", ":")))


class CsvOutput(Output):
    def start(self) -> None:
        from pwtop.metric_names import names_for

        self.columns = names_for(self.names)
        self._csv = csv.writer(self.out, lineterminator="\n")
        self._csv.writerow(["time", *self.columns, "alerts"])
        self.out.flush()

    def row(self, record: dict[str, Any]) -> None:
        metrics = record["metrics"]
        values = ["" if metrics.get(name) is None else repr(metrics[name])
                  if isinstance(metrics[name], float) else str(metrics[name])
                  for name in self.columns]
        self._csv.writerow([record["time"], *values, _alert_text(record)])
        self.out.flush()


OUTPUTS = {"table": TableOutput, "json": JsonOutput, "csv": CsvOutput}


# ---------------------------------------------------------------- the loop


class _Components:
    """The chosen components; each one's trouble is reported once, and its recovery."""

    def __init__(self, names: list[str], settings: Settings, err: TextIO) -> None:
        self.names = names
        self.err = err
        self.built: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        self._reported: dict[str, str | None] = {}
        for name in names:
            try:
                self.built[name] = registry.build(name, settings)
            except PwtopError as exc:
                self._problem(name, exc.message)

    def _problem(self, name: str, message: str | None) -> None:
        self.problems.pop(name, None)
        if message is not None:
            self.problems[name] = message

    def report(self) -> None:
        """Say on stderr what became unavailable, or available again, since last time."""
        for name in self.names:
            message, before = self.problems.get(name), self._reported.get(name)
            if message != before:
                if message is not None:
                    print(f"pwtop: {name} unavailable: {message}", file=self.err, flush=True)
                elif before is not None:
                    print(f"pwtop: {name} available again", file=self.err, flush=True)
                self._reported[name] = message

    async def _one(self, name: str, component: Any) -> Snapshot | None:
        try:
            snap = await component.collect()
        except PwtopError as exc:
            self._problem(name, exc.message)
            return None
        except Exception as exc:  # a collector bug: logged with its traceback, pwtop goes on
            log.exception("collecting %s failed", name)
            self._problem(name, f"collector failed: {type(exc).__name__}: {exc}")
            return None
        self._problem(name, _not_configured(snap))
        return snap

    async def collect(self) -> list[Snapshot]:
        names = list(self.built)
        got = await asyncio.gather(*(self._one(n, self.built[n]) for n in names))
        return [s for s in got if s is not None]

    def all_down(self) -> bool:
        return all(name in self.problems for name in self.names)

    async def close(self) -> None:
        for component in self.built.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(component.close(), 5.0)


def _not_configured(snap: Snapshot) -> str | None:
    """An agent-fed component with no agent (nor probes) configured has nothing to watch."""
    if all(k.startswith("agent_") for k in snap.metrics) and \
            "agent_disconnected_seconds" in snap.unavailable and "agent" in snap.unavailable:
        return snap.unavailable["agent"]
    return None


def _record(seq: int, wall: float, snaps: list[Snapshot], comps: _Components, result: Any,
            watch: Any) -> dict[str, Any]:
    from pwtop.history import iso

    metrics: dict[str, Any] = {}
    gone: dict[str, str] = {}
    for snap in snaps:
        for name, value in snap.metrics.items():
            metrics.setdefault(name, value)
        for name, why in snap.unavailable.items():
            gone.setdefault(name, why)
    for name in metrics:
        gone.pop(name, None)
    return {
        "time": iso(wall), "t": wall, "seq": seq, "metrics": metrics, "unavailable": gone,
        "components": {name: {"ok": name not in comps.problems,
                              "problem": comps.problems.get(name)} for name in comps.names},
        "events": [e.to_dict() for e in result.events],
        "active": [{"id": a.id, "rule": a.rule, "level": a.level.label, "message": a.message,
                    "acknowledged": a.acknowledged} for a in watch.engine.active()],
        "responses": [r.to_dict() for r in result.responses],
        "history": result.history.state if result.history is not None else None,
    }


def _report_history(status: Any, before: str | None, err: TextIO) -> str | None:
    """Say on stderr when recording into the history file stops working, and when it
    works again; silent while all is well."""
    if status is None or status.state == before:
        return before
    trouble = status.state not in ("ok", "off", "closed")
    back = status.state == "ok" and before not in (None, "ok", "closed", "off")
    if trouble or back:
        print(f"pwtop: history {status.state}: {status.message}", file=err, flush=True)
    return status.state


async def _monitor(args: argparse.Namespace, settings: Settings, out: TextIO,
                   err: TextIO) -> int:
    from pwtop.alerts import Watch

    interval = args.interval if args.interval is not None else settings.ui.interval
    if not interval > 0:
        raise PwtopError(f"--interval {interval:g}: must be more than 0 seconds")
    duration = args.duration
    if duration is not None and not duration >= 0:
        raise PwtopError(f"--duration {duration:g}: must be 0 seconds or more")
    names = registry.selected(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        log.info("monitor: %s received, stopping", sig.name)
        stop.set()
        # A second Ctrl-C is not caught: it interrupts the shutdown itself.
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)

    comps = _Components(names, settings, err)
    watch = Watch(settings, comps.built)
    output = OUTPUTS[args.format](out, names)
    history_state = None
    try:
        await watch.start()
        started = loop.time()
        seq = 0
        output.start()
        while not stop.is_set():
            wall = time.time()
            round_task = asyncio.ensure_future(comps.collect())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({round_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not round_task.done():  # Ctrl-C while collecting: drop the round
                round_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await round_task
                break
            snaps = round_task.result()
            if seq == 0 and comps.all_down():
                raise PwtopError("nothing to monitor: " + "; ".join(
                    f"{n}: {comps.problems[n]}" for n in names))
            comps.report()
            result = await watch.round(snaps)
            history_state = _report_history(result.history, history_state, err)
            output.row(_record(seq, wall, snaps, comps, result, watch))
            seq += 1
            next_at = started + seq * interval
            now = loop.time()
            if next_at <= now:  # the round overran: skip the missed slots, never overlap
                next_at = started + (int((now - started) / interval) + 1) * interval
            if duration is not None and next_at - started >= duration - 1e-9:
                break
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - loop.time())
    finally:
        for record in await watch.close():
            print(f"pwtop: {record.line()}", file=err, flush=True)
        await comps.close()
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    if watch.engine.worst_fired >= Level.CRITICAL:
        return EXIT_ALERT
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_monitor(args, settings, sys.stdout, sys.stderr))
