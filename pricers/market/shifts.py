"""Bumps applied while a market is read: the risk calculator reprices under them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Shifts:
    """`parallel` is added to every curve quote, `buckets[(curve, tenor)]` to one quote, `vol` to every vol."""

    parallel: float = 0.0
    buckets: dict[tuple[str, str], float] = field(default_factory=dict)
    vol: float = 0.0

    def touches(self, curve: str) -> bool:
        """Whether any quote of `curve` moves (an untouched curve may be reused from the base market)."""
        return self.parallel != 0.0 or any(name == curve for name, _ in self.buckets)

    def rate(self, curve: str, tenor: str) -> float:
        return self.parallel + self.buckets.get((curve, tenor), 0.0)


NONE = Shifts()
