"""How many entries a worker holds beyond its free slots: only those its tasks' durations say start soon."""

from __future__ import annotations

from vnas.prefetch import PrefetchGauge


def test_nothing_extra_is_held_before_any_task_ran() -> None:
    assert PrefetchGauge(concurrency=4, limit=32).extra() == 0


def test_short_tasks_fill_the_local_queue_up_to_its_limit() -> None:
    gauge = PrefetchGauge(concurrency=4, limit=32)
    gauge.observe(0.00001)
    assert gauge.extra() == 32


def test_long_tasks_hold_nothing_extra_so_idle_workers_get_them() -> None:
    gauge = PrefetchGauge(concurrency=4, limit=32)
    gauge.observe(0.5)  # 4 x 50 ms / 500 ms: less than one
    assert gauge.extra() == 0


def test_the_queue_follows_the_running_average_of_durations() -> None:
    gauge = PrefetchGauge(concurrency=4, limit=32)
    gauge.observe(0.01)  # 4 slots x 50 ms horizon / 10 ms = 20
    assert gauge.extra() == 20
    for _ in range(200):
        gauge.observe(1.0)
    assert gauge.extra() == 0


def test_a_limit_of_zero_turns_the_queue_off() -> None:
    gauge = PrefetchGauge(concurrency=4, limit=0)
    gauge.observe(0.00001)
    assert gauge.extra() == 0
