"""`pwtop probe URL`: measure a WebSocket or SSE endpoint from the outside, then report."""

from __future__ import annotations

import argparse
import asyncio
import json

from pwtop.config import Settings
from pwtop.units import format_metric, human_bytes, human_seconds

# Longest wait for one connection attempt; a shorter --duration shortens it too.
CONNECT_TIMEOUT = 5.0


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pwtop.realtime.probe import TargetError, parse_header, parse_target, probe

    parse_target(args.url)  # a bad URL or header fails before anything starts
    headers = [parse_header(text) for text in args.header]
    duration = float(args.duration)
    for flag, value in (("--duration", duration), ("--timeout", args.timeout)):
        if value is not None and not value > 0:  # also NaN
            raise TargetError(f"probe {args.url}: {flag} must be a positive number of "
                              f"seconds (got {value:g})")
    timeout = (float(args.timeout) if args.timeout is not None
               else min(CONNECT_TIMEOUT, max(duration, 0.1)))
    result = asyncio.run(probe(args.url, duration, timeout=timeout, headers=headers,
                               follow_redirects=not args.no_follow,
                               synced_clocks=args.synced_clocks))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(render(result)))
    return 0


def render(r) -> list[str]:
    """The probe result as aligned text lines."""
    lines = [f"Probe of {r.url} ({r.kind}, {r.duration_seconds:.1f} s)"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<16} {text}")

    for step in r.redirects:
        dropped = step.get("headers_not_carried")
        row("redirect", f"{step['status']} -> {step['to']}" + (
            f" (not carried to another origin: {', '.join(dropped)})" if dropped else ""))
    if r.headers_sent:
        row("headers sent", "; ".join(r.headers_sent))
    extra = f", max {human_seconds(r.connect_seconds_max)}" if r.connections > 1 else ""
    row("connect", f"{human_seconds(r.connect_seconds)}{extra}; {r.connections} connection(s), "
        f"{r.reconnects} reconnect(s), {r.failed_reconnects} failed")
    if r.ping_rtt_p50_seconds is not None:
        row("ping round trip", f"p50 {human_seconds(r.ping_rtt_p50_seconds)}, min "
            f"{human_seconds(r.ping_rtt_min_seconds)}, max "
            f"{human_seconds(r.ping_rtt_max_seconds)} ({r.pings} pings, {r.pings_lost} lost)")
    else:
        row("ping round trip", r.unavailable.get("ping_rtt_seconds", "-"))
    row("delivery", delivery_text(r))
    rate = format_metric("messages_per_second", r.messages_per_second)
    last10 = (format_metric("messages_per_second", r.messages_per_second_last_10s)
              if r.messages_per_second_last_10s is not None else "n/a (probe < 10 s)")
    row("messages", f"{r.messages:,} ({human_bytes(r.bytes)}); {rate} over the probe, "
        f"last 10 s {last10}")
    if r.first_message_bytes is not None:
        mean = human_bytes(r.bytes / r.messages)
        row("message size", f"first {human_bytes(r.first_message_bytes)}, largest "
            f"{human_bytes(r.largest_message_bytes)}, mean {mean}")
    else:
        row("message size", r.unavailable.get("first_message_bytes", "-"))
    row("content", f"{r.json_messages:,} JSON, {r.non_json_messages:,} not JSON, "
        f"{r.binary_messages:,} binary" + (f", {r.keepalives} keep-alive comment(s)"
                                            if r.kind == "sse" else ""))
    if r.seq_messages:
        row("sequence", f"{r.seq_messages:,} with seq: {r.seq_gaps} gap(s) "
            f"({r.seq_missing} missing), {r.seq_out_of_order} out of order, "
            f"{r.seq_duplicates} duplicate(s), {r.seq_resets} reset(s)")
    else:
        row("sequence", r.unavailable.get("seq_gaps", "-"))
    if r.kind == "sse":
        events = ", ".join(f"{k} {v}" for k, v in sorted(r.events_by_type.items())) or "none"
        row("events", events + (f"; server retry {r.retry_ms} ms" if r.retry_ms else ""))
    if r.closes:
        shown = "; ".join(
            f"{c['code'] if c['code'] is not None else '-'} by {c['by']} at {c['at_seconds']} s"
            + (f" ({c['reason']})" if c["reason"] else "") for c in r.closes[:5])
        more = f" (+{len(r.closes) - 5} more)" if len(r.closes) > 5 else ""
        row("closes", shown + more)
    if r.errors:
        row("errors", r.errors[0])
        for error in r.errors[1:10]:
            row("", error)
        if len(r.errors) > 10:
            row("", f"... {len(r.errors) - 10} more (see --json)")
    else:
        row("errors", "none")
    return lines


def delivery_text(r) -> str:
    """Client-side delivery latency (receipt minus the message's ts) with its sample count,
    or why it is not shown; negative differences are named as clock skew."""
    why = r.unavailable.get("delivery_latency_seconds")
    skew = (f"; {r.delivery_latency_negative} message(s) stamped after their receipt: "
            "clock skew, not latency (left out)" if r.delivery_latency_negative else "")
    if why is not None:
        return f"unavailable ({why})" + skew
    p99 = (human_seconds(r.delivery_latency_p99_seconds)
           if r.delivery_latency_p99_seconds is not None
           else r.unavailable.get("delivery_latency_p99_seconds", "n/a"))
    return (f"p50 {human_seconds(r.delivery_latency_p50_seconds)}, p99 {p99}, max "
            f"{human_seconds(r.delivery_latency_max_seconds)} from "
            f"{r.delivery_latency_samples:,} messages' ts to their receipt "
            f"({r.delivery_clock})" + skew)
