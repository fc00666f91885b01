"""An agent that disappears and comes back 50 times in a minute.

A real app process runs a real agent on one 127.0.0.1 port and stops and starts it on
command; every tenth time the whole app is killed (SIGKILL) and started again, as after a
crash. This process is pwtop's side only: the async component on its shared agent client.
After each return the component must show the agent's figures again, and after 50 returns
this process must hold as many asyncio tasks and file descriptors as before, and about as
much memory (Python's allocations, traced).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from pwtop.agent import client as agent_client
from pwtop.aio.component import AsyncComponent
from pwtop.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CYCLES = 50
KILL_EVERY = 10

APP = """
import asyncio, sys
import pwtop.agent
from pwtop.aio import AsyncOptimizer

async def main(port):
    opt = AsyncOptimizer()
    agent = None
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "start":
            agent = await pwtop.agent.serve(async_optimizer=opt, port=port, interval=0.05)
        elif command == "stop":
            await agent.stop()
            agent = None
        else:
            break
        print(command, flush=True)

asyncio.run(main(int(sys.argv[1])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """The app process, driven line by line over its stdin."""

    def __init__(self, port: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-c", APP, str(port)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    async def do(self, command: str) -> None:
        def send() -> str:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            return self.proc.stdout.readline().strip()

        assert await asyncio.to_thread(send) == command

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def isolated_runtime(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PWTOP_CONFIG", raising=False)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled() -> tuple[int, int, int]:
    """(tasks, file descriptors, traced bytes) once finished tasks and sockets are gone."""
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    return len(asyncio.all_tasks()), open_fds(), tracemalloc.get_traced_memory()[0]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_an_agent_that_comes_and_goes_50_times_is_rejoined_without_leaks(
        isolated_runtime):
    port = free_port()
    app = App(port)
    component = AsyncComponent(Settings(), agent=f"ws://127.0.0.1:{port}")
    cycles_done = 0

    async def cycle(n: int) -> None:
        """The agent comes back; pwtop shows its figures; then the agent goes away."""
        nonlocal app, cycles_done
        await app.do("start")
        client = component._link()
        before = client.snapshots
        assert await client.wait_snapshot(30.0, after=before) is not None, \
            f"cycle {n}: no snapshot after the agent came back ({client.status().describe()})"
        snap = await component.collect()
        assert "agent" not in snap.unavailable, snap.unavailable
        assert snap.metrics, f"cycle {n}: no figures from the agent"
        if n % KILL_EVERY == KILL_EVERY - 1:
            app.kill()  # a crash: no close frame, the socket just goes
            app = App(port)
        else:
            await app.do("stop")
        deadline = time.monotonic() + 30
        while client.connected:
            assert time.monotonic() < deadline, f"cycle {n}: the loss was never noticed"
            await client.wait_snapshot(1.0, after=client.snapshots)
        snap = await component.collect()
        assert "agent" in snap.unavailable  # gone, and said so
        cycles_done += 1

    tracemalloc.start()
    try:
        for n in range(3):  # warm-up: lazy imports, first-use caches
            await cycle(n)
        tasks0, fds0, bytes0 = await settled()
        began = time.monotonic()
        for n in range(3, 3 + CYCLES):
            await cycle(n)
        took = time.monotonic() - began
        tasks1, fds1, bytes1 = await settled()
        client = component._link()
        reconnects = client.status().reconnects
    finally:
        tracemalloc.stop()
        await component.close()
        app.kill()
    print(f"flapping: {CYCLES} cycles in {took:.1f} s, tasks {tasks0}->{tasks1}, fds {fds0}->"
          f"{fds1}, traced bytes {bytes0}->{bytes1}, reconnects {reconnects}")
    assert cycles_done == 3 + CYCLES
    assert reconnects == 3 + CYCLES - 1  # every return was rejoined (the first is a connect)
    assert tasks1 == tasks0, "asyncio tasks leaked"
    assert fds1 == fds0, "file descriptors leaked"
    growth = bytes1 - bytes0
    assert growth < 256 * 1024, f"traced memory grew by {growth} bytes over {CYCLES} cycles"
    assert took < 120, f"{CYCLES} cycles took {took:.0f} s"
    assert agent_client._SHARED == {}  # the shared client was given back
