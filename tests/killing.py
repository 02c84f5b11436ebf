"""Test helper: ``kill -9`` a job subprocess once its resume record holds enough finished regions."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_records(proc: subprocess.Popen, record: Path, at_least: int, *, timeout: float = 120.0) -> int:
    """Wait until ``record`` has ``at_least`` ``*.done`` marks (or the job ends), SIGKILL it, return the count."""
    deadline = time.time() + timeout
    while time.time() < deadline and len(list(record.glob("*.done"))) < at_least and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list(record.glob("*.done")))
