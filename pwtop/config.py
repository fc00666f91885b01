"""Settings: one definition each, TOML in, TOML out.

Each setting is a dataclass field whose metadata carries its help text and bounds. From
that single definition come the validation, ``config.example.toml``, ``pwtop config show``
and the configuration reference in the docs. Files are read with :mod:`tomllib` and written
with ``tomli_w``; command-line flags override settings in memory and are never written back.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import tomli_w

from pwtop.errors import ConfigError

CONFIG_ENV = "PWTOP_CONFIG"
#: Settings that are arrays of tables ([[alerts.rules]], [[alerts.notify]], [[fleet.rigs]]),
#: checked by their own readers.
TABLE_LISTS = ("rules", "notify", "rigs")


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
            choices: tuple[str, ...] | None = None, unit: str = "") -> Any:
    """Declare one setting with its documentation and bounds."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "unit": unit}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DatabaseSettings:
    analyze_threshold: float = setting(
        0.1, "A workload query slower than this (median) is reported as slow.", min=0.0, unit="s")
    vacuum_threshold: float = setting(
        0.3, "Recommend VACUUM when free pages plus unused bytes exceed this share of the file.",
        min=0.0, max=1.0)
    vacuum_min_bytes: int = setting(
        1048576, "Recommend VACUUM (and alert on fragmentation) only when free pages plus "
        "unused bytes add up to at least this much: rewriting a small file (a fresh "
        "install's few pages are mostly unused space) returns nothing worth the writes.",
        min=0, unit="B")
    cache_size: int = setting(
        10000, "cache_size (pages) recommended to the app for each of its connections.", min=0)
    temp_store: str = setting(
        "memory", "temp_store recommended to the app.", choices=("default", "file", "memory"))
    synchronous: str = setting(
        "normal", "synchronous level recommended to the app (in WAL mode).",
        choices=("off", "normal", "full", "extra"))
    queries: list[str] = setting(
        [], "Workload queries to time and explain (SQL, parameters as ?). Empty: the built-in "
        "PiWardrive workload when the database has its tables.")
    probe_deadline: float = setting(
        2.0, "Longest any single probe may run before it is interrupted.", min=0.05, unit="s")
    slow_probe_interval: float = setting(
        300.0, "Interval of the expensive probes (dbstat scan, workload timing): each reads "
        "much of the file, a lot for a Pi's SD card; the figures show their age between runs.",
        min=1.0, unit="s")
    analysis_timeout: float = setting(
        60.0, "Longest the index analysis (sampling, what-if plans) may run on top of its "
        "check's budget (advice_check_budget) and its scratch copy's (snapshot_deadline): it "
        "runs in a child process, so that its memory goes back to the system when it ends; "
        "past this the process is stopped and the index advice says unavailable.", min=1.0,
        unit="s")
    busy_timeout: float = setting(
        2.0, "How long optimize waits for a lock before it gives up cleanly.", min=0.0,
        max=60.0, unit="s")
    snapshot_max_bytes: int = setting(
        268435456, "Largest scratch copy pwtop makes, through the backup API, to time the "
        "workload of a rollback-journal file (where a timed read would block the app's "
        "commits) or to check index advice (the copy plus the new indexes). A bigger file "
        "is timed on the live file only while no writer holds a lock, else only estimated.",
        min=0, unit="B")
    snapshot_min_free_bytes: int = setting(
        67108864, "Free space a scratch copy must leave on the scratch filesystem "
        "($PWTOP_SCRATCH, else the temp directory): a copy that would leave less is not made.",
        min=0, unit="B")
    snapshot_deadline: float = setting(
        10.0, "Longest the backup of a scratch copy may take: the copy is made in steps that "
        "let the app's writers in, and one still running then (a busy writer makes the "
        "backup restart) is abandoned and deleted.", min=0.0, unit="s")
    advice_check_budget: float = setting(
        60.0, "Longest the check of index advice on a scratch copy may take (building the "
        "chosen indexes and close runners-up there and timing the workload with and "
        "without each). Advice that could not be checked is shown as predicted only; 0 turns "
        "the check off.",
        min=0.0, unit="s")
    advice_record: str = setting(
        "", "Calibration record of the index advisor (JSON: what each check measured on a "
        "scratch copy, the advice it gave). Empty: $XDG_STATE_HOME/pwtop/advisor-record.json.")


@dataclass
class AsyncSettings:
    max_pool_size: int = setting(100, "Upper bound when growing a resource pool.", min=1)
    task_queue_size: int = setting(1000, "Maximum task queue size.", min=1)
    rate_limit: float = setting(1000.0, "Requests per second allowed by a rate limiter.", min=0.0,
                                unit="1/s")
    batch_size: int = setting(50, "Default batch size of a task queue.", min=1)
    circuit_breaker_threshold: int = setting(
        5, "Consecutive failures before a circuit breaker opens.", min=1)
    slow_operation_threshold: float = setting(
        0.5, "An operation slower than this is kept in the recent-slow list.", min=0.0, unit="s")


@dataclass
class RealtimeSettings:
    max_connections: int = setting(1000, "Maximum WebSocket connections of a hub.", min=1)
    heartbeat_interval: float = setting(30.0, "Heartbeat (ping) interval.", min=0.1, unit="s")
    message_queue_size: int = setting(100, "Per-connection send queue length.", min=1)
    compression: bool = setting(True, "Offer permessage-deflate compression.")
    buffer_size: int = setting(65536, "WebSocket write buffer size.", min=1024, unit="B")


@dataclass
class TargetSettings:
    database: str = setting(
        "", "SQLite database to watch. Empty: $PW_DB_PATH, then ~/.config/piwardrive/app.db.")
    agent: str = setting(
        "", "Address of the app's pwtop agent (ws://127.0.0.1:PORT or unix:PATH). Empty: none.")
    agent_token_file: str = setting(
        "", "File holding the agent's command token. Empty: the agent's default location.")
    process_match: str = setting(
        "piwardrive", "Find the app's process by this text in its command line (an ASGI "
        "server running a matching module:app first; nothing matching: the one ASGI app "
        "server running). While pwtop is connected to the app's agent, the pid it reports "
        "is used instead.")
    pid_file: str = setting("", "Find the app's process by this pid file (wins over the match; "
                                "the agent's pid wins over both).")
    probe_urls: list[str] = setting(
        [], "WebSocket (ws://, wss://) and SSE (http://, https://) URLs to probe.")


@dataclass
class UiSettings:
    interval: float = setting(1.0, "Refresh interval of the fast collectors.", min=0.2, max=60.0,
                              unit="s")
    theme: str = setting("pwtop-dark", "Colour theme (see themes/).")
    ascii: str = setting(
        "auto", "Draw charts, sparklines, borders and rules with glyphs every console font "
        "has (ASCII): on, off, or auto = on the Linux console (TERM=linux, a Pi's own "
        "screen), whose font has no braille and few block glyphs. --ascii forces it on.",
        choices=("auto", "on", "off"))


@dataclass
class AlertsSettings:
    enabled: bool = setting(True, "Evaluate alert rules.")
    rules: list[dict[str, Any]] = setting(
        [], "Extra [[alerts.rules]] tables, added to the built-in rule set (see docs/alerts.md).")
    responses: list[str] = setting(
        [], "Automated responses allowed to act (opt-in): scale_pool, restart_component, "
        "throttle, degraded_mode (see docs/alerts.md).")
    response_interval: float = setting(
        60.0, "Least time between two actions of one automated response.", min=1.0, unit="s")
    scale_pool_factor: float = setting(
        2.0, "scale_pool multiplies a pool's max_size by this (up to [async] max_pool_size).",
        min=1.0, max=10.0)
    throttle_factor: float = setting(
        0.5, "throttle multiplies each rate limiter's rate by this.", min=0.05, max=1.0)
    notify: list[dict[str, Any]] = setting(
        [], "[[alerts.notify]] tables: where alerts are sent (webhook, ntfy, exec); their "
        "keys are in docs/configuration.md, examples in docs/alerts.md.")
    rig: str = setting("", "This rig's name in notifications ({rig}). Empty: the host name.")


@dataclass
class NotifySettings:
    """The keys of one ``[[alerts.notify]]`` table (checked by pwtop.alerts.notify)."""

    kind: str = setting("", "webhook (the alert POSTed as JSON), ntfy (the body POSTed to a "
                        "topic URL, with Title, Priority and Tags headers) or exec (a "
                        "command given the alert as JSON on stdin). Required.",
                        choices=("webhook", "ntfy", "exec"))
    url: str = setting("", "webhook and ntfy: the http:// or https:// URL "
                       "(ntfy: https://ntfy.sh/TOPIC or your server's topic).")
    command: list[str] = setting([], "exec: the program and its arguments (no shell).")
    token_file: str = setting("", "webhook and ntfy: a file holding a token sent as "
                              "'Authorization: Bearer TOKEN' (an ntfy access token, a "
                              "webhook's secret), kept out of the config; readable by its "
                              "owner only.")
    title: str = setting("pwtop {rig}: {level} {title}", "Title template: {rule}, {level}, "
                         "{message}, {value}, {rig} and the other fields in docs/alerts.md.")
    body: str = setting("{message}", "Body template (the same fields).")
    events: list[str] = setting(["fired", "escalated", "repeated", "resolved"],
                                "Which changes are sent: fired, escalated, repeated, "
                                "deescalated, acknowledged, resolved.")
    min_level: str = setting("warning", "Alerts below this level are not sent.",
                             choices=("info", "warning", "critical", "emergency"))
    timeout: float = setting(10.0, "Longest one delivery may take (HTTP answer, command "
                             "run).", min=0.1, max=300.0, unit="s")
    retries: int = setting(3, "Retries after a failed delivery before it is given up.",
                           min=0, max=20)
    backoff: float = setting(2.0, "Wait before the first retry; doubled for each next one.",
                             min=0.01, max=3600.0, unit="s")
    queue: int = setting(100, "Notifications waiting for this receiver at most; a newer "
                         "one is dropped (and logged) while it is full.", min=1, max=10000)


@dataclass
class HistorySettings:
    enabled: bool = setting(True, "Record samples into pwtop's own history file.")
    path: str = setting("", "History file. Empty: $XDG_DATA_HOME/pwtop/history.db.")
    raw_retention_hours: float = setting(6.0, "How long raw samples are kept.", min=0.1,
                                         unit="h")
    rollup_retention_days: float = setting(30.0, "How long 1-minute and 1-hour rollups are kept.",
                                           min=1.0, unit="d")
    max_bytes: int = setting(200_000_000, "Size bound of the history file; the oldest samples "
                             "go first when it is reached.", min=1_000_000, unit="B")
    write_interval: float = setting(
        10.0, "Samples are written in batches this often (longer: less SD card wear, more "
        "lost on a crash).", min=1.0, max=300.0, unit="s")
    raw_samples: str = setting(
        "auto", "Where raw samples (every poll's value) are kept: \"disk\" writes them into "
        "the history file (kept raw_retention_hours); \"memory\" keeps the last 15 minutes "
        "in memory (what charts of 15 minutes or less read) and writes only the 1-minute and "
        "1-hour rollups, every 5 minutes, for an SD card's sake (docs/benchmarks.md, `pwtop "
        "serve`); \"auto\" is memory under `pwtop serve` (all day on a rig) and disk for "
        "the TUI and monitor.",
        choices=("auto", "memory", "disk"))
    chart_target: str = setting(
        "", "Whose samples the TUI's charts read from the history: empty for the target "
        "being watched (the database file and agent of this run), \"all\", \"unknown\" "
        "(samples recorded before pwtop kept targets), or a target as `pwtop history "
        "targets` lists it.")


@dataclass
class ServeSettings:
    listen: str = setting(
        "127.0.0.1:9477", "Where `pwtop serve` listens (HOST:PORT; [V6]:PORT): the stream, "
        "/metrics, /healthz and /v1/summary. On an address other than loopback every read "
        "needs the read token.")
    name: str = setting("", "The rig's name in the fleet view. Empty: the host name.")
    interval: float = setting(
        1.0, "Refresh interval of `pwtop serve`'s fast collectors (the database file is "
        "read every third).", min=0.2, max=60.0, unit="s")
    read_token_file: str = setting(
        "", "File holding the read token (Authorization: Bearer) asked of every read when "
        "listening beyond loopback. Empty: serve-read.token in pwtop's runtime directory, "
        "created (mode 0600) at the first start that needs it.")
    command_token_file: str = setting(
        "", "File holding the command token that optimize and respond commands must carry. "
        "Empty: serve-command.token in pwtop's runtime directory, created (mode 0600) at "
        "the first start.")


@dataclass
class LoggingSettings:
    path: str = setting("", "Log file. Empty: $XDG_STATE_HOME/pwtop/pwtop.log.")
    level: str = setting("info", "Log level.", choices=("debug", "info", "warning", "error"))
    max_bytes: int = setting(1_000_000, "Rotate the log at this size.", min=10_000, unit="B")
    backups: int = setting(3, "Rotated log files kept.", min=0, max=100)


#: Arrays of tables inside a group ("group.key") -> the dataclass whose fields are each
#: table's keys (documented like the settings; see :func:`table_from_dict`).
TABLES: dict[str, type] = {"alerts.notify": NotifySettings}


@dataclass
class FleetSettings:
    rigs: list[dict[str, Any]] = setting(
        [], "[[fleet.rigs]] tables, one per rig `pwtop fleet` watches: name, url (ws://HOST:"
        "PORT, HOST:PORT or ssh://user@host), token_file (the rig's read token, needed off "
        "loopback), command_token_file (its command token: optimize and acknowledge from "
        "the rig's tabs), group.")
    ssh_command: list[str] = setting(
        ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
         "-o", "ServerAliveInterval=5"],
        "How ssh:// rigs are reached: this command, then -p PORT when the URL has one, the "
        "user@host and remote_command.")
    remote_command: str = setting(
        "pwtop serve --stdio", "What an ssh:// rig runs: its pwtop daemon speaking on "
        "stdin/stdout.")
    connect_timeout: float = setting(
        5.0, "Longest wait for a rig to answer a connection (then it is unreachable and "
        "retried).", min=0.5, max=120.0, unit="s")


# TOML table name -> (attribute on Settings, dataclass). "async" is a Python keyword.
GROUPS: dict[str, tuple[str, type]] = {
    "database": ("database", DatabaseSettings),
    "async": ("async_", AsyncSettings),
    "realtime": ("realtime", RealtimeSettings),
    "target": ("target", TargetSettings),
    "ui": ("ui", UiSettings),
    "alerts": ("alerts", AlertsSettings),
    "history": ("history", HistorySettings),
    "serve": ("serve", ServeSettings),
    "logging": ("logging", LoggingSettings),
    "fleet": ("fleet", FleetSettings),
}


@dataclass
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    async_: AsyncSettings = field(default_factory=AsyncSettings)
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    target: TargetSettings = field(default_factory=TargetSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    # "group.key" -> where the value came from: "default", a file path, or "command line".
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    path: Path | None = field(default=None, compare=False)

    def group(self, name: str) -> Any:
        return getattr(self, GROUPS[name][0])

    def override(self, dotted: str, value: Any) -> None:
        """Set a value from the command line (in memory only; never saved)."""
        group, key = dotted.split(".", 1)
        setattr(self.group(group), key, value)
        self.sources[dotted] = "command line"

    def from_file(self, group: str) -> bool:
        """True when the config file set a key of ``[group]``. The alert rules are checked
        against the metric catalog only then (:func:`pwtop.alerts.rules.validate`, run by
        the CLI after loading), so reading a config never loads the alert engine."""
        return any(name.startswith(f"{group}.") and source not in ("default", "command line")
                   for name, source in self.sources.items())

    def to_toml_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(self.group(name)) for name in GROUPS}


def iter_settings() -> Iterator[tuple[str, dataclasses.Field]]:
    """Yield ("group.key", field) for every setting, in definition order."""
    for group, (_, cls) in GROUPS.items():
        for f in dataclasses.fields(cls):
            yield f"{group}.{f.name}", f


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


# ---------------------------------------------------------------- paths

def _home() -> Path:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no passwd entry
        return Path(os.getcwd())


def _xdg(var: str, fallback: str) -> Path:
    """An XDG base directory; unset or relative values fall back as the spec says."""
    value = os.environ.get(var, "").strip()
    if value and os.path.isabs(value):
        return Path(value)
    return _home() / fallback


def config_home() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "pwtop"


def state_home() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "pwtop"


def data_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "pwtop"


def runtime_dir() -> Path:
    value = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if value and os.path.isdir(value):
        return Path(value) / "pwtop"
    return state_home() / "run"


def default_config_path() -> Path:
    return config_home() / "config.toml"


def ui_state_path() -> Path:
    return state_home() / "ui-state.toml"


def default_database_path() -> Path:
    env = os.environ.get("PW_DB_PATH", "").strip()
    if env:
        return Path(env).expanduser()
    return _home() / ".config" / "piwardrive" / "app.db"


def log_path(settings: Settings) -> Path:
    return Path(settings.logging.path).expanduser() if settings.logging.path else (
        state_home() / "pwtop.log")


def history_path(settings: Settings) -> Path:
    return Path(settings.history.path).expanduser() if settings.history.path else (
        data_home() / "history.db")


# ---------------------------------------------------------------- validation

def _type_name(f: dataclasses.Field) -> str:
    default = _default_of(f)
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if f.name in TABLE_LISTS:
        return "an array of tables"
    return "an array of strings"


def range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def _check_value(where: str, f: dataclasses.Field, value: Any) -> Any:
    """Return ``value`` converted to the setting's type, or raise ConfigError."""
    default = _default_of(f)
    meta = f.metadata

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {value!r}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        # NaN compares false with every bound, so it would pass the range check below
        # (an interval of NaN spins the TUI); infinities would pass an open range.
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise bad(f"a finite number {range_text(meta.get('min'), meta.get('max'))}".rstrip())
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
    elif isinstance(default, list):
        if not isinstance(value, list):
            raise bad(_type_name(f))
        item_type = dict if f.name in TABLE_LISTS else str
        if not all(isinstance(v, item_type) for v in value):
            raise bad(_type_name(f))
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise bad(f"{_type_name(f)} {range_text(lo, hi)}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise bad("one of " + ", ".join(repr(c) for c in choices))
    return value


def check_setting(name: str, value: Any, where: str) -> Any:
    """``value`` checked against the setting ``name`` ("group.key"), or a one-line
    ConfigError that starts with ``where``: a flag that overrides a setting (``--interval``)
    has the same type and bounds as the setting, from its one definition here."""
    group, key = name.split(".", 1)
    fields = {f.name: f for f in dataclasses.fields(GROUPS[group][1])}
    return _check_value(where, fields[key], value)


def table_from_dict(cls: type, table: dict[str, Any], where: str) -> Any:
    """One table of an array of tables (:data:`TABLES`) as its dataclass, each key checked
    like a setting; a ConfigError starting with ``where`` names the key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(fields)})")
    return cls(**{key: _check_value(f"{where} {key}", fields[key], value)
                  for key, value in table.items()})


def settings_from_dict(data: dict[str, Any], origin: str) -> Settings:
    """Validate a parsed TOML document into Settings; errors name ``origin`` and the key."""
    settings = Settings(path=Path(origin) if origin not in ("default", "") else None)
    settings.sources = {name: "default" for name, _ in iter_settings()}
    for group, table in data.items():
        if group not in GROUPS:
            known = ", ".join(f"[{g}]" for g in GROUPS)
            raise ConfigError(f"{origin}: unknown table [{group}] (known: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {group} must be a table like [{group}]")
        cls = GROUPS[group][1]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        target = settings.group(group)
        for key, value in table.items():
            if key not in fields:
                known = ", ".join(fields)
                raise ConfigError(f"{origin}: [{group}] unknown key {key!r} (known: {known})")
            checked = _check_value(f"{origin}: [{group}] {key}", fields[key], value)
            setattr(target, key, checked)
            settings.sources[f"{group}.{key}"] = origin
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Find and load the configuration.

    Lookup order: ``path`` (``--config``), ``$PWTOP_CONFIG``, ``$XDG_CONFIG_HOME/pwtop/
    config.toml``, then the defaults. A file named explicitly must exist; the XDG file is
    optional.
    """
    explicit = path if path is not None else (os.environ.get(CONFIG_ENV) or None)
    if explicit is not None:
        candidate = Path(explicit).expanduser()
        label = "--config" if path is not None else f"${CONFIG_ENV}"
        if not candidate.exists():
            raise ConfigError(
                f"{candidate}: config file not found (given by {label}); "
                f"create one with 'pwtop config init {candidate}'")
    else:
        candidate = default_config_path()
        if not candidate.exists():
            return settings_from_dict({}, "default")
    if candidate.is_dir():
        raise ConfigError(f"{candidate}: is a directory, expected a TOML config file")
    try:
        raw = candidate.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{candidate}: cannot read config file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{candidate}: not UTF-8 text at byte {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{candidate}: TOML syntax error: {exc}") from exc
    return settings_from_dict(data, str(candidate))


# ---------------------------------------------------------------- writing

def render_value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) and v.isprintable() for v in value):
        return "[" + ", ".join(render_value(v) for v in value) + "]"  # on one line
    rendered = tomli_w.dumps({"k": value}).strip()
    return rendered[len("k = "):] if rendered.startswith("k = ") else rendered


def example_toml() -> str:
    """The documented example config: every key with its default and its help."""
    lines = [
        "# pwtop configuration. Every key is shown with its default value.",
        "# Lookup: --config PATH, $PWTOP_CONFIG, $XDG_CONFIG_HOME/pwtop/config.toml.",
        "# Command-line flags override these values for one run and are never saved here.",
    ]
    for group, (_, cls) in GROUPS.items():
        lines += ["", f"[{group}]"]
        for f in dataclasses.fields(cls):
            meta = f.metadata
            doc = meta["help"]
            extra = []
            if meta.get("unit"):
                extra.append(f"unit: {meta['unit']}")
            if meta.get("choices"):
                extra.append("one of: " + ", ".join(meta["choices"]))
            rng = range_text(meta.get("min"), meta.get("max"))
            if rng:
                extra.append(rng)
            lines.append(f"# {doc}" + (f" ({'; '.join(extra)})" if extra else ""))
            default = _default_of(f)
            if f.name in TABLE_LISTS:
                lines.append(f"{f.name} = []")
            else:
                lines.append(f"{f.name} = {render_value(default)}")
    return "\n".join(lines) + "\n"


def write_example(path: Path, *, force: bool = False) -> Path:
    """Write the example config to ``path``; refuse to overwrite unless ``force``."""
    path = path.expanduser()
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; use --force to overwrite it")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(example_toml(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write config file ({exc.strerror})") from exc
    return path


def describe(settings: Settings) -> list[tuple[str, Any, str]]:
    """("group.key", value, source) for every setting, for ``pwtop config show``."""
    rows = []
    for name, _ in iter_settings():
        group, key = name.split(".", 1)
        rows.append((name, getattr(settings.group(group), key),
                     settings.sources.get(name, "default")))
    return rows
