"""Shared by the benchmark scripts: verdicts that admit noise, markdown tables, medians and ranges, machine facts."""

import os
import platform
import statistics
from collections.abc import Callable
from pathlib import Path


def verdict(
    median: float, per_repeat: list[float], meets: Callable[[float], bool], yes: str = "PASS", no: str = "FAIL"
) -> str:
    """``yes`` / ``no`` when the median and every repeat agree; otherwise say the noise decides."""
    if all(meets(x) for x in [median, *per_repeat]):
        return yes
    if not any(meets(x) for x in [median, *per_repeat]):
        return no
    return f"{yes if meets(median) else no} by the median (repeats disagree)"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "?"


def machine_facts(**versions: str) -> dict[str, str]:
    """CPU, usable cores, memory, OS, library versions (the caller's, as keywords) and the load when the run starts:
    the conditions of a table. The one copy every benchmark prints."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return {
        "CPU": cpu_model(),
        "CPU count": f"{os.cpu_count()} (usable: {usable})",
        "RAM": memory_total(),
        "OS": platform.platform(),
        "python": platform.python_version(),
        **versions,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# Medians and ranges over repeats, as the benchmarks print them.
def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    if len(values) < 2:
        return ""
    return f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
