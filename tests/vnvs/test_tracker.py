"""Retry and duplicate rules of a running group (pure state, no I/O)."""

from vn.v1 import streams_pb2
from vnvs.tracker import Decision, GroupTracker, backoff_seconds


def update(task_id: str, status: str, attempt: int = 1, error: str = "") -> streams_pb2.TaskUpdate:
    return streams_pb2.TaskUpdate(task_id=task_id, status=status, attempt=attempt, error=error)


def tracker(max_attempts: int = 3) -> GroupTracker:
    t = GroupTracker(["1", "2"], max_attempts=max_attempts, wait_timeout_s=10)
    assert t.start(now=0, done=set()) == ["1", "2"]
    return t


def test_a_group_finishes_when_every_task_completed_once() -> None:
    t = tracker()
    assert t.on_update(update("1", "completed")) is Decision.COMPLETED
    assert not t.finished
    assert t.on_update(update("2", "completed")) is Decision.COMPLETED
    assert t.finished


def test_a_duplicate_completion_is_ignored() -> None:
    t = tracker()
    t.on_update(update("1", "completed"))
    assert t.on_update(update("1", "completed")) is Decision.IGNORE
    assert t.completed == 1


def test_a_failure_is_retried_until_the_last_attempt_then_exhausts() -> None:
    t = tracker(max_attempts=2)
    assert t.on_update(update("1", "failed", 1, "boom")) is Decision.RETRY
    assert t.on_update(update("1", "failed", 1, "boom")) is Decision.IGNORE  # retry already pending
    assert t.begin_retry("1", now=1) == 2
    assert t.on_update(update("1", "failed", 2, "boom again")) is Decision.EXHAUSTED
    assert t.tasks["1"].last_error == "boom again"


def test_a_late_failure_of_an_older_attempt_does_not_cost_a_retry() -> None:
    t = tracker()
    t.on_update(update("1", "failed", 1))
    t.begin_retry("1", now=1)
    assert t.on_update(update("1", "failed", 1)) is Decision.IGNORE
    assert t.tasks["1"].attempt == 2


def test_a_success_of_an_older_attempt_still_completes_the_task() -> None:
    t = tracker()
    t.on_update(update("1", "failed", 1))
    t.begin_retry("1", now=1)
    assert t.on_update(update("1", "completed", 1)) is Decision.COMPLETED


def test_a_silent_task_counts_as_a_failed_attempt_after_the_wait_timeout() -> None:
    t = tracker()
    assert t.expired(now=5) == []
    assert t.next_deadline() == 10
    decisions = dict(t.expired(now=10))
    assert decisions == {"1": Decision.RETRY, "2": Decision.RETRY}
    assert "TASK_WAIT_TIMEOUT_MS" in t.tasks["1"].last_error


def test_resumed_tasks_with_results_are_not_dispatched_again() -> None:
    t = GroupTracker(["1", "2", "3"], max_attempts=3, wait_timeout_s=10)
    assert t.start(now=0, done={"2"}) == ["1", "3"]
    assert t.completed == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    for attempt, upper in ((1, 0.1), (2, 0.2), (3, 0.4), (10, 1.0)):
        delay = backoff_seconds(attempt, base_ms=100, cap_ms=1000)
        assert upper / 2 <= delay <= upper


def test_worker_crashes_count_against_the_budget_of_deliveries() -> None:
    t = tracker(max_attempts=3)
    assert t.remaining_deliveries("1") == 3
    # The first attempt's entry was delivered twice (one worker died) before it failed.
    crashed_once = update("1", "failed", 1, "boom")
    crashed_once.deliveries = 2
    assert t.on_update(crashed_once) is Decision.RETRY
    assert t.remaining_deliveries("1") == 1
    t.begin_retry("1", now=1)
    assert t.on_update(update("1", "failed", 2, "boom")) is Decision.EXHAUSTED


def test_a_dead_lettered_poison_task_exhausts_the_task_at_once() -> None:
    t = tracker(max_attempts=3)
    poison = update("1", "failed", 1, "poison task: delivered 3 times")
    poison.deliveries = 3
    assert t.on_update(poison) is Decision.EXHAUSTED
