"""Peak-memory measurement that works in child processes.

``ru_maxrss`` of a child starts at its parent's resident size (it is inherited
through ``fork``), so benchmarks and tests reset the kernel's high-water mark
first (Linux ``/proc/self/clear_refs``) and read ``VmHWM``.
"""

from __future__ import annotations

import resource

__all__ = ["reset_peak_rss", "peak_rss", "current_rss"]


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark to its current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss() -> int:
    """Peak resident memory in bytes since start (or since :func:`reset_peak_rss`)."""
    value = _status("VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    """Current resident memory in bytes."""
    value = _status("VmRSS")
    return value if value is not None else peak_rss()
