"""The commands an optimizer executes by name, each with validated, bounded parameters.

The agent receives ``{"command": "resize_pool", "params": {"name": "db", "size": 12}}``
from pwtop and calls ``opt.execute("resize_pool", name="db", size=12)``. Every parameter is
type-checked and bounded here, with the bounds taken from :class:`pwtop.config.AsyncSettings`
(``max_pool_size``, ``rate_limit``) or the primitive's own limits, so a remote client can
never push a pool to 10 000 connections or a rate to infinity. Bad input raises
:class:`CommandError` with one line saying what was wrong and what is allowed.

A recommendation's ``action`` is the same command written as text
(``resize_pool name=db size=12``); :func:`parse_action` turns it back into a call.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pwtop.aio.queue import MAX_WORKERS
from pwtop.errors import PwtopError

if TYPE_CHECKING:
    from pwtop.aio.optimizer import AsyncOptimizer

MAX_BREAKER_THRESHOLD = 1000
MIN_RESET_TIMEOUT = 0.1
MAX_RESET_TIMEOUT = 3600.0


class CommandError(PwtopError):
    """A command was unknown, or its parameters missing, of the wrong type or out of bounds."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "str", "int", "float", "bool"
    help: str
    required: bool = True


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    run: Callable[..., dict[str, Any]] | None = None

    def describe(self) -> dict[str, Any]:
        return {"help": self.help,
                "params": {p.name: {"type": p.type, "help": p.help, "required": p.required}
                           for p in self.params}}


# ---------------------------------------------------------------- parameter checks

def _coerce(command: str, param: Param, value: Any) -> Any:
    def bad(expected: str) -> CommandError:
        return CommandError(f"{command}: parameter {param.name} must be {expected}, "
                            f"got {value!r}")

    if param.type == "str":
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
        return value
    if param.type == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad("a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise bad("a finite number")
    if param.type == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise bad("an integer")
            value = int(value)
        return value
    return float(value)


def _bounded(command: str, name: str, value: float, lo: float | None, hi: float | None,
             why: str = "") -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = (f"from {lo:g} to {hi:g}" if lo is not None and hi is not None
               else f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        raise CommandError(f"{command}: {name} must be {rng}{why}, got {value:g}")


def _target(opt: "AsyncOptimizer", kind: str, command: str, name: str) -> Any:
    registry = opt.registered(kind)
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none registered"
        raise CommandError(f"{command}: no {kind[:-1]} named {name!r} (known: {known})")
    return registry[name]


# ---------------------------------------------------------------- the commands

def _resize_pool(opt: "AsyncOptimizer", dry_run: bool, name: str, size: int) -> dict[str, Any]:
    pool = _target(opt, "pools", "resize_pool", name)
    _bounded("resize_pool", "size", size, 1, opt.settings.max_pool_size,
             " ([async] max_pool_size)")
    before = {"max_size": pool.max_size, "size": pool.size, "in_use": pool.in_use,
              "waiters": pool.waiters}
    if not dry_run:
        pool.resize(size)
    after = {"max_size": size if dry_run else pool.max_size, "size": pool.size,
             "in_use": pool.in_use, "waiters": pool.waiters}
    return {"target": f"pool {name}", "before": before, "after": after,
            "message": f"pool {name}: max_size {before['max_size']} -> {size}"}


def _set_rate(opt: "AsyncOptimizer", dry_run: bool, name: str, rate: float,
              burst: float | None = None) -> dict[str, Any]:
    limiter = _target(opt, "limiters", "set_rate", name)
    limit = opt.settings.rate_limit
    if not rate > 0:
        raise CommandError(f"set_rate: rate must be > 0 per second, got {rate:g}")
    _bounded("set_rate", "rate", rate, None, limit, " ([async] rate_limit)")
    if burst is not None:
        _bounded("set_rate", "burst", burst, 1, max(1.0, limit), " ([async] rate_limit)")
    before = {"rate_per_second": limiter.rate, "burst": limiter.burst}
    if not dry_run:
        limiter.set_rate(rate, burst)
    after = {"rate_per_second": rate, "burst": limiter.burst if burst is None else burst}
    return {"target": f"limiter {name}", "before": before, "after": after,
            "message": f"limiter {name}: rate {before['rate_per_second']:g}/s -> {rate:g}/s"}


def _reset_breaker(opt: "AsyncOptimizer", dry_run: bool, name: str) -> dict[str, Any]:
    breaker = _target(opt, "breakers", "reset_breaker", name)
    before = {"state": breaker.state}
    if not dry_run:
        breaker.reset()
    after = {"state": "closed" if dry_run else breaker.state}
    return {"target": f"breaker {name}", "before": before, "after": after,
            "message": f"breaker {name}: {before['state']} -> {after['state']}"}


def _set_breaker(opt: "AsyncOptimizer", dry_run: bool, name: str, threshold: int | None = None,
                 reset_timeout: float | None = None) -> dict[str, Any]:
    breaker = _target(opt, "breakers", "set_breaker", name)
    if threshold is None and reset_timeout is None:
        raise CommandError("set_breaker: give threshold, reset_timeout or both")
    if threshold is not None:
        _bounded("set_breaker", "threshold", threshold, 1, MAX_BREAKER_THRESHOLD)
    if reset_timeout is not None:
        _bounded("set_breaker", "reset_timeout", reset_timeout, MIN_RESET_TIMEOUT,
                 MAX_RESET_TIMEOUT)
    before = {"threshold": breaker.threshold, "reset_timeout_seconds": breaker.reset_timeout}
    if not dry_run:
        breaker.configure(threshold=threshold, reset_timeout=reset_timeout)
    after = {"threshold": before["threshold"] if threshold is None else threshold,
             "reset_timeout_seconds": (before["reset_timeout_seconds"] if reset_timeout is None
                                       else float(reset_timeout))}
    return {"target": f"breaker {name}", "before": before, "after": after,
            "message": f"breaker {name}: threshold {after['threshold']}, reset_timeout "
                       f"{after['reset_timeout_seconds']:g} s"}


def _set_queue_workers(opt: "AsyncOptimizer", dry_run: bool, name: str,
                       workers: int) -> dict[str, Any]:
    queue = _target(opt, "queues", "set_queue_workers", name)
    _bounded("set_queue_workers", "workers", workers, 1, MAX_WORKERS)
    before = {"workers": queue.workers, "target_workers": queue._target_workers,
              "depth": queue.depth}
    if not dry_run:
        queue.set_workers(workers)
    after = {"workers": queue.workers, "target_workers": workers, "depth": queue.depth}
    return {"target": f"queue {name}", "before": before, "after": after,
            "message": f"queue {name}: workers {before['target_workers']} -> {workers}"}


def _set_queue_batch_size(opt: "AsyncOptimizer", dry_run: bool, name: str,
                          batch_size: int) -> dict[str, Any]:
    queue = _target(opt, "queues", "set_queue_batch_size", name)
    _bounded("set_queue_batch_size", "batch_size", batch_size, 1, queue.maxsize,
             " (the queue's maxsize)")
    before = {"batch_size": queue.batch_size}
    if not dry_run:
        queue.set_batch_size(batch_size)
    return {"target": f"queue {name}", "before": before, "after": {"batch_size": batch_size},
            "message": f"queue {name}: batch_size {before['batch_size']} -> {batch_size}"}


def _set_degraded(opt: "AsyncOptimizer", dry_run: bool, value: bool,
                  reason: str | None = None) -> dict[str, Any]:
    before = {"degraded": opt.degraded, "reason": opt.degraded_reason}
    if not dry_run:
        opt.set_degraded(value, reason or "")
    after = {"degraded": value, "reason": (reason or "") if value else ""}
    return {"target": "app", "before": before, "after": after,
            "message": f"degraded mode {'on' if value else 'off'}"}


_NAME = Param("name", "str", "Name the object was registered under.")

COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("resize_pool", "Change a resource pool's max_size (grows lazily, shrinks safely).",
            (_NAME, Param("size", "int", "New max_size, 1 .. [async] max_pool_size.")),
            _resize_pool),
    Command("set_rate", "Change a rate limiter's rate (and burst) while in use.",
            (_NAME, Param("rate", "float", "Tokens per second, > 0 and <= [async] rate_limit."),
             Param("burst", "float", "Bucket size, >= 1.", required=False)), _set_rate),
    Command("reset_breaker", "Close a circuit breaker now.", (_NAME,), _reset_breaker),
    Command("set_breaker", "Change a circuit breaker's threshold and/or reset timeout.",
            (_NAME, Param("threshold", "int", f"1 .. {MAX_BREAKER_THRESHOLD}.", required=False),
             Param("reset_timeout", "float",
                   f"Seconds, {MIN_RESET_TIMEOUT:g} .. {MAX_RESET_TIMEOUT:g}.", required=False)),
            _set_breaker),
    Command("set_queue_workers", "Run this many workers for a task queue.",
            (_NAME, Param("workers", "int", f"1 .. {MAX_WORKERS}.")), _set_queue_workers),
    Command("set_queue_batch_size", "Change a task queue's batch size.",
            (_NAME, Param("batch_size", "int", "1 .. the queue's maxsize.")),
            _set_queue_batch_size),
    Command("set_degraded", "Turn the app's degraded mode (opt.degraded) on or off.",
            (Param("value", "bool", "true or false."),
             Param("reason", "str", "Why (shown to the app and in stats).", required=False)),
            _set_degraded),
)}


def run(opt: "AsyncOptimizer", command: str, params: dict[str, Any],
        dry_run: bool = False) -> dict[str, Any]:
    """Validate and run ``command``; the result dict is JSON-ready."""
    if not isinstance(command, str) or command not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise CommandError(f"unknown command {command!r} (known: {known})")
    spec = COMMANDS[command]
    allowed = {p.name: p for p in spec.params}
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise CommandError(f"{command}: unknown parameter {unknown[0]!r} "
                           f"(allowed: {', '.join(allowed) or 'none'})")
    values: dict[str, Any] = {}
    for p in spec.params:
        if p.name not in params or params[p.name] is None:
            if p.required:
                raise CommandError(f"{command}: missing parameter {p.name} ({p.help})")
            continue
        values[p.name] = _coerce(command, p, params[p.name])
    assert spec.run is not None
    try:
        result = spec.run(opt, dry_run, **values)
    except CommandError:
        raise
    except ValueError as exc:  # a primitive refused the value
        raise CommandError(f"{command}: {exc}") from exc
    out = {"ok": True, "command": command, "params": values, "dry_run": dry_run}
    out.update(result)
    return out


def format_action(command: str, params: dict[str, Any]) -> str:
    """``resize_pool name=db size=12``: a command as one readable, parseable line."""
    parts = [command]
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"{key}={shlex.quote(text)}")
    return " ".join(parts)


def parse_action(text: str) -> tuple[str, dict[str, Any]]:
    """Inverse of :func:`format_action`. Values that read as JSON become numbers/booleans,
    except the ``name``/``reason`` parameters, which always stay text."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CommandError(f"cannot parse action {text!r}: {exc}") from exc
    if not words:
        raise CommandError("empty action")
    command, params = words[0], {}
    for word in words[1:]:
        key, sep, raw = word.partition("=")
        if not sep:
            raise CommandError(f"cannot parse action {text!r}: {word!r} is not key=value")
        if key in ("name", "reason"):
            params[key] = raw
            continue
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return command, params
