"""The worker process of :class:`pwtop.asgi.PerformanceApp`: pwtop's session, outside the app.

``python -m pwtop.asgi.worker``, started by the app with pipes for stdin and stdout.

Why a process: Python threads share one interpreter lock. Run inside the app, the
session's collects, its advice and the documents built for each change held that lock
for a few milliseconds at a time, many times a second, and the app's event loop and its
SQLite threads waited behind them: the app's loop lag p99 and commit p99 rose 1.2-1.6x
while someone watched the dashboard, and its CPU share was the app's CPU share. Here the
session runs on its own interpreter, as the ``pwtop`` TUI does: it reads the database
file from outside (so the WAL index figures come back, which the app's own process must
not read: that would drop its SQLite locks) and reads the app's optimizers through the
app's agent on a private unix socket. The app only serves the bytes this process sends.

Protocol (:mod:`pwtop.asgi.frames`): the first line on stdin is the configuration
(JSON: ``db_path``, ``agent``, ``token_file``, ``interval``, ``settings``); then command
lines: ``{"want": true, "advise": true}`` (build the documents at each change from now
on, and keep the advice current), ``{"want": false}`` (nobody reads: build nothing),
``{"id": N, "optimize": {...}}``. On stdout: a ``ready`` frame, then ``docs`` frames
(``stats.gz``: the stats document gzipped, ``event``, ``alerts``, ``recommendations``, ``components``,
``metrics``) while wanted, and one ``reply`` frame per command. The end of stdin (the app
closed it, or died) stops the session and the process.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import sys
import time
from typing import Any

from prometheus_client.core import CollectorRegistry

from pwtop import components as registry
from pwtop.agent.prometheus import exposition
from pwtop.asgi import frames, views
from pwtop.asgi.http import dumps
from pwtop.config import Settings, settings_from_dict
from pwtop.errors import PwtopError
from pwtop.session import Session

log = logging.getLogger("pwtop.asgi.worker")

#: The database is read every third refresh, as the TUI does (a Pi's SD card is slow).
FACTORS = {"database": 3.0}
#: Polls that end within this long of each other are published as one set of documents
#: (one event).
COALESCE_S = 0.05
#: zlib's level for the gzipped stats document (6 is within a few percent of 9's size
#: on it, at half the time).
GZIP_LEVEL = 6


class Unavailable:
    """A factory for a component the app was given nothing to watch for."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __call__(self, settings: Settings) -> Any:
        raise PwtopError(self.why)


def factories(config: dict[str, Any]) -> dict[str, Any]:
    """The session's components: the database file from outside, the app's optimizers
    through its agent, the host and the app's process (by the pid file the app wrote)."""
    db_path = config.get("db_path")
    agent = config.get("agent") or ""
    token_file = config.get("token_file")
    sections = config.get("sections") or {}

    def through_agent(name: str, why: str, **options: Any) -> Any:
        if not agent or not sections.get(name):
            return Unavailable(why)
        return lambda s: registry.build(name, s, agent=agent, token_file=token_file,
                                        **options)

    return {
        "database": (Unavailable("no db_path given to PerformanceApp") if not db_path
                     else lambda s: registry.build("database", s, path=db_path)),
        "async": through_agent("async", "no async_optimizer given to PerformanceApp"),
        "realtime": through_agent("realtime", "no realtime_optimizer given to "
                                              "PerformanceApp", probe_urls=[]),
        "system": lambda s: registry.build("system", s),
    }


def metrics_part(session: Session) -> bytes:
    """The session's families (database, system, alerts, components up): the app adds
    the async and realtime families from its own optimizers at scrape time."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(views.SessionCollector(session))  # type: ignore[arg-type]
    return exposition(reg)


class Worker:
    """One session and the documents built from it; see the module docstring."""

    def __init__(self, config: dict[str, Any], out: asyncio.StreamWriter) -> None:
        self.config = config
        self.out = out
        self.interval = float(config["interval"])
        settings = settings_from_dict(config.get("settings") or {}, "PerformanceApp")
        if config.get("pid_file"):
            settings.target.pid_file = config["pid_file"]
        self.session = Session(settings, registry.NAMES, factories=factories(config),
                               interval=self.interval, factors=FACTORS)
        self.session.on_poll = self.session.on_round = self._changed
        self.session.on_recommendations = self._changed
        self.documents = views.Documents()
        self.wanted = False
        self.seq = 0
        self._dirty = asyncio.Event()
        self._writing = asyncio.Lock()

    def _changed(self, *_: Any) -> None:
        self._dirty.set()

    async def send(self, data: bytes) -> None:
        async with self._writing:
            self.out.write(data)
            await self.out.drain()

    async def publish_loop(self) -> None:
        """A set of documents after each change of the session while someone reads."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not self.wanted:
                continue
            await asyncio.sleep(COALESCE_S)
            self._dirty.clear()
            await self.publish()

    async def publish(self) -> None:
        session = self.session
        states = [views.StateView.of(state) for state in session.states.values()]
        stats, light = await asyncio.to_thread(self.documents.build, states,
                                               dict(session.components))
        packed = await asyncio.to_thread(gzip.compress, stats, GZIP_LEVEL, mtime=0)
        alerts = dumps(views.alerts_document(session))
        self.seq += 1
        event = b'{"seq":%d,"taken_at":%s,"alerts":%s,"components":%s}' % (
            self.seq, json.dumps(time.time()).encode(), alerts, light)
        connections = dumps({name: state.connection for name, state in session.states.items()})
        await self.send(frames.encode("docs", {
            "stats.gz": packed, "event": event, "alerts": alerts,
            "recommendations": dumps(views.recommendations_document(session)),
            "components": connections, "metrics": metrics_part(session)},
            seq=self.seq, started=session.started))

    async def command(self, message: dict[str, Any]) -> None:
        if "want" in message:
            self.wanted = bool(message["want"])
            if message.get("advise") and not self.session.advised:
                self.session.advise(registry.NAMES)
            if self.wanted:
                self._dirty.set()  # the first reader gets documents of now, not of the last
            return
        ident = message.get("id")
        if "optimize" in message:
            request = message["optimize"]
            try:
                status, result = await views.run_optimize(
                    self.session, request["component"], request.get("only"),
                    bool(request.get("dry_run", True)), self.interval,
                    bool(request.get("break_litestream_replica", False)))
            except Exception as exc:  # the app answers 500 with this line, logged here
                log.exception("optimize failed")
                status, result = 500, {"error": f"internal error in pwtop's optimize: "
                                                f"{type(exc).__name__}: {exc}"}
            await self.send(frames.encode("reply", {"body": dumps(result)}, id=ident,
                                          status=status))
            return
        log.warning("unknown command %r", sorted(message))

    async def run(self, commands: asyncio.StreamReader) -> None:
        self.session.start()
        publisher = asyncio.create_task(self.publish_loop())
        await self.send(frames.encode("ready", pid=os.getpid()))
        running: set[asyncio.Task[None]] = set()
        try:
            while line := await commands.readline():
                task = asyncio.create_task(self.command(json.loads(line)))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            publisher.cancel()
            for task in running:
                task.cancel()
            await self.session.close()


async def _pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """stdin as a stream reader and the real stdout as a writer; fd 1 then points at
    stderr, so a stray ``print`` anywhere cannot corrupt the frames."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=frames.MAX_HEADER_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, out)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def amain() -> None:
    commands, out = await _pipes()
    line = await commands.readline()
    if not line:
        return
    worker = Worker(json.loads(line), out)
    await worker.run(commands)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(amain())
    except PwtopError as exc:  # a configuration it cannot run with: one line, for the app
        sys.stderr.write(f"pwtop worker: {exc.message}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # the app went away while a frame was on its way
        pass


if __name__ == "__main__":
    main()
