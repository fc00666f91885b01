"""Notifications: an alert sent to a webhook, an ntfy topic or a command, off the
session's path.

Each ``[[alerts.notify]]`` table is a target (keys in :class:`pwtop.config.NotifySettings`):

* ``webhook``: the alert POSTed as JSON (:func:`payload`) to ``url``;
* ``ntfy``: the rendered body POSTed to a topic URL with ``Title``, ``Priority`` (from the
  level) and ``Tags`` headers, as ntfy expects;
* ``exec``: ``command`` run (no shell) with the same JSON on stdin; exit status 0 is success.

*When* is the engine's business, the same for the banner, the log and a notification: an
alert is sent when it fires, escalates, and again as a reminder at most every rule's
``repeat`` while it stays active and unacknowledged (acknowledging stops the reminders
until it escalates). A target sends the kinds in its ``events`` for alerts at or above its
``min_level`` (the all-clear of an alert counts at the worst level it reached, so it
follows every alert that was sent).

Never blocking: the engine's listener only puts the notification in the target's bounded
queue (full: the newest is dropped and logged) and returns. One thread per target sends,
with its own ``timeout``, and retries a failure after ``backoff``, twice that, and so on,
``retries`` times before giving up; a slow or dead receiver delays only its own
notifications, never a round of the session nor another target. Every delivery is logged on
``pwtop.alerts.notify``: sent, each retry, given up.

Title and body are small templates: ``{field}`` is replaced by the alert's field
(:data:`FIELDS`), ``{{`` and ``}}`` are braces; anything else (an unknown field, a format
spec, an attribute) is refused when the config is checked, in one line.
"""

from __future__ import annotations

import email.header
import json
import logging
import queue
import shutil
import socket
import string
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pwtop import __version__
from pwtop.alerts.engine import (ACKNOWLEDGED, DEESCALATED, ESCALATED, FIRED, REPEATED,
                                 RESOLVED, Alert, AlertEvent)
from pwtop.config import NotifySettings, Settings, table_from_dict
from pwtop.errors import ConfigError
from pwtop.model import Level, to_jsonable
from pwtop.units import format_metric

log = logging.getLogger("pwtop.alerts.notify")

EVENTS = (FIRED, ESCALATED, REPEATED, DEESCALATED, ACKNOWLEDGED, RESOLVED)
#: Template fields -> what each holds (docs/alerts.md lists them).
FIELDS: dict[str, str] = {
    "rule": "the rule's name (database_wal_size)",
    "title": "what the rule watches, in a few words",
    "level": "the alert's level now (warning, critical...)",
    "previous": "its level before this change",
    "event": "fired, escalated, repeated, deescalated, acknowledged or resolved",
    "message": "the alert's one-line message (value, threshold, duration)",
    "value": "the value, in the metric's unit (64.2 MiB)",
    "threshold": "the threshold of the level, in the metric's unit",
    "metric": "the metric's name",
    "component": "database, system, async or realtime",
    "advice": "what to do about it",
    "rig": "this rig's name ([alerts] rig, else the host name)",
    "id": "the alert's number (the same for all its notifications)",
    "at": "when, ISO 8601 UTC",
}
#: ntfy's priorities (1 min .. 5 max) by level.
NTFY_PRIORITY = {Level.OK: "2", Level.INFO: "2", Level.WARNING: "3", Level.CRITICAL: "4",
                 Level.EMERGENCY: "5"}
#: How long closing waits for the notifications still queued (then they are abandoned).
CLOSE_S = 5.0
RECENT = 200
_STOP = object()


class DeliveryError(Exception):
    """One attempt failed; the message says how, in a few words."""


# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """``text`` parsed into (literal, field) pieces; only names from :data:`FIELDS`."""

    text: str
    pieces: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str, where: str) -> "Template":
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc} in {text!r} (write {{{{ and }}}} for a brace)"
                              ) from None
        pieces: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is not None and name not in FIELDS:
                raise ConfigError(f"{where}: unknown field {{{name}}} in {text!r} (known: "
                                  f"{', '.join('{' + f + '}' for f in FIELDS)})")
            if spec or conversion:
                raise ConfigError(f"{where}: {{{name}}} takes no format or conversion in "
                                  f"{text!r} (write {{{name}}})")
            pieces.append((literal, name))
        return cls(text, tuple(pieces))

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(literal + (values[name] if name is not None else "")
                       for literal, name in self.pieces)


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One checked ``[[alerts.notify]]`` table."""

    index: int
    kind: str
    url: str
    command: tuple[str, ...]
    title: Template
    body: Template
    events: frozenset[str]
    min_level: Level
    timeout: float
    retries: int
    backoff: float
    queue: int
    token: str = field(default="", repr=False)

    @property
    def name(self) -> str:
        """How logs name it: the URL without credentials or query, or the program."""
        if self.kind == "exec":
            return f"#{self.index} exec {Path(self.command[0]).name}"
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        return f"#{self.index} {self.kind} {parts.scheme}://{host}{port}{parts.path}"

    def wants(self, event: AlertEvent, alert: Alert) -> bool:
        level = event.level if event.kind in (FIRED, ESCALATED, REPEATED) else alert.peak
        return event.kind in self.events and level >= self.min_level


def _check_url(url: str, where: str) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}: url {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: url {url!r} is not an http:// or https:// URL with a "
                          "host")


def _read_token(path_text: str, where: str) -> str:
    """The token in ``token_file``, refused when others may read it."""
    path = Path(path_text).expanduser()
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{where}: token_file {path} is readable by others; chmod 600 "
                              "it")
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}: token_file {path}: cannot read it "
                          f"({exc.strerror or exc})") from None
    if not token or "\n" in token:
        raise ConfigError(f"{where}: token_file {path} must hold one line, the token")
    return token


def target_from_table(table: dict[str, Any], index: int, origin: str) -> Target:
    """Check one table: keys and types (as settings), then what each kind needs. Raises
    ConfigError naming ``origin``, the table and the key."""
    where = f"{origin}: [[alerts.notify]] #{index}"
    s: NotifySettings = table_from_dict(NotifySettings, table, where)
    if not s.kind:
        raise ConfigError(f"{where}: needs a kind: webhook, ntfy or exec")
    where += f" ({s.kind})"
    if s.kind in ("webhook", "ntfy"):
        if not s.url:
            raise ConfigError(f"{where}: needs a url")
        _check_url(s.url, where)
        if s.kind == "ntfy" and urllib.parse.urlsplit(s.url).path.strip("/") == "":
            raise ConfigError(f"{where}: url {s.url!r} names no topic (https://ntfy.sh/TOPIC)")
        if s.command:
            raise ConfigError(f"{where}: command is for kind exec; remove it")
        token = _read_token(s.token_file, where) if s.token_file else ""
    else:
        if not s.command:
            raise ConfigError(f"{where}: needs a command, e.g. [\"/usr/local/bin/page\", "
                              "\"--urgent\"]")
        if s.url or s.token_file:
            raise ConfigError(f"{where}: {'url' if s.url else 'token_file'} is for kind "
                              "webhook or ntfy; remove it")
        token = ""
        program = shutil.which(s.command[0])
        if program is None:
            raise ConfigError(f"{where}: command {s.command[0]!r} not found or not "
                              "executable (give its full path)")
    unknown = [e for e in s.events if e not in EVENTS]
    if unknown:
        raise ConfigError(f"{where} events: unknown event {unknown[0]!r} (known: "
                          f"{', '.join(EVENTS)})")
    return Target(index=index, kind=s.kind, url=s.url, command=tuple(s.command),
                  title=Template.parse(s.title, f"{where} title"),
                  body=Template.parse(s.body, f"{where} body"),
                  events=frozenset(s.events), min_level=Level.parse(s.min_level),
                  timeout=s.timeout, retries=s.retries, backoff=s.backoff, queue=s.queue,
                  token=token)


def targets_from_settings(settings: Settings) -> list[Target]:
    origin = str(settings.path) if getattr(settings, "path", None) else "config"
    return [target_from_table(t, i, origin)
            for i, t in enumerate(settings.alerts.notify, 1)]


# ---------------------------------------------------------------- what is sent


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="seconds")


def fields(event: AlertEvent, alert: Alert, rig: str) -> dict[str, str]:
    """The template fields of one event, as text."""
    def figure(value: float | None) -> str:
        return format_metric(alert.metric, value) if value is not None else "-"
    return {"rule": alert.rule, "title": alert.title, "level": event.level.label,
            "previous": event.previous.label, "event": event.kind, "message": event.message,
            "value": figure(event.value), "threshold": figure(event.threshold),
            "metric": alert.metric, "component": alert.component, "advice": alert.advice,
            "rig": rig, "id": str(alert.id), "at": _iso(event.at) or ""}


def payload(event: AlertEvent, alert: Alert, rig: str, title: str, body: str
            ) -> dict[str, Any]:
    """The JSON a webhook receives and a command reads on stdin."""
    return {"pwtop": __version__, "rig": rig, "event": event.kind, "id": alert.id,
            "rule": alert.rule, "title": alert.title, "level": event.level.label,
            "previous": event.previous.label, "metric": alert.metric,
            "component": alert.component, "value": event.value,
            "threshold": event.threshold, "message": event.message, "advice": alert.advice,
            "acknowledged": alert.acknowledged, "started_at": _iso(alert.started_at),
            "at": _iso(event.at), "evidence": to_jsonable(event.evidence),
            "notification": {"title": title, "body": body}}


@dataclass
class Notification:
    """One event on its way to one target."""

    title: str
    body: str
    data: dict[str, Any]
    level: Level
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return f"{self.data['event']} {self.data['level']} {self.data['rule']} " \
               f"(alert {self.data['id']})"


@dataclass
class Delivery:
    """What became of one notification: sent, or given up after ``attempts``."""

    target: str
    event: str
    rule: str
    level: str
    alert_id: int
    ok: bool
    attempts: int
    error: str = ""
    seconds: float = 0.0   # from queued to sent or given up


# ---------------------------------------------------------------- sending


def _http(target: Target, note: Notification) -> None:
    if target.kind == "webhook":
        data = json.dumps(note.data, default=str).encode()
        headers = {"Content-Type": "application/json"}
    else:
        data = note.body.encode()
        title = " ".join(note.title.split())  # one header line whatever the template held
        if not title.isascii():
            # RFC 2047, as ntfy reads it, in one encoded word (no folding)
            title = email.header.Header(title, "utf-8").encode(maxlinelen=100_000)
        headers = {"Title": title, "Priority": NTFY_PRIORITY[note.level],
                   "Tags": f"pwtop,{note.data['level']},{note.data['rule']}"}
    headers["User-Agent"] = f"pwtop/{__version__}"
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    request = urllib.request.Request(target.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=target.timeout) as reply:
            reply.read(65536)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise DeliveryError(f"no answer within {target.timeout:g} s") from None
        raise DeliveryError(str(getattr(reason, "strerror", None) or reason)) from None
    except (TimeoutError, socket.timeout):
        raise DeliveryError(f"no answer within {target.timeout:g} s") from None
    except OSError as exc:  # a connection reset mid-answer
        raise DeliveryError(exc.strerror or str(exc)) from None


def _exec(target: Target, note: Notification) -> None:
    try:
        done = subprocess.run(target.command, input=json.dumps(note.data, default=str),
                              capture_output=True, text=True, timeout=target.timeout)
    except subprocess.TimeoutExpired:
        raise DeliveryError(f"did not finish within {target.timeout:g} s (killed)") from None
    except OSError as exc:  # gone since the config was checked, not executable
        raise DeliveryError(f"cannot run {target.command[0]}: {exc.strerror or exc}") \
            from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise DeliveryError(f"exit status {done.returncode}" +
                            (f": {said[-1][:200]}" if said else ""))


class Sender:
    """One target's queue and the thread that empties it."""

    def __init__(self, target: Target, done: Callable[[Delivery], None]) -> None:
        self.target = target
        self.done = done
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=target.queue)
        self.stopping = threading.Event()
        self.closed = False
        self.dropped = 0
        self.send = _exec if target.kind == "exec" else _http
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"pwtop-notify-{target.index}")
        self.thread.start()

    def submit(self, note: Notification) -> bool:
        """Queue ``note`` without waiting; False (logged) when the queue is full."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(note)
        except queue.Full:
            self.dropped += 1
            log.warning("notification to %s dropped: %d already waiting (the receiver is "
                        "slow or down): %s", self.target.name, self.target.queue, note.label)
            return False
        return True

    def _run(self) -> None:
        while True:
            note = self.queue.get()
            if note is _STOP or self.stopping.is_set():
                return
            try:
                self._deliver(note)
            except Exception:  # a bug must not end the thread
                log.exception("notification to %s failed", self.target.name)

    def _deliver(self, note: Notification) -> None:
        target = self.target
        attempts = 0
        while True:
            attempts += 1
            try:
                self.send(target, note)
            except DeliveryError as exc:
                error = str(exc)
                if attempts > target.retries or self.stopping.is_set():
                    log.error("notification to %s given up after %d attempt%s (%s): %s",
                              target.name, attempts, "" if attempts == 1 else "s", error,
                              note.label)
                    self._record(note, False, attempts, error)
                    return
                delay = target.backoff * 2 ** (attempts - 1)
                log.warning("notification to %s failed (%s), retry %d of %d in %.3g s: %s",
                            target.name, error, attempts, target.retries, delay, note.label)
                if self.stopping.wait(delay):
                    log.error("notification to %s given up: pwtop stopped before retry %d "
                              "(%s): %s", target.name, attempts, error, note.label)
                    self._record(note, False, attempts, f"{error}; pwtop stopped")
                    return
                continue
            log.info("notification sent to %s (attempt %d, %.2f s after the alert): %s",
                     target.name, attempts, time.monotonic() - note.queued_at, note.label)
            self._record(note, True, attempts, "")
            return

    def _record(self, note: Notification, ok: bool, attempts: int, error: str) -> None:
        d = note.data
        self.done(Delivery(self.target.name, d["event"], d["rule"], d["level"], d["id"], ok,
                           attempts, error, time.monotonic() - note.queued_at))

    def close(self, deadline: float) -> None:
        """Let the queued notifications go until ``deadline`` (monotonic), then stop:
        retries end and what is left is logged as not delivered."""
        self.closed = True
        try:
            self.queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            pass
        self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            self.stopping.set()
            left = self.queue.qsize()
            log.warning("notifications to %s not all delivered: pwtop stopped with %d still "
                        "queued and one in flight", self.target.name, max(0, left - 1))


class Notifier:
    """The engine's listener: each event goes to the targets that want it."""

    def __init__(self, targets: Sequence[Target], rig: str = "") -> None:
        self.targets = list(targets)
        self.rig = rig or socket.gethostname()
        self.deliveries: deque[Delivery] = deque(maxlen=RECENT)
        self._changed = threading.Condition()
        self.senders = [Sender(t, self._done) for t in self.targets]
        if self.targets:
            log.info("notifications from rig %s to %s", self.rig,
                     ", ".join(t.name for t in self.targets))

    @classmethod
    def from_settings(cls, settings: Settings) -> "Notifier":
        return cls(targets_from_settings(settings), settings.alerts.rig)

    def notify(self, event: AlertEvent, alert: Alert) -> None:
        """Queue ``event`` for every target that wants it; never blocks."""
        values: dict[str, str] | None = None
        for sender in self.senders:
            target = sender.target
            if not target.wants(event, alert):
                continue
            values = values or fields(event, alert, self.rig)
            title, body = target.title.render(values), target.body.render(values)
            sender.submit(Notification(title, body, payload(event, alert, self.rig, title,
                                                            body), event.level))

    def _done(self, delivery: Delivery) -> None:
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float) -> bool:
        """Block until ``predicate(deliveries)`` holds (True) or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self.deliveries)), timeout)

    def close(self, timeout: float = CLOSE_S) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop (blocking: run it
        in a thread from the event loop)."""
        deadline = time.monotonic() + timeout
        for sender in self.senders:
            sender.close(deadline)


def notify_reference() -> str:
    """docs/alerts.md's section on notifications."""
    lines = [
        "",
        "## Notifications",
        "",
        "Each `[[alerts.notify]]` table sends alerts somewhere (its keys: "
        "[configuration.md](configuration.md#alertsnotify)):",
        "",
        "```toml",
        "[[alerts.notify]]          # ntfy: a push to your phone",
        'kind = "ntfy"',
        'url = "https://ntfy.sh/my-rigs-a8f3"',
        'title = "{rig}: {level} {title}"',
        "",
        "[[alerts.notify]]          # a webhook: the alert as JSON",
        'kind = "webhook"',
        'url = "http://127.0.0.1:9000/hooks/pwtop"',
        'min_level = "critical"',
        'events = ["fired", "escalated"]',
        "",
        "[[alerts.notify]]          # a command: the same JSON on stdin",
        'kind = "exec"',
        'command = ["/usr/local/bin/page-me", "--rig", "car"]',
        "```",
        "",
        "A target sends the events in its `events` (by default: an alert fired, escalated,",
        "was repeated, resolved) for alerts at or above `min_level`: the events the banner",
        "shows and the log records. A reminder (`repeated`) comes at most every rule's",
        "`repeat` while the alert stays active and unacknowledged; acknowledging it stops the",
        "reminders until it escalates. An all-clear counts at the worst level its alert",
        "reached, so it follows every alert that was sent.",
        "",
        "Sending never holds up pwtop: each target has its own bounded queue (`queue`; when",
        "it is full the newest notification is dropped and logged) and its own thread. A",
        "failed delivery (no connection, an HTTP status other than 2xx, no answer within",
        "`timeout`, a command exiting non-zero) is retried after `backoff`, then twice that,",
        "and so on, `retries` times, then given up. Every delivery is logged on",
        "`pwtop.alerts.notify`: sent, each retry, given up. When pwtop stops, what is still",
        f"queued has {CLOSE_S:g} s to go out.",
        "",
        "`webhook` POSTs this JSON (`exec` gets it on stdin): `pwtop` (version), `rig`,",
        "`event`, `id`, `rule`, `title`, `level`, `previous`, `metric`, `component`, `value`,",
        "`threshold` (in the metric's unit, unformatted), `message`, `advice`,",
        "`acknowledged`, `started_at`, `at`, `evidence` and `notification` (the rendered",
        "`title` and `body`). `ntfy` POSTs the rendered body with the `Title`, a `Priority`",
        "from the level (info 2, warning 3, critical 4, emergency 5) and `Tags`.",
        "",
        "`title` and `body` are templates: `{field}` is replaced, `{{` and `}}` write braces.",
        "A field outside this list, or a format such as `{value:.2f}`, is refused when the",
        "config is loaded, in one line naming the file, the table and the key:",
        "",
    ]
    lines += [f"- `{{{name}}}`: {text}" for name, text in FIELDS.items()]
    return "\n".join(lines) + "\n"
