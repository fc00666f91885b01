"""Starting and stopping the in-app agent: what ``pwtop.agent.start`` and ``serve`` run.

Kept apart from the package's ``__init__`` so that pwtop's own side (which imports
``pwtop.agent.component`` and ``pwtop.agent.details``) never loads the agent server.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pwtop.agent.protocol import parse_address
from pwtop.agent.server import _RUNNING, Agent
from pwtop.config import load_settings
from pwtop.errors import PwtopError

def _make(async_optimizer: Any, realtime_optimizer: Any, db_path: Any, host: str | None,
          port: int | None, unix_path: str | None, token: str | None,
          token_file: str | os.PathLike[str] | None, interval: float, settings: Any,
          **options: Any) -> Agent:
    """Explicit arguments win; what is left comes from pwtop's config ([target] agent and
    agent_token_file), so the app and pwtop agree on the address without set-up."""
    address_given = port is not None or host is not None or unix_path is not None
    token_given = token is not None or token_file is not None
    if settings is None and not (address_given and token_given):
        settings = load_settings()
    if not address_given and settings is not None and settings.target.agent:
        kind, where, configured_port = parse_address(settings.target.agent)
        if kind == "unix":
            unix_path = where
        else:
            host, port = where, configured_port
    if not token_given and settings is not None and settings.target.agent_token_file:
        token_file = settings.target.agent_token_file
    return Agent(async_optimizer, realtime_optimizer, db_path, host=host or "127.0.0.1",
                 port=int(port or 0), unix_path=unix_path, token=token,
                 token_file=None if token is not None else token_file, interval=interval,
                 **options)


def start(async_optimizer: Any = None, realtime_optimizer: Any = None,
          db_path: str | os.PathLike[str] | None = None, *, host: str | None = None,
          port: int | None = None, unix_path: str | None = None, token: str | None = None,
          token_file: str | os.PathLike[str] | None = None, interval: float = 1.0,
          settings: Any = None, **options: Any) -> Agent:
    """Start an agent on the running event loop and return it (its address is known).

    The socket is bound before this returns, so a taken port raises here
    (:class:`pwtop.errors.TargetError`); serving begins on the next turn of the loop.
    Must be called from code running inside the app's event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise PwtopError("pwtop.agent.start() must be called inside the app's running event "
                         "loop (from a coroutine, e.g. at the start of main()); or use "
                         "'await pwtop.agent.serve(...)'") from None
    agent = _make(async_optimizer, realtime_optimizer, db_path, host, port, unix_path, token,
                  token_file, interval, settings, **options)
    agent.start_soon()
    _RUNNING.add(agent)
    return agent


async def serve(async_optimizer: Any = None, realtime_optimizer: Any = None,
                db_path: str | os.PathLike[str] | None = None, *, host: str | None = None,
                port: int | None = None, unix_path: str | None = None,
                token: str | None = None, token_file: str | os.PathLike[str] | None = None,
                interval: float = 1.0, settings: Any = None, **options: Any) -> Agent:
    """Like :func:`start`, but returns once the agent accepts connections.

    ``async with await pwtop.agent.serve(...) as agent:`` stops it on exit; otherwise call
    ``await agent.stop()``.
    """
    agent = _make(async_optimizer, realtime_optimizer, db_path, host, port, unix_path, token,
                  token_file, interval, settings, **options)
    await agent.start()
    _RUNNING.add(agent)
    return agent


def running() -> list[Agent]:
    """Agents started by :func:`start` or :func:`serve` and not stopped."""
    return list(_RUNNING)
