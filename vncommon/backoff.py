"""Exponential backoff for loops that wait out an unavailable dependency (Redis, another service)."""

from __future__ import annotations


class Backoff:
    """Delays doubling from `start_s` up to `cap_s`; `reset()` after a success starts over."""

    def __init__(self, start_s: float = 0.05, cap_s: float = 2.0) -> None:
        self._start_s = start_s
        self._cap_s = cap_s
        self._delay = start_s

    def next(self) -> float:
        """The delay to wait now; the following one doubles (up to the cap)."""
        delay = self._delay
        self._delay = min(self._delay * 2, self._cap_s)
        return delay

    def reset(self) -> None:
        self._delay = self._start_s
