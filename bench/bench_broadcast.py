"""WebSocketHub against plain ``websockets.broadcast``, over the same connections, on loopback.

Three measurements, each bounded in time and count; the run stops by itself:

1. **Throughput and latency** — one hub serves N clients (default 500) that live in a
   separate client process (so client work does not steal the server's event loop). Rounds
   alternate between the two senders *over the same N connections*: ``hub.broadcast(group,
   msg)`` and ``websockets.broadcast(connections, json.dumps(msg))``. A round sends M
   PiWardrive-like AP updates as fast as the loop allows; the clients time each message from
   its send timestamp to its arrival. Reported per sender: delivered messages per second
   (first send to last arrival), end-to-end p50/p99 latency, server CPU per delivery. Then
   paced rounds at a steady rate (PiWardrive's busiest stream sends at most 20 events/s),
   where latency is the delivery latency rather than a queue behind a burst.
2. **Memory stays bounded** — K clients that stop reading (tiny receive buffers, never call
   recv) among K readers: bytes the server holds for the stalled clients after M2 messages,
   hub (drop-oldest queue) against websockets.broadcast (unbounded write buffer).
3. **Memory per connection** — a fresh server process per setting (compression on, off):
   RSS growth after N clients connected and received a few messages, divided by N, next to
   the hub's own settings-based estimate.

Run: ``.venv/bin/python bench/bench_broadcast.py [--clients 500]
[--messages 100] [--rounds 4]``. Loopback (127.0.0.1) only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import broadcast  # noqa: E402

from pwtop.config import RealtimeSettings  # noqa: E402
from pwtop.histogram import Histogram  # noqa: E402
from pwtop.realtime.hub import WebSocketHub  # noqa: E402
from pwtop.realtime.stats import process_rss  # noqa: E402

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
STEP_TIMEOUT = 60.0
AP = {"bssid": "aa:bb:cc:dd:ee:01", "ssid": "PiWardrive-test", "encryption": "WPA2",
      "lat": 52.52001, "lon": 13.40495, "last_time": 1718000000}


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- client process

async def client_role() -> None:
    """Reads commands on stdin; opens, reads and stalls connections; reports JSON lines."""
    raise_nofile(8192)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    state: dict[str, Any] = {"round": None, "expect": 0, "done": 0, "delivered": 0,
                             "last": 0.0, "hist": Histogram()}
    done = asyncio.Event()
    conns: list[Any] = []
    stalled_ports: list[int] = []

    async def read_loop(ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                if msg.get("round") != state["round"]:
                    continue
                state["hist"].observe(max(0.0, now - msg["ts"]))
                state["delivered"] += 1
                if msg.get("last"):
                    state["done"] += 1
                    state["last"] = max(state["last"], now)
                    if state["done"] >= state["expect"]:
                        done.set()
        except websockets.ConnectionClosed:
            pass

    async def open_one(url: str, rcvbuf: int | None) -> Any:
        if rcvbuf is None:
            return await connect(url, ping_interval=None, max_size=None, proxy=None)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        host, port = url[5:].split("/", 1)[0].rsplit(":", 1)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, int(port)))
        return await connect(url, sock=sock, ping_interval=None, max_size=None, proxy=None)

    tasks = []
    while line := await stdin.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "connect":
            started = time.perf_counter()
            opened = []
            for first in range(0, cmd["n"], 50):
                batch = range(first, min(first + 50, cmd["n"]))
                opened += await asyncio.gather(*(open_one(cmd["url"], cmd.get("rcvbuf"))
                                                 for _ in batch))
            conns += opened
            if cmd.get("stall"):
                stalled_ports += [ws.local_address[1] for ws in opened]
            else:
                tasks += [asyncio.create_task(read_loop(ws)) for ws in opened]
            emit({"connected": len(opened), "seconds": time.perf_counter() - started,
                  "stalled_ports": stalled_ports})
        elif cmd["cmd"] == "round":
            state.update(round=cmd["round"], expect=cmd["expect"], done=0, delivered=0,
                         last=0.0, hist=Histogram())
            done.clear()
            emit({"armed": cmd["round"]})
            try:
                await asyncio.wait_for(done.wait(), cmd["timeout"])
                complete = True
            except TimeoutError:
                complete = False
            h = state["hist"]
            emit({"round": cmd["round"], "complete": complete, "delivered": state["delivered"],
                  "last": state["last"], "p50": h.quantile(0.5), "p99": h.quantile(0.99),
                  "max": h.max})
        elif cmd["cmd"] == "close":
            for t in tasks:
                t.cancel()
            await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
            emit({"closed": len(conns)})
            return


class Clients:
    """The client process, driven over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> "Clients":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, HERE, "--role", "clients", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT),
            limit=2**20)
        return cls(proc)

    async def ask(self, **cmd: Any) -> dict[str, Any]:
        await self.send(**cmd)
        return await self.reply()

    async def send(self, **cmd: Any) -> None:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def reply(self, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the client process ended early")
        return json.loads(line)

    async def stop(self) -> None:
        try:
            await self.ask(cmd="close")
            await asyncio.wait_for(self.proc.wait(), 10)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()  # our own child, by its handle
                await self.proc.wait()


# ---------------------------------------------------------------- server side

def hub_connections(hub: WebSocketHub, group: str) -> list[Any]:
    return [hub._clients[cid].ws for cid in hub.client_ids(group)]


async def one_round(hub: WebSocketHub, clients: Clients, sender: str, round_id: int,
                    messages: int, group: str, expect: int, payload: list,
                    interval: float = 0.0) -> dict[str, Any]:
    conns = hub_connections(hub, group)
    await clients.send(cmd="round", round=round_id, expect=expect, timeout=STEP_TIMEOUT / 2)
    assert (await clients.reply())["armed"] == round_id
    cpu0, t0 = time.process_time(), time.time()
    for i in range(messages):
        msg = {"round": round_id, "i": i, "last": i == messages - 1, "aps": payload}
        if sender == "hub":
            hub.broadcast(group, msg)
        else:  # the same encoding the hub does, once per message
            msg["seq"], msg["ts"] = i + 1, time.time()
            broadcast(conns, json.dumps(msg, separators=(",", ":"), ensure_ascii=False))
        await asyncio.sleep(interval)
    report = await clients.reply()
    cpu = time.process_time() - cpu0
    elapsed = report["last"] - t0 if report["last"] else float("nan")
    return {"sender": sender, "delivered": report["delivered"], "complete": report["complete"],
            "per_second": report["delivered"] / elapsed if elapsed > 0 else float("nan"),
            "p50": report["p50"], "p99": report["p99"],
            "cpu_us_per_delivery": cpu / max(1, report["delivered"]) * 1e6}


async def throughput(args: argparse.Namespace) -> dict[str, Any]:
    hub = WebSocketHub(RealtimeSettings(max_connections=args.clients + 100))
    payload = [AP] * 3
    async with hub.serve("127.0.0.1", 0):
        clients = await Clients.start()
        try:
            r = await clients.ask(cmd="connect", url=hub.url("/ws/aps"), n=args.clients)
            connect_s = r["seconds"]
            while hub.connections < args.clients:
                await asyncio.sleep(0.01)
            await one_round(hub, clients, "hub", 0, 10, "/ws/aps", args.clients, payload)
            rows: list[dict[str, Any]] = []
            for r_id in range(1, args.rounds + 1):  # alternate, order rotating
                order = ("hub", "broadcast") if r_id % 2 else ("broadcast", "hub")
                for k, sender in enumerate(order):
                    rows.append(await one_round(hub, clients, sender, r_id * 2 + k,
                                                args.messages, "/ws/aps", args.clients,
                                                payload))
            paced: list[dict[str, Any]] = []
            for r_id in range(1, args.paced_rounds + 1):
                order = ("hub", "broadcast") if r_id % 2 else ("broadcast", "hub")
                for k, sender in enumerate(order):
                    paced.append(await one_round(hub, clients, sender, 1000 + r_id * 2 + k,
                                                 args.paced_messages, "/ws/aps", args.clients,
                                                 payload, 1.0 / args.rate))
            drops = hub.stats()["dropped_total"]
        finally:
            await clients.stop()
    out: dict[str, Any] = {"connect_seconds": connect_s, "hub_drops": drops}
    for label, source in (("", rows), ("paced_", paced)):
        for sender in ("hub", "broadcast"):
            mine = [r for r in source if r["sender"] == sender]
            row = {key: statistics.median(r[key] for r in mine)
                   for key in ("per_second", "p50", "p99", "cpu_us_per_delivery")}
            row["delivered"] = sum(r["delivered"] for r in mine)
            row["complete"] = all(r["complete"] for r in mine)
            out[label + sender] = row
    return out


async def bounded_memory(args: argparse.Namespace) -> dict[str, Any]:
    hub = WebSocketHub(RealtimeSettings(compression=False), slow_timeout=None)
    size = 4096
    payload = ["x" * size]
    group = "/ws/stall"
    async with hub.serve("127.0.0.1", 0):
        clients = await Clients.start()
        try:
            await clients.ask(cmd="connect", url=hub.url(group), n=args.stalled)
            r = await clients.ask(cmd="connect", url=hub.url(group), n=args.stalled,
                                  rcvbuf=4096, stall=True)
            stalled_ports = set(r["stalled_ports"])
            while hub.connections < 2 * args.stalled:
                await asyncio.sleep(0.01)
            stalled = [c for c in hub._clients.values()
                       if int(c.remote.rsplit(":", 1)[1]) in stalled_ports]
            out: dict[str, Any] = {"stalled": len(stalled), "readers": args.stalled,
                                   "messages": args.stall_messages, "message_bytes": size}
            for sender, round_id in (("hub", 1), ("broadcast", 2)):
                gc.collect()
                rss0 = process_rss()
                row = await one_round(hub, clients, sender, round_id, args.stall_messages,
                                      group, args.stalled, payload)
                held = sum(c.ws.transport.get_write_buffer_size() +
                           sum(len(d) for d, _ in c.queue) for c in stalled)
                out[sender] = {"held_bytes_per_stalled_client": held / len(stalled),
                               "rss_growth_bytes": (process_rss() or 0) - (rss0 or 0),
                               "readers_complete": row["complete"],
                               "readers_delivered": row["delivered"]}
            out["hub_drops_stalled"] = sum(c.dropped for c in stalled)
            out["hub_drops_readers"] = hub.stats()["dropped_total"] - out["hub_drops_stalled"]
        finally:
            await clients.stop()
    return out


async def memory_role(compression: bool, n: int) -> None:
    """In a fresh process: RSS growth per connection for one compression setting."""
    raise_nofile(n + 1000)
    hub = WebSocketHub(RealtimeSettings(compression=compression, max_connections=n + 100))
    async with hub.serve("127.0.0.1", 0):
        clients = await Clients.start()
        try:
            gc.collect()
            rss0 = process_rss()
            await clients.ask(cmd="connect", url=hub.url("/ws/aps"), n=n)
            while hub.connections < n:
                await asyncio.sleep(0.01)
            await one_round(hub, clients, "hub", 1, 5, "/ws/aps", n, [AP] * 3)
            gc.collect()
            rss1 = process_rss()
            memory = hub.stats()["memory"]
        finally:
            await clients.stop()
    emit({"compression": compression, "connections": n,
          "measured_bytes_per_connection": ((rss1 or 0) - (rss0 or 0)) / n,
          "estimate_bytes_per_connection": memory["estimate_bytes_per_connection"],
          "estimate_parts": memory["estimate_parts"]})


async def memory_per_connection(n: int) -> list[dict[str, Any]]:
    rows = []
    for flag in ("on", "off"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, HERE, "--role", "memory", "--compression", flag,
            "--clients", str(n), stdout=asyncio.subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=ROOT))
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), STEP_TIMEOUT * 2)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        rows.append(json.loads(out.decode().strip().splitlines()[-1]))
    return rows


# ---------------------------------------------------------------- report

def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f} ms"


async def main(args: argparse.Namespace) -> None:
    raise_nofile(args.clients * 2 + 1000)
    print(f"# bench_broadcast: {args.clients} clients, {args.messages} messages/round, "
          f"{args.rounds} rounds per sender; Python {platform.python_version()}, websockets "
          f"{websockets.__version__}, {os.cpu_count()} CPUs, loopback, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    t = await throughput(args)
    hub, base = t["hub"], t["broadcast"]
    print(f"\n## 1. {args.clients} clients, same connections (median of {args.rounds} rounds; "
          f"connect {t['connect_seconds']:.2f} s)")
    print(f"{'sender':<22}{'delivered/s':>14}{'p50':>12}{'p99':>12}{'server CPU/deliv.':>20}")
    for name, row in (("pwtop WebSocketHub", hub), ("websockets.broadcast", base)):
        print(f"{name:<22}{row['per_second']:>14,.0f}{ms(row['p50']):>12}{ms(row['p99']):>12}"
              f"{row['cpu_us_per_delivery']:>17.2f} us")
    print(f"hub/broadcast throughput ratio: {hub['per_second'] / base['per_second']:.2f}x; "
          f"server CPU per delivery ratio: "
          f"{hub['cpu_us_per_delivery'] / base['cpu_us_per_delivery']:.2f}x; "
          f"hub drops: {t['hub_drops']}; every round complete: "
          f"{hub['complete'] and base['complete']}")
    print(f"\n## 1b. the same clients at a steady {args.rate:g} messages/s "
          f"({args.paced_messages} messages x {args.paced_rounds} rounds per sender)")
    print(f"{'sender':<22}{'delivered':>14}{'p50':>12}{'p99':>12}{'server CPU/deliv.':>20}")
    for name, key in (("pwtop WebSocketHub", "paced_hub"),
                      ("websockets.broadcast", "paced_broadcast")):
        row = t[key]
        print(f"{name:<22}{row['delivered']:>14,}{ms(row['p50']):>12}{ms(row['p99']):>12}"
              f"{row['cpu_us_per_delivery']:>17.2f} us")
    b = await bounded_memory(args)
    print(f"\n## 2. {b['stalled']} stalled clients among {b['readers']} readers, "
          f"{b['messages']} messages of {b['message_bytes']} B")
    print(f"{'sender':<22}{'held per stalled client':>26}{'server RSS growth':>20}"
          f"{'readers complete':>18}")
    for name, key in (("pwtop WebSocketHub", "hub"), ("websockets.broadcast", "broadcast")):
        row = b[key]
        print(f"{name:<22}{row['held_bytes_per_stalled_client'] / 1024:>22,.0f} KiB"
              f"{row['rss_growth_bytes'] / 2**20:>16,.1f} MiB{str(row['readers_complete']):>18}")
    print(f"hub drops (oldest first): {b['hub_drops_stalled']} for the stalled clients, "
          f"{b['hub_drops_readers']} for the readers (any reader that falls more than the queue "
          f"plus the write buffer behind the burst); messages the readers got: hub "
          f"{b['hub']['readers_delivered']}, broadcast {b['broadcast']['readers_delivered']}")
    m = await memory_per_connection(args.clients)
    print(f"\n## 3. memory per connection, {args.clients} hub connections, fresh process each")
    print(f"{'compression':<14}{'measured (RSS delta/conn)':>28}{'estimate (settings)':>22}")
    for row in m:
        print(f"{'on' if row['compression'] else 'off':<14}"
              f"{row['measured_bytes_per_connection'] / 1024:>24,.1f} KiB"
              f"{row['estimate_bytes_per_connection'] / 1024:>18,.1f} KiB")
    print("(estimate = full send queue + full write buffer + zlib state: an upper bound; "
          "the measurement is what idle-but-connected clients cost)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--messages", type=int, default=100, help="messages per round")
    p.add_argument("--rounds", type=int, default=4, help="rounds per sender")
    p.add_argument("--rate", type=float, default=5.0,
                   help="messages per second of the paced rounds")
    p.add_argument("--paced-messages", type=int, default=15)
    p.add_argument("--paced-rounds", type=int, default=2)
    p.add_argument("--stalled", type=int, default=10, help="stalled clients (and readers)")
    p.add_argument("--stall-messages", type=int, default=3000,
                   help="messages of 4 KiB in the stall test (more than loopback TCP buffers hold)")
    p.add_argument("--role", choices=("main", "clients", "memory"), default="main",
                   help=argparse.SUPPRESS)
    p.add_argument("--compression", choices=("on", "off"), default="on", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.role == "clients":
        asyncio.run(client_role())
    elif ARGS.role == "memory":
        asyncio.run(memory_role(ARGS.compression == "on", ARGS.clients))
    else:
        asyncio.run(main(ARGS))
