"""The framing between :class:`pwtop.asgi.PerformanceApp` and its worker process.

One frame is a JSON header on one line, then the parts it names, as raw bytes::

    {"kind": "docs", "parts": [["stats", 153210], ["event", 74112]], ...}\\n
    <153210 bytes><74112 bytes>

The documents are JSON already; framing them by length means the app's loop never parses
or re-encodes them: it reads the bytes and serves them as they are. Commands from the app
to the worker are single JSON lines (:func:`command`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

#: A header line is small; anything longer is a broken worker, not a frame.
MAX_HEADER_BYTES = 64 * 1024


class FrameError(Exception):
    """What the other side wrote is not a frame (a crash mid-write, a stray print)."""


@dataclass
class Frame:
    """A header's fields (``kind`` and whatever else it carried) and its parts."""

    kind: str
    header: dict[str, Any]
    parts: dict[str, bytes] = field(default_factory=dict)


def encode(kind: str, parts: dict[str, bytes] | None = None, **fields: Any) -> bytes:
    """One frame: the header line, then each part's bytes."""
    parts = parts or {}
    head = {"kind": kind, **fields, "parts": [[name, len(data)] for name, data in parts.items()]}
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + b"".join(parts.values())


async def read(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, None at the end of the stream; FrameError for anything else."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError(f"the stream ended inside a header: {exc.partial[:80]!r}") from None
    except asyncio.LimitOverrunError:
        raise FrameError(f"a header line over {reader._limit} bytes") from None  # noqa: SLF001
    try:
        head = json.loads(line)
        kind = head["kind"]
        sizes = [(str(name), int(size)) for name, size in head.get("parts", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise FrameError(f"not a frame header ({exc}): {line[:80]!r}") from None
    parts: dict[str, bytes] = {}
    for name, size in sizes:
        if size < 0:
            raise FrameError(f"part {name!r} has a negative size")
        try:
            parts[name] = await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise FrameError(f"the stream ended inside part {name!r}") from None
    return Frame(str(kind), head, parts)


def command(**fields: Any) -> bytes:
    """A command line from the app to the worker."""
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"
