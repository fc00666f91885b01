"""Notifications against real receivers: an HTTP server (stdlib http.server on 127.0.0.1,
in its own thread) for webhook and ntfy, real commands for exec.

The alert engine runs on a stepped clock (minutes in microseconds); everything after it
is real: the Watch's notifier threads, sockets, HTTP, subprocesses. A test waits for
deliveries with :meth:`Notifier.wait_for` (a condition the sender threads signal), never
with a sleep. Deliveries go out one at a time per target, in order, so once the last
expected one has arrived any unexpected one before it would have arrived too.
"""

from __future__ import annotations

import email.header
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pwtop.alerts import Watch
from pwtop.alerts.notify import Notifier, targets_from_settings
from pwtop.cli import main
from pwtop.config import settings_from_dict
from pwtop.errors import ConfigError
from pwtop.model import Snapshot

METRIC = "database_wal_bytes"
RULE = {"name": "wal", "metric": METRIC, "op": ">", "warning": 10, "critical": 20,
        "repeat": "10m", "title": "WAL file large", "advice": "checkpoint it"}
WAIT = 30.0  # the longest a test waits for a delivery it expects (never reached if right)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST. ``fail`` answers 500 to that many
    requests first (or to all: -1); ``hang`` holds every request until :meth:`close`."""

    def __init__(self, fail: int = 0, hang: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.release = threading.Event()
        self.fail, self.hang = fail, hang
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.changed:
                    receiver.requests.append({"path": self.path, "body": body,
                                              "headers": dict(self.headers)})
                    receiver.changed.notify_all()
                    failing = receiver.fail != 0
                    receiver.fail -= 1 if receiver.fail > 0 else 0
                if receiver.hang:
                    receiver.release.wait(WAIT)
                try:
                    self.send_response(500 if failing else 200)
                    self.end_headers()
                except OSError:  # the client gave up (its timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.requests) >= count, WAIT)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def watch_for(clock: Clock, *notify: dict[str, Any], rig: str = "car") -> Watch:
    settings = settings_from_dict({"alerts": {"rules": [RULE], "notify": list(notify),
                                              "rig": rig}}, "test.toml")
    return Watch(settings, history=False, clock=clock, wall=clock.wall)


def step(watch: Watch, clock: Clock, at: float, value: float) -> list[str]:
    clock.now = at
    return [e.kind for e in watch.engine.evaluate({METRIC: value})]


def delivered(watch: Watch, count: int) -> list[Any]:
    assert watch.notifier.wait_for(lambda d: len(d) >= count, WAIT), \
        list(watch.notifier.deliveries)
    return list(watch.notifier.deliveries)


# ---------------------------------------------------------------- when


async def test_one_notification_per_firing_and_escalation_none_for_repeats_within_repeat(
        clock, receiver):
    r = receiver()
    watch = watch_for(clock, {"kind": "webhook", "url": r.url,
                              "title": "{rig}: {level} {rule} ({value})"})
    try:
        assert step(watch, clock, 0, 15) == ["fired"]
        assert step(watch, clock, 60, 16) == []          # within repeat: nothing
        assert step(watch, clock, 590, 17) == []
        assert step(watch, clock, 600, 25) == ["escalated"]
        assert step(watch, clock, 900, 25) == []
        assert step(watch, clock, 1200, 25) == ["repeated"]  # repeat (10 min) is over
        watch.engine.acknowledge()                         # not in the default events
        assert step(watch, clock, 5000, 25) == []          # acknowledged: no reminder
        assert step(watch, clock, 5100, 5) == ["resolved"]
        assert [d.event for d in delivered(watch, 4)] == [
            "fired", "escalated", "repeated", "resolved"]
        assert all(d.ok and d.attempts == 1 for d in watch.notifier.deliveries)
    finally:
        await watch.close()
    bodies = r.bodies()
    assert [b["event"] for b in bodies] == ["fired", "escalated", "repeated", "resolved"]
    assert [b["level"] for b in bodies] == ["warning", "critical", "critical", "critical"]
    first = bodies[0]
    assert first["rule"] == "wal" and first["rig"] == "car" and first["value"] == 15
    assert first["threshold"] == 10 and first["advice"] == "checkpoint it"
    assert first["at"] == "2023-11-14T22:13:20+00:00"
    assert first["notification"]["title"] == "car: warning wal (15 B)"
    assert first["notification"]["body"] == first["message"]
    assert {b["id"] for b in bodies} == {first["id"]}
    assert r.requests[0]["headers"]["Content-Type"] == "application/json"
    assert r.requests[0]["path"] == "/hook"


async def test_min_level_and_events_choose_what_a_target_sends(clock, receiver):
    r = receiver()
    watch = watch_for(clock, {"kind": "webhook", "url": r.url, "min_level": "critical",
                              "events": ["fired", "escalated", "resolved"]})
    try:
        step(watch, clock, 0, 15)      # fired warning: below min_level
        step(watch, clock, 10, 25)     # escalated to critical: sent
        step(watch, clock, 20, 15)     # de-escalated: not in events
        step(watch, clock, 30, 0)      # resolved; its alert reached critical: sent
        assert [(d.event, d.level) for d in delivered(watch, 2)] == [
            ("escalated", "critical"), ("resolved", "warning")]
    finally:
        await watch.close()
    assert len(r.requests) == 2


# ---------------------------------------------------------------- how


async def test_ntfy_posts_the_body_with_title_priority_and_tags(clock, receiver):
    r = receiver()
    watch = watch_for(clock, {"kind": "ntfy", "url": r.url.replace("/hook", "/my-rigs"),
                              "title": "{rig} ⚠\n{title}", "body": "{message} · {advice}"},
                      rig="backpack")
    try:
        step(watch, clock, 0, 25)
        delivered(watch, 1)
    finally:
        await watch.close()
    request = r.requests[0]
    assert request["path"] == "/my-rigs"
    title, charset = email.header.decode_header(request["headers"]["Title"])[0]
    assert title.decode(charset) == "backpack ⚠ WAL file large"
    assert request["headers"]["Priority"] == "4"  # critical
    assert request["headers"]["Tags"] == "pwtop,critical,wal"
    assert request["body"].decode() == \
        "WAL file large: database_wal_bytes 25 B > 20 B · checkpoint it"


async def test_a_token_file_is_sent_as_a_bearer_token(clock, receiver, tmp_path):
    r = receiver()
    token = tmp_path / "ntfy.token"
    token.write_text("tk_s3cret\n")
    token.chmod(0o600)
    watch = watch_for(clock, {"kind": "ntfy", "url": r.url, "token_file": str(token)})
    try:
        step(watch, clock, 0, 15)
        delivered(watch, 1)
        assert "s3cret" not in repr(watch.notifier.targets)
    finally:
        await watch.close()
    assert r.requests[0]["headers"]["Authorization"] == "Bearer tk_s3cret"


async def test_exec_runs_the_command_with_the_alert_on_stdin(clock, tmp_path):
    out = tmp_path / "alert.json"
    script = ("import json, sys, pathlib\n"
              f"pathlib.Path({str(out)!r}).write_text(json.dumps(json.load(sys.stdin)))\n")
    watch = watch_for(clock, {"kind": "exec", "command": [sys.executable, "-c", script]})
    try:
        step(watch, clock, 0, 15)
        [delivery] = delivered(watch, 1)
    finally:
        await watch.close()
    assert delivery.ok
    data = json.loads(out.read_text())
    assert data["event"] == "fired" and data["rule"] == "wal" and data["rig"] == "car"
    assert data["notification"]["title"] == "pwtop car: warning WAL file large"


# ---------------------------------------------------------------- faults


async def test_a_receiver_answering_500_is_retried_then_given_up(clock, receiver, caplog):
    caplog.set_level(logging.INFO, logger="pwtop.alerts.notify")
    r = receiver(fail=-1)
    watch = watch_for(clock, {"kind": "webhook", "url": r.url, "retries": 2,
                              "backoff": 0.01})
    try:
        step(watch, clock, 0, 15)
        [delivery] = delivered(watch, 1)
    finally:
        await watch.close()
    assert not delivery.ok and delivery.attempts == 3
    assert delivery.error == "HTTP 500 Internal Server Error"
    assert len(r.requests) == 3
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "pwtop.alerts.notify"]
    name = f"#1 webhook {r.url}"
    assert lines.pop(0) == f"notifications from rig car to {name}"
    assert sum(f"notification to {name} failed (HTTP 500" in x for x in lines) == 2
    assert "retry 1 of 2" in lines[0] and "retry 2 of 2" in lines[1]
    assert lines[2].startswith(f"notification to {name} given up after 3 attempts")


async def test_a_failure_then_success_is_logged_as_sent(clock, receiver, caplog):
    caplog.set_level(logging.INFO, logger="pwtop.alerts.notify")
    r = receiver(fail=1)
    watch = watch_for(clock, {"kind": "webhook", "url": r.url, "backoff": 0.01})
    try:
        step(watch, clock, 0, 15)
        [delivery] = delivered(watch, 1)
    finally:
        await watch.close()
    assert delivery.ok and delivery.attempts == 2 and len(r.requests) == 2
    assert "sent to #1 webhook" in caplog.records[-1].getMessage()


async def test_a_receiver_that_hangs_times_out(clock, receiver):
    r = receiver(hang=True)
    watch = watch_for(clock, {"kind": "webhook", "url": r.url, "timeout": 0.3,
                              "retries": 1, "backoff": 0.01})
    try:
        step(watch, clock, 0, 15)
        [delivery] = delivered(watch, 1)
    finally:
        await watch.close()
    assert not delivery.ok and delivery.attempts == 2
    assert delivery.error == "no answer within 0.3 s"
    assert len(r.requests) == 2


async def test_a_dead_receiver_never_delays_a_round_nor_another_target(clock, receiver,
                                                                       caplog):
    """The hanging receiver answers nothing until the test ends: were a round to wait for
    a delivery, the rounds below could not finish. The queue is bounded: what does not fit
    is dropped and logged."""
    hung, fine = receiver(hang=True), receiver()
    watch = watch_for(clock, {"kind": "webhook", "url": hung.url, "timeout": WAIT,
                              "queue": 2},
                      {"kind": "webhook", "url": fine.url})
    try:
        events = []
        for n in range(10):   # fire and resolve: 20 events, each sent to both
            clock.now = 100.0 * n
            result = await watch.round([Snapshot("database", metrics={METRIC: 15})])
            events += [e.kind for e in result.events]
            clock.now += 10
            result = await watch.round([Snapshot("database", metrics={METRIC: 0})])
            events += [e.kind for e in result.events]
        assert events == ["fired", "resolved"] * 10
        assert fine.wait_for(20)  # the other target got every one meanwhile
        assert len(hung.requests) <= 1 and not hung.release.is_set()
        hung_sender = watch.notifier.senders[0]
        # nothing can complete: at most one in flight and two queued, the rest dropped
        assert hung_sender.dropped >= 20 - 1 - 2
    finally:
        hung.release.set()
        await watch.close()
    assert any("dropped: 2 already waiting" in rec.getMessage() for rec in caplog.records)


async def test_a_command_that_fails_or_vanished_is_given_up(clock, tmp_path):
    script = tmp_path / "page"
    script.write_text("#!/bin/sh\necho 'pager down' >&2\nexit 3\n")
    script.chmod(0o755)
    watch = watch_for(clock, {"kind": "exec", "command": [str(script)], "retries": 1,
                              "backoff": 0.01})
    try:
        step(watch, clock, 0, 15)
        [first] = delivered(watch, 1)
        script.unlink()   # gone after the config was checked
        step(watch, clock, 10, 25)
        second = delivered(watch, 2)[1]
    finally:
        await watch.close()
    assert not first.ok and first.attempts == 2
    assert first.error == "exit status 3: pager down"
    assert not second.ok and second.error.startswith(f"cannot run {script}: ")


async def test_closing_delivers_what_is_still_queued(clock, receiver):
    r = receiver()
    watch = watch_for(clock, {"kind": "webhook", "url": r.url})
    step(watch, clock, 0, 15)
    step(watch, clock, 10, 25)
    await watch.close()
    assert [b["event"] for b in r.bodies()] == ["fired", "escalated"]
    assert not any(s.thread.is_alive() for s in watch.notifier.senders)


def test_a_listener_that_raises_does_not_stop_the_engine(clock, caplog):
    watch = watch_for(clock)

    def broken(event: Any, alert: Any) -> None:
        raise RuntimeError("boom")
    watch.engine.listeners.insert(0, broken)
    assert step(watch, clock, 0, 15) == ["fired"]
    assert "an alert listener failed on FIRED warning wal" in caplog.text


# ---------------------------------------------------------------- bad config


@pytest.mark.parametrize("table, expected", [
    ({"kind": "webhook", "url": "htp:/nowhere"},
     "#1 (webhook): url 'htp:/nowhere' is not an http:// or https:// URL with a host"),
    ({"kind": "webhook", "url": "http://127.0.0.1:99999/x"},
     "#1 (webhook): url 'http://127.0.0.1:99999/x' is not a URL (Port out of range"),
    ({"kind": "webhook"}, "#1 (webhook): needs a url"),
    ({"kind": "ntfy", "url": "https://ntfy.sh/"}, "names no topic"),
    ({"kind": "sms", "url": "http://x/"},
     "#1 kind: expected one of 'webhook', 'ntfy', 'exec', got 'sms'"),
    ({"url": "http://x/"}, "#1: needs a kind: webhook, ntfy or exec"),
    ({"kind": "exec", "command": ["no-such-pager-for-pwtop"]},
     "#1 (exec): command 'no-such-pager-for-pwtop' not found or not executable"),
    ({"kind": "exec"}, "#1 (exec): needs a command"),
    ({"kind": "webhook", "url": "http://x/", "title": "{level} {nope}"},
     "#1 (webhook) title: unknown field {nope} in '{level} {nope}' (known: {rule}"),
    ({"kind": "webhook", "url": "http://x/", "body": "{value:.2f}"},
     "#1 (webhook) body: {value} takes no format or conversion"),
    ({"kind": "webhook", "url": "http://x/", "body": "{message"},
     "#1 (webhook) body: expected '}' before end of string in '{message'"),
    ({"kind": "webhook", "url": "http://x/", "events": ["fired", "exploded"]},
     "#1 (webhook) events: unknown event 'exploded'"),
    ({"kind": "webhook", "url": "http://x/", "retry": 3}, "#1: unknown key 'retry'"),
    ({"kind": "webhook", "url": "http://x/", "timeout": 0},
     "#1 timeout: expected a number from 0.1 to 300.0, got 0"),
    ({"kind": "ntfy", "url": "http://x/t", "token_file": "TMP/shared.token"},
     "#1 (ntfy): token_file TMP/shared.token is readable by others; chmod 600 it"),
    ({"kind": "ntfy", "url": "http://x/t", "token_file": "TMP/absent"},
     "#1 (ntfy): token_file TMP/absent: cannot read it (No such file or directory)"),
    ({"kind": "exec", "command": ["sh"], "token_file": "TMP/absent"},
     "#1 (exec): token_file is for kind webhook or ntfy; remove it"),
])
def test_bad_notify_tables_are_one_line_naming_the_file_and_table(tmp_path, capsys, table,
                                                                  expected):
    shared = tmp_path / "shared.token"   # for the token_file cases
    shared.write_text("tk\n")
    shared.chmod(0o644)
    table = {k: v.replace("TMP", str(tmp_path)) if isinstance(v, str) else v
             for k, v in table.items()}
    expected = expected.replace("TMP", str(tmp_path))
    config = tmp_path / "pwtop.toml"
    lines = ["[[alerts.notify]]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    config.write_text("\n".join(lines) + "\n")
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"pwtop: {config}: [[alerts.notify]] #1"), err
    assert expected in err, err


def test_a_good_config_checks_and_names_its_targets(tmp_path, capsys):
    config = tmp_path / "pwtop.toml"
    config.write_text('[alerts]\nrig = "car"\n\n[[alerts.notify]]\nkind = "ntfy"\n'
                      'url = "https://user:secret@ntfy.example/rigs?auth=x"\n\n'
                      f'[[alerts.notify]]\nkind = "exec"\ncommand = ["{sys.executable}"]\n')
    assert main(["--config", str(config), "config", "check"]) == 0
    from pwtop.config import load_settings
    targets = targets_from_settings(load_settings(config))
    # logs name a target without its credentials or query
    assert [t.name for t in targets] == ["#1 ntfy https://ntfy.example/rigs",
                                         f"#2 exec {Path(sys.executable).name}"]
    with pytest.raises(ConfigError):
        Notifier.from_settings(settings_from_dict(
            {"alerts": {"notify": [{"kind": "webhook"}]}}, "x"))


def test_the_documented_example_is_a_valid_config():
    import re
    import tomllib

    from pwtop.alerts.notify import notify_reference

    example = re.search(r"```toml\n(.*?)```", notify_reference(), re.S).group(1)
    tables = tomllib.loads(example)["alerts"]["notify"]
    assert [t["kind"] for t in tables] == ["ntfy", "webhook", "exec"]
    tables[2]["command"][0] = sys.executable  # the example's pager does not exist here
    targets = targets_from_settings(settings_from_dict({"alerts": {"notify": tables}}, "x"))
    assert [t.kind for t in targets] == ["ntfy", "webhook", "exec"]
