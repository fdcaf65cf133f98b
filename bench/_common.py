"""Helpers shared by the benchmarks: latency summaries and plain-text tables.

Benchmarks print figures; they never assert. Percentiles use linear interpolation between
the two nearest ranks (numpy's default), so p99 of 500 samples lies between the 5th and 6th
slowest.
"""

from __future__ import annotations

import configparser
import math
import platform
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def process_command(process: str) -> str:
    """supervisord.conf's command for `process` (web, voice...), as a shell command line."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "supervisord.conf", encoding="utf-8")
    section = f"program:{process}"
    if not config.has_section(section):
        raise SystemExit(f"supervisord.conf has no [{section}]")
    words = shlex.split(config.get(section, "command"))
    if words[:2] == ["sh", "-c"]:
        return words[2]
    return "exec " + shlex.join(words)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `samples`, interpolating between the nearest ranks."""
    if not samples:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """Latency figures of one scenario, in milliseconds."""

    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready figures, rounded to microseconds."""
        return {
            "n": self.n,
            "mean_ms": round(self.mean, 3),
            "p50_ms": round(self.p50, 3),
            "p95_ms": round(self.p95, 3),
            "p99_ms": round(self.p99, 3),
            "max_ms": round(self.max, 3),
        }


def summarize(seconds: Sequence[float]) -> Summary:
    """Summarise durations measured in seconds (time.perf_counter) as milliseconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan)
    return Summary(
        n=len(ms),
        mean=sum(ms) / len(ms),
        p50=percentile(ms, 50),
        p95=percentile(ms, 95),
        p99=percentile(ms, 99),
        max=max(ms),
    )


def verdict(value: float, target: float) -> str:
    """PASS when `value` meets the target (at most), else MISS."""
    return "PASS" if value <= target else "MISS"


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None
) -> str:
    """A plain-text table; `align` has one letter per column, 'l' or 'r' (default: text left)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if align is None:
        align = "".join("r" if _numeric(rows, i) else "l" for i in range(len(headers)))
    pad: list[Callable[[str, int], str]] = [
        (lambda s, w: s.rjust(w)) if a == "r" else (lambda s, w: s.ljust(w)) for a in align
    ]
    lines = ["  ".join(pad[i](row[i], widths[i]) for i in range(len(headers))) for row in cells]
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([lines[0], rule, *lines[1:]])


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None
) -> None:
    """Print `format_table(...)`."""
    print(format_table(headers, rows, align=align))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The same table in Markdown, numbers right-aligned."""
    align = ["---:" if _numeric(rows, i) else "---" for i in range(len(headers))]
    lines = [
        "| " + " | ".join(str(h) for h in headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_description() -> str:
    """CPU count, CPU model and Python version, for the figures' context."""
    import os

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU ({model}), Python {platform.python_version()}"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def _numeric(rows: Sequence[Sequence[object]], column: int) -> bool:
    return bool(rows) and all(isinstance(row[column], int | float) for row in rows)
