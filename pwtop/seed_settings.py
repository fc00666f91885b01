"""The seed's settings dicts, read into pwtop's settings groups.

PiWardrive's performance suite configures its three optimizers with plain dicts
(``DB_OPTIMIZER_SETTINGS``, ``ASYNC_OPTIMIZER_SETTINGS``, ``REALTIME_OPTIMIZER_SETTINGS``).
pwtop's optimizers take those dicts as written, so an app switches by changing one import;
each key lands on the setting of the same name in ``[database]``, ``[async]`` or
``[realtime]`` (:mod:`pwtop.config`), and :data:`MEANING` says what each one changes.

The dicts are checked as strictly as the TOML file: a key pwtop does not know, or a value of
the wrong type or out of bounds, is one :class:`SettingsDictError` naming the dict and the
key. A key left out keeps pwtop's default. pwtop's own keys of the same group (e.g.
``slow_operation_threshold``) are accepted too, so one dict can carry both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pwtop.config import GROUPS, Settings, _check_value
from pwtop.errors import ConfigError

#: Settings group -> the name the seed gives its dict.
DICT_NAMES: dict[str, str] = {
    "database": "DB_OPTIMIZER_SETTINGS",
    "async": "ASYNC_OPTIMIZER_SETTINGS",
    "realtime": "REALTIME_OPTIMIZER_SETTINGS",
}

#: Settings group -> the seed's keys, in the seed's order.
SEED_KEYS: dict[str, tuple[str, ...]] = {
    "database": ("analyze_threshold", "vacuum_threshold", "cache_size", "temp_store",
                 "synchronous"),
    "async": ("max_pool_size", "task_queue_size", "rate_limit", "batch_size",
              "circuit_breaker_threshold"),
    "realtime": ("max_connections", "heartbeat_interval", "message_queue_size", "compression",
                 "buffer_size"),
}

#: (group, key) -> what the key changes in pwtop (the table in docs/seed-settings.md).
MEANING: dict[tuple[str, str], str] = {
    ("database", "analyze_threshold"):
        "a workload query slower than this median (seconds) is reported as slow and "
        "gets an index or ANALYZE recommendation",
    ("database", "vacuum_threshold"):
        "VACUUM is recommended (and the fragmentation alert fires) when free pages plus "
        "unused bytes exceed this share of the file (and `vacuum_min_bytes`)",
    ("database", "cache_size"):
        "the `PRAGMA cache_size` (pages) the connection-settings recommendation gives the "
        "app for each of its connections; pwtop never sets it on the app's connections",
    ("database", "temp_store"):
        "the `PRAGMA temp_store` that recommendation gives (`default`, `file`, `memory`)",
    ("database", "synchronous"):
        "the `PRAGMA synchronous` that recommendation gives for WAL mode (`off`, `normal`, "
        "`full`, `extra`)",
    ("async", "max_pool_size"):
        "upper bound of `resize_pool` and of the `scale_pool` automated response; a pool is "
        "never grown past it",
    ("async", "task_queue_size"):
        "`maxsize` of the task queues the optimizer creates (`opt.task_queue(...)`) or "
        "registers without an explicit `maxsize`",
    ("async", "rate_limit"):
        "upper bound of `set_rate` (and of a limiter's burst): no command raises a rate "
        "limiter above it",
    ("async", "batch_size"):
        "`batch_size` of the task queues the optimizer creates or registers without an "
        "explicit one (at most their `maxsize`)",
    ("async", "circuit_breaker_threshold"):
        "consecutive failures that open the circuit breakers the optimizer creates "
        "(`opt.circuit_breaker(...)`) or registers without an explicit `threshold`",
    ("realtime", "max_connections"):
        "connection limit of every attached hub and SSE stream: a handshake beyond it is "
        "refused with HTTP 503",
    ("realtime", "heartbeat_interval"):
        "seconds between a hub's pings to each connection (a connection missing its pongs "
        "is closed) and between an SSE stream's keep-alive comments",
    ("realtime", "message_queue_size"):
        "per-connection send queue of every hub and SSE stream (drop-oldest when full)",
    ("realtime", "compression"):
        "permessage-deflate offered at the WebSocket handshake by the hub's own server "
        "(`hub.serve()`; new connections). Through `hub.serve_asgi` the ASGI server "
        "negotiates it (uvicorn: `ws_per_message_deflate`); SSE is never compressed",
    ("realtime", "buffer_size"):
        "write-buffer high-water mark (bytes) of each connection of the hub's own server: "
        "above it a message waits in the send queue instead of the socket buffer. Through "
        "`hub.serve_asgi` the ASGI server owns the socket and every message goes through "
        "the send queue",
}


class SettingsDictError(ConfigError, ValueError):
    """A settings dict with an unknown key or a value of the wrong type or range."""


def group_settings(group: str, value: Any, owner: str) -> Any:
    """The ``group`` settings dataclass for what an optimizer was given.

    ``value`` is None (pwtop's defaults), a whole :class:`~pwtop.config.Settings`, the
    group's own dataclass, or a dict such as the seed's. ``owner`` (the class name) goes
    into the error for anything else.
    """
    cls = GROUPS[group][1]
    if value is None:
        return cls()
    if isinstance(value, Settings):
        return value.group(group)
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return from_dict(group, value)
    raise SettingsDictError(
        f"{owner}: settings must be a dict like {DICT_NAMES[group]}, a "
        f"pwtop.config.{cls.__name__} or a pwtop.config.Settings, got "
        f"{type(value).__name__}")


def from_dict(group: str, data: Mapping[str, Any]) -> Any:
    """Validate ``data`` (keys of ``[group]``) into the group's settings dataclass."""
    name = DICT_NAMES[group]
    cls = GROUPS[group][1]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    seed = SEED_KEYS[group]
    own = [k for k in fields if k not in seed]
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in fields:
            expected = ", ".join(seed) + (f" (or pwtop's own: {', '.join(own)})" if own else "")
            raise SettingsDictError(f"{name}: unknown key {key!r}; expected one of {expected}")
        f = fields[key]
        if isinstance(raw, str) and f.metadata.get("choices"):
            raw = raw.lower()  # SQLite reads NORMAL and normal alike
        try:
            values[key] = _check_value(f"{name}[{key!r}]", f, raw)
        except ConfigError as exc:
            raise SettingsDictError(exc.message) from None
    settings = cls(**values)
    _check_together(group, settings)
    return settings


def _check_together(group: str, settings: Any) -> None:
    """Constraints between keys (a batch is taken from one queue, so it fits in it)."""
    if group == "async" and settings.batch_size > settings.task_queue_size:
        raise SettingsDictError(
            f"{DICT_NAMES[group]}: batch_size {settings.batch_size} is larger than "
            f"task_queue_size {settings.task_queue_size} (a batch is taken from one queue)")


def reference() -> str:
    """``docs/seed-settings.md``: what each seed key changes (``python -m pwtop.docs``)."""
    lines = [
        "# The seed's settings dicts",
        "",
        "Generated from `pwtop/seed_settings.py` by `python -m pwtop.docs`; do not edit by "
        "hand.",
        "",
        "pwtop's optimizers take PiWardrive's settings dicts as written, as their settings "
        "argument:",
        "",
        "```python",
        "from pwtop.performance import AsyncOptimizer, DatabaseOptimizer, RealtimeOptimizer",
        "",
        "db = DatabaseOptimizer(DB_PATH, DB_OPTIMIZER_SETTINGS)",
        "opt = AsyncOptimizer(ASYNC_OPTIMIZER_SETTINGS)",
        "rt = RealtimeOptimizer(REALTIME_OPTIMIZER_SETTINGS, hubs=[hub], streams=[sse])",
        "```",
        "",
        "Each key sets the pwtop setting of the same name (see "
        "[configuration.md](configuration.md)) and changes what the table says; none is "
        "accepted and ignored. A key left out keeps pwtop's default. An unknown key, or a "
        "value of the wrong type or out of range, is one `ValueError` naming the dict and "
        "the key, e.g. `ASYNC_OPTIMIZER_SETTINGS: unknown key 'max_pool'; expected one of "
        "max_pool_size, ...`. The optimizers also take pwtop's own settings objects "
        "(`pwtop.config.Settings` or the group's dataclass) instead of a dict.",
        "",
    ]
    for group, name in DICT_NAMES.items():
        cls = GROUPS[group][1]
        defaults = cls()
        lines += [f"## `{name}`: `[{group}]`", "",
                  "| key | pwtop default | what it changes |", "| --- | --- | --- |"]
        for key in SEED_KEYS[group]:
            lines.append(f"| `{key}` | `{getattr(defaults, key)!r}` | "
                         f"{MEANING[(group, key)]} |")
        own = [f.name for f in dataclasses.fields(cls) if f.name not in SEED_KEYS[group]]
        if own:
            lines += ["", f"pwtop's own keys of `[{group}]` are accepted in the same dict: "
                      + ", ".join(f"`{k}`" for k in own) + "."]
        lines.append("")
    lines += [
        "`RealtimeOptimizer` applies its settings to each hub and SSE stream it is given "
        "(or later `attach`es); without settings they keep their own. `compression` and "
        "`buffer_size` act on the sockets a hub owns, those of its own server "
        "(`hub.serve()`); a hub serving the app's routes (`hub.serve_asgi`) leaves both to "
        "the ASGI server, as the table says.",
        "",
    ]
    return "\n".join(lines)
