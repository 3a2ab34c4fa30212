"""How `portal run` spaces the restarts of a process that keeps stopping, and restarts one
that started but never got ready."""

from __future__ import annotations

import subprocess

from portal.supervise import Child


def _restart_delays(child: Child, now: float, stops: int) -> list[float]:
    """Let the process stop `stops` times, each time `now` moving to its restart."""
    delays = []
    for _ in range(stops):
        assert child.process is not None
        child.process.wait()
        child.watch(now)  # sees it stopped
        assert child.restart_at is not None
        delays.append(child.restart_at - now)
        now = child.restart_at
        child.watch(now)  # starts it again
    return delays


def test_restarts_wait_longer_while_it_keeps_failing_and_start_over_after_a_good_run() -> None:
    child = Child("probe", lambda: subprocess.Popen(["true"], start_new_session=True))
    child.launch(now=0.0)
    assert _restart_delays(child, 0.0, 7) == [1, 2, 4, 8, 16, 30, 30]

    assert child.process is not None
    child.process.wait()
    child.watch(child.started_at + 60)  # it had run a minute before it stopped
    assert child.restart_at == child.started_at + 60 + 1


def test_a_process_not_ready_after_a_restart_is_stopped_and_started_again_later() -> None:
    readiness = iter([None, "not answering", None])

    def ready() -> None:
        if (problem := next(readiness)) is not None:
            raise RuntimeError(problem)

    child = Child(
        "probe", lambda: subprocess.Popen(["sleep", "60"], start_new_session=True), ready=ready
    )
    first = child.launch(now=0.0)  # ready
    first.kill()
    first.wait()
    child.watch(1.0)
    assert child.restart_at == 2.0
    child.watch(2.0)  # starts again, but it does not get ready: killed
    second = child.process
    assert second is not None and second is not first and second.poll() is not None
    child.watch(2.5)
    assert child.restart_at == 4.5  # the next restart, as for any stop
    child.watch(4.5)
    assert child.process is not None and child.process.poll() is None  # ready this time
    child.process.kill()
    child.process.wait()
