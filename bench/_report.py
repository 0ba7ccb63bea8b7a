"""Shared by the benchmark scripts: verdicts that admit noise, and markdown tables."""

from collections.abc import Callable


def verdict(median: float, per_repeat: list[float], meets: Callable[[float], bool], yes: str = "PASS",
            no: str = "FAIL") -> str:  # fmt: skip
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
