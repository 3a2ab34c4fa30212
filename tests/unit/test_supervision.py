"""How `portal run` spaces the restarts of a process that keeps stopping."""

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
