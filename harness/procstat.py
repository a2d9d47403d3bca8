"""What /proc says of a process: proportional memory (PSS) and CPU time, for benchmarks and soaks."""

from __future__ import annotations

import os

HZ = os.sysconf("SC_CLK_TCK")


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB (shared pages divided among their users); 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (0.0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / HZ
    except (OSError, IndexError, ValueError):
        return 0.0
