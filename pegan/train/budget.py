"""The wall-time budget: stop cleanly, with a checkpoint, before the job's time runs out.

The deadline is the earliest of ``start + --max-minutes`` and the SLURM job's end time (the
``SLURM_JOB_END_TIME`` variable, else ``squeue -o %L`` for ``SLURM_JOB_ID``), minus a safety
margin. A run that stops for the budget exits with :data:`RESUME_EXIT_STATUS` (EX_TEMPFAIL), the
workflow's retry then resumes from the checkpoint (reference snakemake-slurm.md §3).

A scheduler may also ask a job to stop before its end: SLURM sends SIGTERM on ``scancel``, on
preemption and at the time limit (and any signal chosen with ``sbatch --signal``; pegan listens
to SIGTERM and SIGUSR1). :class:`StopSignals` turns that into the same clean stop, after the
current iteration: a checkpoint, then :data:`RESUME_EXIT_STATUS`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time

log = logging.getLogger(__name__)

RESUME_EXIT_STATUS = 75          # EX_TEMPFAIL: "stopped for the time budget, resume me"
DEFAULT_MARGIN_MINUTES = 10.0    # the largest margin; short budgets keep 10 % of themselves


def slurm_end_time() -> float | None:
    """Epoch seconds at which the enclosing SLURM job is killed, if known."""
    end = os.environ.get("SLURM_JOB_END_TIME")
    if end and end.isdigit():
        return float(end)
    job = os.environ.get("SLURM_JOB_ID")
    if not job or not shutil.which("squeue"):
        return None
    try:
        left = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    seconds = parse_slurm_duration(left)
    return None if seconds is None else time.time() + seconds


def parse_slurm_duration(text: str) -> float | None:
    """Seconds of a SLURM duration: [days-]hours:minutes:seconds, minutes:seconds, ..."""
    text = text.strip()
    if not text or text in ("UNLIMITED", "NOT_SET", "INVALID"):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        if not d.isdigit():
            return None
        days = int(d)
    parts = text.split(":")
    if not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    values = [int(p) for p in parts]
    while len(values) < 3:
        values.insert(0, 0)
    h, m, s = values
    return days * 86400 + h * 3600 + m * 60 + s


def deadline(max_minutes: float | None, *, start: float | None = None,
             margin_minutes: float | None = None, use_slurm: bool = True) -> float | None:
    """Epoch seconds by which the run must have saved its checkpoint and exited (or None)."""
    start = time.time() if start is None else start
    ends = []
    if max_minutes is not None and max_minutes > 0:
        ends.append((start + max_minutes * 60.0, max_minutes, "--max-minutes"))
    if use_slurm and (slurm := slurm_end_time()) is not None:
        ends.append((slurm, max(0.0, (slurm - start) / 60.0), "the SLURM job's end time"))
    if not ends:
        return None
    end, minutes, source = min(ends)
    margin = margin_minutes if margin_minutes is not None else min(DEFAULT_MARGIN_MINUTES,
                                                                   0.1 * minutes)
    log.info("wall-time deadline %s: %s minus a %.2f-minute safety margin",
             time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(end - margin * 60.0)), source,
             margin)
    return end - margin * 60.0


class TimeBudget:
    """Decides, before each iteration, whether one more fits before the deadline."""

    def __init__(self, deadline_epoch: float | None) -> None:
        self.deadline = deadline_epoch
        self.save_seconds = 0.0      # the longest checkpoint write seen
        self.step_seconds = 0.0      # the longest recent iteration

    def observe_step(self, seconds: float) -> None:
        self.step_seconds = max(seconds, 0.9 * self.step_seconds)

    def observe_save(self, seconds: float) -> None:
        self.save_seconds = max(self.save_seconds, seconds)

    def exhausted(self, upcoming_seconds: float = 0.0, steps: int = 1) -> bool:
        """True if the next `steps` iterations (+ `upcoming_seconds` of extra work, e.g. a
        snapshot metric) and a checkpoint would end after the deadline."""
        if self.deadline is None:
            return False
        needed = (steps + 0.5) * self.step_seconds + self.save_seconds + upcoming_seconds
        return time.time() + needed > self.deadline

    def remaining_minutes(self) -> float | None:
        return None if self.deadline is None else (self.deadline - time.time()) / 60.0


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopSignals:
    """While active, SIGTERM / SIGUSR1 set :attr:`received` (the signal's name) instead of
    ending the process, so that the loop stops cleanly after its current iteration; a second
    signal of the same kind ends the process as usual. The previous handlers come back on
    exit. Inactive off the main thread (Python delivers signals there only)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:             # asked twice: do what was asked before
            previous = self._previous.get(signum)     # None: not set from Python
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            os.kill(os.getpid(), signum)
            return
        self.received = signal.Signals(signum).name
        log.warning("%s received: stopping after this iteration with a checkpoint",
                    self.received)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
