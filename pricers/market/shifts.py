"""Bumps applied while a market is read: the risk calculator reprices under them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Shifts:
    """`parallel` is added to every curve quote, `buckets[(curve, tenor)]` to one quote, `vol` to every vol."""

    parallel: float = 0.0
    buckets: dict[tuple[str, str], float] = field(default_factory=dict)
    vol: float = 0.0

    def rate(self, curve: str, tenor: str) -> float:
        return self.parallel + self.buckets.get((curve, tenor), 0.0)


NONE = Shifts()
