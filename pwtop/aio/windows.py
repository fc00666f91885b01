"""Counts of recent events (last 1/10/60 s) for a group of cumulative counters.

Primitives keep plain cumulative integers on their hot paths; this samples them about
once a second into :class:`pwtop.metrics.WindowedRate` (the system engineer's windowed
rate on the monotonic clock) so recommendations can ask "how many timeouts in the last
minute" instead of reading a lifetime total.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from pwtop.metrics import WindowedRate, window_label

WINDOWS = (1.0, 10.0, 60.0)


class CounterWindows:
    """Samples ``getattr(owner, name)`` for each name; reports per-window increments."""

    def __init__(self, owner: Any, names: Iterable[str], *, clock: Callable[[], float],
                 windows: tuple[float, ...] = WINDOWS, resolution: float = 1.0) -> None:
        self._owner = owner
        self._clock = clock
        self._rates = {name: WindowedRate(windows, clock=clock, resolution=resolution)
                       for name in names}

    def sample(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        owner = self._owner
        for name, rate in self._rates.items():
            rate.update(getattr(owner, name), now)

    def counts(self) -> dict[str, dict[str, int | None]]:
        """Events per window. A window longer than the history counts the whole history,
        which is still exact because the first sample is taken at creation (value 0)."""
        out: dict[str, dict[str, int | None]] = {}
        for name, rate in self._rates.items():
            per: dict[str, int | None] = {}
            for w in rate.windows:
                d = rate.delta(w, partial=True)
                per[window_label(w)] = None if d is None else int(d.value)
            out[name] = per
        return out

    def spans(self) -> dict[str, dict[str, float | None]]:
        """Seconds each of :meth:`counts`' figures covers: the window, or less while the
        history is younger than it. A reader turns a count into a rate only with these."""
        out: dict[str, dict[str, float | None]] = {}
        for name, rate in self._rates.items():
            out[name] = {}
            for w in rate.windows:
                d = rate.delta(w, partial=True)
                out[name][window_label(w)] = None if d is None else d.seconds
        return out

    def rates(self) -> dict[str, dict[str, float | None]]:
        """Per-second rates per window; None until the history covers the window (unlike
        :meth:`counts`, a rate over a shorter history would be mislabelled)."""
        return {name: rate.rates() for name, rate in self._rates.items()}
