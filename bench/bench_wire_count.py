"""What counting the bytes on the wire costs the hub's broadcast (issue 15, item 1).

The hub's own server counts every byte websockets writes to a transport by wrapping the
connection protocol's ``data_to_send`` (:class:`pwtop.realtime.hub._WireCounter`) and
samples the total into a windowed rate on each send. This measures ``broadcast()`` with
and without that counting, side by side in one run over the same connections: rounds
alternate between the two (the counter unwrapped and the sampling switched off for the
"without" rounds), and the CPU time spent inside ``broadcast()`` (the part of a send the
app's loop pays) is compared per message and connection.

Run: ``.venv/bin/python bench/bench_wire_count.py [--clients 100] [--messages 200]
[--rounds 6]``. Loopback (127.0.0.1) only; the clients read in the same process, outside
the timed calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from websockets.asyncio.client import connect

# The pwtop of this checkout, whatever else the environment holds.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pwtop.config import RealtimeSettings  # noqa: E402
from pwtop.realtime.hub import WebSocketHub  # noqa: E402


def ap_update(i: int) -> dict:
    return {"type": "aps", "aps": [{"bssid": f"00:11:22:33:{i % 256:02x}:{n:02x}",
                                    "ssid": "PiWardrive-net", "signal_dbm": -60}
                                   for n in range(20)]}


def counting(hub: WebSocketHub, on: bool) -> None:
    """Switch the wire counting of every connection of ``hub`` on or off."""
    for client in hub._clients.values():
        counter = client.ws.wire
        client.ws.protocol.data_to_send = counter if on else counter._take
    hub.metrics.wire_unavailable = None if on else "switched off by the benchmark"


async def one_round(hub: WebSocketHub, clients: list, messages: int, start: int) -> float:
    """CPU seconds spent inside broadcast() for ``messages`` messages, all read after."""
    cpu = 0.0
    for i in range(messages):
        t0 = time.process_time()
        hub.broadcast("/ws/aps", ap_update(start + i))
        cpu += time.process_time() - t0
        if i % 20 == 19:  # let the clients read, so every write goes out at once
            await asyncio.gather(*(drain(c, 20) for c in clients))
    await asyncio.gather(*(drain(c, messages % 20) for c in clients))
    return cpu


async def drain(ws, n: int) -> None:
    for _ in range(n):
        await ws.recv()


async def main(args: argparse.Namespace) -> None:
    hub = WebSocketHub(RealtimeSettings(heartbeat_interval=3600, compression=args.compression,
                                        max_connections=args.clients + 10,
                                        message_queue_size=10_000))
    async with hub.serve():
        clients = [await connect(hub.url("/ws/aps"), max_queue=None,
                                 compression="deflate" if args.compression else None)
                   for _ in range(args.clients)]
        while hub.connections < args.clients:
            await asyncio.sleep(0.01)
        per: dict[bool, list[float]] = {True: [], False: []}
        n = 0
        for r in range(args.rounds * 2):
            on = r % 2 == 0
            counting(hub, on)
            cpu = await one_round(hub, clients, args.messages, n)
            n += args.messages
            per[on].append(cpu / (args.messages * args.clients) * 1e6)
        counting(hub, True)
        for ws in clients:
            await ws.close()
    with_, without = statistics.median(per[True]), statistics.median(per[False])
    print(f"{args.clients} clients, {args.messages} messages x {args.rounds} rounds each, "
          f"compression {'on' if args.compression else 'off'}")
    print("  broadcast CPU per message and connection, median of rounds:")
    print(f"    counting wire bytes   {with_:7.2f} us")
    print(f"    not counting          {without:7.2f} us")
    print(f"  ratio (counting / not): {with_ / without:.3f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--no-compression", dest="compression", action="store_false")
    asyncio.run(main(p.parse_args()))
