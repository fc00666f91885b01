"""WebSocketHub.serve_asgi under uvicorn against a plain ``await websocket.send_text(...)``
loop, over the same connections of a FastAPI app.

The server is a FastAPI app served by uvicorn (``--ws websockets-sansio``) in this process;
its route ``@app.websocket("/ws/aps")`` hands each connection to ``hub.serve_asgi`` and
keeps the Starlette ``WebSocket`` in a list. The clients live in a separate process
(``bench_broadcast.py``'s client role), so their work does not steal the server's loop.

1. **Throughput** — N clients (default 200). Rounds alternate between the two senders over
   the same N connections, the order rotating: ``hub.broadcast(group, msg)`` (then one
   ``await asyncio.sleep(0)`` per message, as a live app's loop yields) and, per message,
   ``json.dumps`` once then ``for ws in sockets: await ws.send_text(text)``. Reported per
   sender: delivered messages per second (first send to last arrival), end-to-end p50/p99,
   server CPU per delivery. Goal (issue 14): the hub at least 0.8x the plain loop.
2. **Bounded memory** — two clients that never read (4 KiB receive buffers) among readers;
   M messages of 4 KiB through the hub: what the hub holds for them (its queues, bounded by
   ``message_queue_size``), the server's RSS growth, and whether the readers got
   everything. The plain loop, run last, blocks on the first stalled client once the
   socket buffers are full and the readers stop receiving: it is given a time limit.

Run: ``.venv/bin/python bench/bench_hub_asgi.py [--clients 200] [--messages 100]
[--rounds 4]``. Loopback (127.0.0.1) only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import importlib.util
import json
import os
import platform
import socket
import statistics
import sys
import time
from typing import Any

from fastapi import FastAPI, WebSocket  # module level: the route's annotation resolves here

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

_spec = importlib.util.spec_from_file_location("bench_broadcast",
                                               os.path.join(HERE, "bench_broadcast.py"))
bb = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(bb)  # type: ignore[union-attr]

GOAL = 0.8
GROUP = "/ws/aps"


def build_app(hub: Any, sockets: list[Any]) -> Any:
    app = FastAPI()

    @app.websocket(GROUP)
    async def ws_aps(websocket: WebSocket) -> None:
        sockets.append(websocket)
        try:
            await hub.serve_asgi(websocket)
        finally:
            sockets.remove(websocket)

    return app


async def start_server(app: Any) -> tuple[Any, asyncio.Task, str]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio",
                                           ws_max_size=2**24, ws_ping_interval=None,
                                           lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, f"ws://127.0.0.1:{sock.getsockname()[1]}{GROUP}"


async def one_round(hub: Any, sockets: list[Any], clients: Any, sender: str, round_id: int,
                    messages: int, expect: int, payload: list,
                    limit: float = bb.STEP_TIMEOUT / 2) -> dict[str, Any]:
    await clients.send(cmd="round", round=round_id, expect=expect, timeout=limit)
    assert (await clients.reply())["armed"] == round_id
    conns = list(sockets)
    cpu0, t0 = time.process_time(), time.time()

    async def plain() -> None:
        for i in range(messages):
            msg = {"round": round_id, "i": i, "last": i == messages - 1, "aps": payload,
                   "seq": i + 1, "ts": time.time()}
            text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
            for ws in conns:
                await ws.send_text(text)

    blocked = False
    if sender == "hub":
        for i in range(messages):
            hub.broadcast(GROUP, {"round": round_id, "i": i, "last": i == messages - 1,
                                  "aps": payload})
            await asyncio.sleep(0)
    else:
        try:
            await asyncio.wait_for(plain(), limit)
        except TimeoutError:
            blocked = True
    report = await clients.reply(limit + 10)
    cpu = time.process_time() - cpu0
    elapsed = report["last"] - t0 if report["last"] else float("nan")
    return {"sender": sender, "delivered": report["delivered"], "complete": report["complete"],
            "blocked": blocked,
            "per_second": report["delivered"] / elapsed if elapsed > 0 else float("nan"),
            "p50": report["p50"], "p99": report["p99"],
            "cpu_us_per_delivery": cpu / max(1, report["delivered"]) * 1e6}


async def throughput(args: argparse.Namespace) -> dict[str, Any]:
    from pwtop.config import RealtimeSettings
    from pwtop.realtime.hub import WebSocketHub

    hub = WebSocketHub(RealtimeSettings(max_connections=args.clients + 100,
                                        message_queue_size=max(100, args.messages)))
    sockets: list[Any] = []
    server, task, url = await start_server(build_app(hub, sockets))
    clients = await bb.Clients.start()
    payload = [bb.AP] * 3
    try:
        await clients.ask(cmd="connect", url=url, n=args.clients)
        while hub.connections < args.clients:
            await asyncio.sleep(0.01)
        await one_round(hub, sockets, clients, "hub", 0, 10, args.clients, payload)
        await one_round(hub, sockets, clients, "plain", 1, 10, args.clients, payload)
        rows = []
        for r_id in range(1, args.rounds + 1):
            order = ("hub", "plain") if r_id % 2 else ("plain", "hub")
            for k, sender in enumerate(order):
                rows.append(await one_round(hub, sockets, clients, sender, 10 + r_id * 2 + k,
                                            args.messages, args.clients, payload))
        drops = hub.stats()["dropped_total"]
    finally:
        await clients.stop()
        await hub.close()
        server.should_exit = True
        await task
    out: dict[str, Any] = {"hub_drops": drops}
    for sender in ("hub", "plain"):
        mine = [r for r in rows if r["sender"] == sender]
        out[sender] = {key: statistics.median(r[key] for r in mine)
                       for key in ("per_second", "p50", "p99", "cpu_us_per_delivery")}
        out[sender]["complete"] = all(r["complete"] for r in mine)
    pairs = [(h["per_second"], p["per_second"]) for h, p in
             zip([r for r in rows if r["sender"] == "hub"],
                 [r for r in rows if r["sender"] == "plain"])]
    out["ratio"] = statistics.median(h / p for h, p in pairs)
    return out


async def bounded_memory(args: argparse.Namespace) -> dict[str, Any]:
    from pwtop.config import RealtimeSettings
    from pwtop.realtime.hub import WebSocketHub
    from pwtop.realtime.stats import process_rss

    hub = WebSocketHub(RealtimeSettings(compression=False), slow_timeout=None)
    sockets: list[Any] = []
    server, task, url = await start_server(build_app(hub, sockets))
    clients = await bb.Clients.start()
    payload = ["x" * 4096]
    stalls: list[asyncio.StreamWriter] = []
    try:
        await clients.ask(cmd="connect", url=url, n=args.readers)
        stalls = [await stalled_client(url) for _ in range(2)]
        ports = {w.get_extra_info("sockname")[1] for w in stalls}
        while hub.connections < args.readers + 2:
            await asyncio.sleep(0.01)
        stalled = [c for c in hub._clients.values()
                   if int(c.remote.rsplit(":", 1)[1]) in ports]
        out: dict[str, Any] = {"readers": args.readers, "messages": args.stall_messages}
        gc.collect()
        rss0 = process_rss() or 0
        row = await one_round(hub, sockets, clients, "hub", 1, args.stall_messages,
                              args.readers, payload)
        gc.collect()
        out["hub"] = {"held_bytes_per_stalled_client": statistics.mean(
                          c.queued_bytes() for c in stalled),
                      "queue_lengths": [len(c.queue) for c in stalled],
                      "queue_size": hub.queue_size,
                      "dropped_for_stalled": sum(c.dropped for c in stalled),
                      "rss_growth_bytes": (process_rss() or 0) - rss0,
                      "readers_complete": row["complete"],
                      "readers_delivered": row["delivered"]}
        row = await one_round(hub, sockets, clients, "plain", 2, args.stall_messages,
                              args.readers, payload, limit=args.plain_limit)
        out["plain"] = {"blocked": row["blocked"], "readers_complete": row["complete"],
                        "readers_delivered": row["delivered"]}
    finally:
        for writer in stalls:
            writer.transport.abort()
        await clients.stop()
        await hub.close()
        server.should_exit = True
        await task
    return out


async def stalled_client(url: str) -> asyncio.StreamWriter:
    """A client that completes the handshake and then never reads again: a 4 KiB receive
    buffer, no reads, no pong (websockets' own client keeps reading in the background)."""
    host, port = url[5:].split("/", 1)[0].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET {GROUP} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:40]!r}")
    writer.transport.pause_reading()
    return writer


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f} ms"


async def main(args: argparse.Namespace) -> int:
    import fastapi
    import uvicorn

    bb.raise_nofile(args.clients * 2 + 1000)
    print(f"# bench_hub_asgi: {args.clients} clients, {args.messages} messages/round, "
          f"{args.rounds} rounds per sender; Python {platform.python_version()}, fastapi "
          f"{fastapi.__version__}, uvicorn {uvicorn.__version__} (websockets-sansio), "
          f"{os.cpu_count()} CPUs, loopback, load average {os.getloadavg()[0]:.1f} at start")
    t = await throughput(args)
    print(f"\n## 1. {args.clients} clients, same connections (median of {args.rounds} rounds)")
    print(f"{'sender':<34}{'delivered/s':>14}{'p50':>12}{'p99':>12}{'server CPU/deliv.':>20}")
    for name, key in (("hub.serve_asgi + broadcast", "hub"),
                      ("loop of await ws.send_text()", "plain")):
        row = t[key]
        print(f"{name:<34}{row['per_second']:>14,.0f}{ms(row['p50']):>12}{ms(row['p99']):>12}"
              f"{row['cpu_us_per_delivery']:>17.2f} us")
    print(f"hub / plain loop throughput (median of per-round pairs): {t['ratio']:.2f}x "
          f"(goal >= {GOAL}: {'met' if t['ratio'] >= GOAL else 'MISSED'}); hub drops: "
          f"{t['hub_drops']}; every round complete: "
          f"{t['hub']['complete'] and t['plain']['complete']}")
    b = await bounded_memory(args)
    h, p = b["hub"], b["plain"]
    print(f"\n## 2. two clients that never read, {b['readers']} readers, {b['messages']} "
          f"messages of 4 KiB")
    print(f"hub: held for each stalled client {h['held_bytes_per_stalled_client'] / 1024:,.0f} "
          f"KiB (queues {h['queue_lengths']} of at most {h['queue_size']}; "
          f"{h['dropped_for_stalled']} oldest dropped), server RSS growth "
          f"{h['rss_growth_bytes'] / 2**20:,.1f} MiB, readers complete: "
          f"{h['readers_complete']} ({h['readers_delivered']} messages)")
    print(f"plain loop: blocked on a stalled client: {p['blocked']}, readers complete: "
          f"{p['readers_complete']} ({p['readers_delivered']} messages in "
          f"{args.plain_limit:g} s)")
    return 0 if t["ratio"] >= GOAL else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--messages", type=int, default=100, help="messages per round")
    p.add_argument("--rounds", type=int, default=4, help="rounds per sender")
    p.add_argument("--readers", type=int, default=10, help="readers beside the two stalled "
                   "clients")
    p.add_argument("--stall-messages", type=int, default=3000,
                   help="messages of 4 KiB in the stall test (more than loopback TCP buffers "
                        "hold)")
    p.add_argument("--plain-limit", type=float, default=10.0,
                   help="seconds the plain loop gets in the stall test")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
