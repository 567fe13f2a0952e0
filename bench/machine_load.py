"""What the bench scripts share: timed runs and how busy the rest of the machine was meanwhile.

The machines these benchmarks run on are often shared, so each side's rounds also record the CPU ticks other
processes used, and the scripts print that share next to the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def busy_and_total_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks since boot over all CPUs, from /proc/stat; None where there is no such file."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Timings:
    """One side's timed rounds: wall seconds, CPU seconds of this process tree, and ticks the others used."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    others_ticks: int = 0
    total_ticks: int = 0
