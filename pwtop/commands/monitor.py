"""`pwtop monitor`: one line (or record) every interval, exactly, for as long as asked.

Headless (no Textual), for a terminal, a pipe, cron or a systemd unit. It drives a
:class:`pwtop.session.Session` like the TUI does: the session polls each chosen component
on the interval's time grid (never two collects of one component at once), judges the
alert rules, lets the opt-in automated responses act and records into the history file.
Monitor prints a row at every tick: a table row (key figures), one JSON object (JSON
lines) or one CSV row (with a header). Alerts that fired, escalated or resolved since the
last row are on it.

Rows never go missing: a component slower than the interval is shown with its last value
and that value's age (``components.NAME.age_s`` and ``stale`` in JSON, ``NAME.age_s`` in
CSV, "NAME measured 2.1 s ago" in the table), and its new figures go into a later row.
Every figure's own age is there too: ``metric_age_s`` in JSON maps each metric of the row
to the seconds since it was measured (the component's age, plus how much older the
figure was at its snapshot: the database's slow-round figures, reused for minutes), and
CSV has a ``METRIC.age_s`` column for each slow-round figure
(:data:`pwtop.metric_names.SLOW_ROUND`; every other figure is as old as its component's
``NAME.age_s``).
The first row waits for every component's first poll (a cold database read can take
seconds); the ticks are counted from it.

It stops after ``--duration`` seconds (rows at 0, interval, 2 x interval... while before
the duration; ``--duration 0`` is one row) or on Ctrl-C / SIGTERM, after finishing the
line it is printing. The exit status is 3 when a critical or emergency alert fired during
the run (so cron and systemd can act), 0 otherwise. A component that cannot be measured
is reported once on stderr (and again when it recovers); only when none of them can be
measured at the first row does monitor give up, before printing anything.
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
from dataclasses import dataclass, field
from typing import Any, TextIO

from pwtop import components as registry
from pwtop.config import Settings, check_setting
from pwtop.errors import PwtopError
from pwtop.metric_names import MONITOR_COLUMNS, SLOW_ROUND, names_for
from pwtop.model import Level, to_jsonable
from pwtop.session import ComponentState, Session
from pwtop.units import format_metric, human_seconds

log = logging.getLogger("pwtop.monitor")

EXIT_ALERT = 3

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
    parts += [f"{name} measured {human_seconds(c['age_s'])} ago"
              for name, c in record["components"].items() if c["stale"]]
    return "; ".join(parts)


class TableOutput(Output):
    def start(self) -> None:
        self.columns = [(label, metric, name) for name in self.names
                        for label, metric in MONITOR_COLUMNS.get(name, ())]
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
        self.columns = names_for(self.names)
        self.aged = [name for name in self.columns if name in SLOW_ROUND]
        self._csv = csv.writer(self.out, lineterminator="\n")
        # How old each component's figures in the row are, then each slow-round figure
        # (seconds; empty without any).
        self._csv.writerow(["time", *self.columns, *(f"{n}.age_s" for n in self.names),
                            *(f"{n}.age_s" for n in self.aged), "alerts"])
        self.out.flush()

    def row(self, record: dict[str, Any]) -> None:
        metrics = record["metrics"]
        values = ["" if metrics.get(name) is None else repr(metrics[name])
                  if isinstance(metrics[name], float) else str(metrics[name])
                  for name in self.columns]
        ages = [record["components"].get(n, {}).get("age_s") for n in self.names]
        ages += [record["metric_age_s"].get(n) for n in self.aged]
        self._csv.writerow([record["time"], *values, *("" if a is None else a for a in ages),
                            _alert_text(record)])
        self.out.flush()


OUTPUTS = {"table": TableOutput, "json": JsonOutput, "csv": CsvOutput}


# ---------------------------------------------------------------- the loop

#: A row waits at most this share of the interval after its tick for the polls that started
#: at the tick (and the alert round over them); a component slower than that is reported
#: with its last value and that value's age, and its new figures go into a later row.
ROW_GRACE = 0.9


class _Problems:
    """Each component's trouble is said once on stderr, and its recovery."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self._reported: dict[str, str | None] = {}

    def report(self, states: dict[str, ComponentState]) -> None:
        for name, state in states.items():
            message, before = state.missing, self._reported.get(name)
            if message != before:
                if message is not None:
                    print(f"pwtop: {name} unavailable: {message}", file=self.err, flush=True)
                elif before is not None:
                    print(f"pwtop: {name} available again", file=self.err, flush=True)
                self._reported[name] = message


@dataclass
class _Round:
    """What the alert rounds said since the last row."""

    events: list[Any] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    history: Any = None


def _fresh(session: Session, tick: float) -> bool:
    """Every component has delivered the poll that started at (or after) ``tick``, or is
    failing and waiting out its back-off, and the Watch has judged what arrived."""
    for name, state in session.states.items():
        poller = session.pollers.get(name)
        if poller is None:
            continue
        if poller.in_flight:
            return False
        if state.last is None:
            return False
        if state.last.started < tick - 1e-3 and not poller.failures:
            return False
    runner = session.watch_runner
    return runner is None or runner.idle


def _record(seq: int, wall: float, session: Session, tick: float, said: _Round,
            ) -> dict[str, Any]:
    from pwtop.history import iso

    now = time.monotonic()
    metrics: dict[str, Any] = {}
    ages: dict[str, float] = {}
    gone: dict[str, str] = {}
    comps: dict[str, Any] = {}
    for name, state in session.states.items():
        snap = state.snapshot if state.missing is None else None
        if snap is not None:
            since = now - snap.monotonic
            for metric, value in snap.metrics.items():
                if metric not in metrics:
                    metrics[metric] = value
                    ages[metric] = round(since + snap.age_of(metric), 3)
            for metric, why in snap.unavailable.items():
                gone.setdefault(metric, why)
        comps[name] = {
            "ok": state.missing is None, "problem": state.missing,
            "measured": iso(snap.taken_at) if snap is not None else None,
            "age_s": round(now - snap.monotonic, 3) if snap is not None else None,
            # From a poll that started before this row's tick: the component is slower
            # than the interval, and this is its last value.
            "stale": snap is not None and state.last is not None
            and state.last.started < tick - 1e-3}
    for metric in metrics:
        gone.pop(metric, None)
    engine = session.alerts
    return {
        "time": iso(wall), "t": wall, "seq": seq, "metrics": metrics,
        "metric_age_s": ages, "unavailable": gone,
        "components": comps,
        "events": [e.to_dict() for e in said.events],
        "active": [{"id": a.id, "rule": a.rule, "level": a.level.label, "message": a.message,
                    "acknowledged": a.acknowledged} for a in engine.active()]
        if engine is not None else [],
        "responses": [r.to_dict() for r in said.responses],
        "history": said.history.state if said.history is not None else None,
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


async def _until(stop: asyncio.Event, condition: Any, session: Session,
                 deadline: float | None = None) -> None:
    """Wait for ``condition`` (re-checked whenever the session changes), Ctrl-C, or the
    deadline (loop time), whichever comes first."""
    loop = asyncio.get_running_loop()
    waiter = asyncio.ensure_future(session.wait_until(condition))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        await asyncio.wait({waiter, stopper}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, stopper):
            task.cancel()
        await asyncio.gather(waiter, stopper, return_exceptions=True)


async def _monitor(args: argparse.Namespace, settings: Settings, out: TextIO,
                   err: TextIO) -> int:
    interval = args.interval if args.interval is not None else settings.ui.interval
    interval = check_setting("ui.interval", interval, "--interval")  # the TUI's bounds
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

    session = Session(settings, names, interval=interval)
    said = _Round()
    history_state: list[str | None] = [None]

    def on_round(result: Any) -> None:
        if result is None:
            return
        said.events.extend(result.events)
        said.responses.extend(result.responses)
        said.history = result.history
        history_state[0] = _report_history(result.history, history_state[0], err)

    session.on_round = on_round
    output = OUTPUTS[args.format](out, names)
    problems = _Problems(err)
    try:
        session.start()
        # The first row waits for every component's first poll, however long a cold
        # database read takes; the rows after it keep the interval exactly.
        await _until(stop, lambda: _fresh(session, session.epoch or 0.0), session)
        if stop.is_set():
            return 0
        if all(state.missing is not None for state in session.states.values()):
            raise PwtopError("nothing to monitor: " + "; ".join(
                f"{n}: {session.states[n].missing}" for n in names))
        output.start()
        first_tick = session.epoch or 0.0  # when the first polls started
        started, wall0 = loop.time(), time.time()
        session.realign(started)
        seq = 0
        while True:
            # Row 0 shows the first polls (they started at the session's start); row N
            # the polls that started at its tick, or the last values and their ages.
            tick = started + seq * interval if seq else first_tick
            if seq:
                await _until(stop, lambda: _fresh(session, tick), session,
                             deadline=tick + ROW_GRACE * interval)
                if stop.is_set():
                    break
            problems.report(session.states)
            output.row(_record(seq, wall0 + seq * interval, session, tick, said))
            said.events.clear()
            said.responses.clear()
            seq += 1
            if duration is not None and seq * interval >= duration - 1e-9:
                break
            await _until(stop, lambda: False, session, deadline=started + seq * interval)
            if stop.is_set():
                break
    finally:
        for record in await session.close():
            print(f"pwtop: {record.line()}", file=err, flush=True)
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    engine = session.alerts
    if engine is not None and engine.worst_fired >= Level.CRITICAL:
        return EXIT_ALERT
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_monitor(args, settings, sys.stdout, sys.stderr))
