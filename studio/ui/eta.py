"""How long a node has left, from how fast its progress has moved so far.

Measured from the first progress report, not from the node's start: a sampler spends its first
seconds loading weights, and counting those would make every estimate far too long.
"""

from __future__ import annotations

import time


class ProgressClock:
    """Remembers the first and the latest progress report of one running node."""

    def __init__(self) -> None:
        self._first: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None

    def reset(self) -> None:
        self._first = self._last = None

    def report(self, fraction: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._first is None or fraction < self._first[1]:  # a new pass starts over
            self._first = (now, fraction)
        self._last = (now, fraction)

    def eta(self) -> float | None:
        """Seconds left at the latest report; None until progress has moved twice."""
        if self._first is None or self._last is None:
            return None
        (t0, p0), (t1, p1) = self._first, self._last
        if p1 <= p0 or t1 <= t0:
            return None
        return max(0.0, (t1 - t0) * (1.0 - p1) / (p1 - p0))


def format_eta(seconds: float | None) -> str:
    """``4 s``, ``2 min 05 s``, ``1 h 03 min``; empty when unknown."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
