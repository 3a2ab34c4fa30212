"""Reading another calendar in a child process that the kernel stops.

`busy.busy_read` bounds the work a file can ask for, but a rule engine searching year
after year for a date that never comes, or a parser fed a pathological file, can still
take seconds and memory; a thread cannot be stopped, and it would outlive its job. So the
worker reads each calendar in `python -m portal.booking.sandbox`: the bytes on standard
input, JSON on standard output, at most CPU_SECONDS of CPU and MEMORY_BYTES of address
space (set by the child on itself, before it reads anything), and killed after
WALL_SECONDS whatever it is doing, or when the job waiting for it is cancelled. A child that
does not answer makes the calendar "too_complex"; the worker goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
from datetime import datetime

from portal.booking.busy import Busy, CalendarError, Ignored, busy_read

log = logging.getLogger(__name__)

CPU_SECONDS = 5
MEMORY_BYTES = 256 * 1024 * 1024
WALL_SECONDS = 12.0  # the CPU limit counts only running time; this bounds waiting too


async def busy_in_sandbox(data: bytes, start: datetime, end: datetime, *, tz: str) -> Busy:
    """`busy_read` in a child process with limits; the same result, or CalendarError
    ("too_complex") when the child is stopped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # no environment variables, no user site, not the working directory
        "-B",
        "-m",
        __name__,
        start.isoformat(),
        end.isoformat(),
        tz,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={},
    )
    try:
        async with asyncio.timeout(WALL_SECONDS):
            out, err = await process.communicate(data)
    except TimeoutError:
        raise CalendarError("too_complex", detail=f"no result within {WALL_SECONDS} s") from None
    finally:
        if process.returncode is None:  # timed out, or the job was cancelled
            process.kill()
            await process.wait()
    if process.returncode != 0:
        detail = f"exit {process.returncode}: {err.decode(errors='replace')[-300:]}"
        if process.returncode == 1 and b"MemoryError" not in err:
            log.error("calendar reader failed: %s", detail)
        raise CalendarError("too_complex", detail=detail)
    answer = json.loads(out)
    if "error" in answer:
        raise CalendarError(answer["error"], detail=answer["detail"])
    return Busy(
        spans=[(datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in answer["busy"]],
        ignored=[Ignored(**ignored) for ignored in answer["ignored"]],
    )


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def main(argv: list[str]) -> int:
    _limit()
    start, end, tz = datetime.fromisoformat(argv[0]), datetime.fromisoformat(argv[1]), argv[2]
    data = sys.stdin.buffer.read()
    try:
        busy = busy_read(data, start, end, tz=tz)
    except CalendarError as exc:
        answer: dict[str, object] = {"error": exc.code, "detail": exc.detail}
    else:
        answer = {
            "busy": [[s.isoformat(), e.isoformat()] for s, e in busy.spans],
            "ignored": [{"uid": i.uid, "summary": i.summary} for i in busy.ignored],
        }
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
