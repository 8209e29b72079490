"""Results as tables: each row a measurement, its ratio to the run's direct read, and its target.

A row's ``ratio`` is always "this ÷ the direct read doing the same work, measured in
the same run" (lower is better), unless the row says otherwise in its label. A
target is a bound on one number of the row (the ratio, or the value itself) and
gives PASS or MISS; rows without a target show a dash.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Target:
    """``on`` ("ratio" or "value") must be ``op`` ("<=" or ">=") ``bound``."""

    on: str
    op: str
    bound: float
    note: str = ""  # e.g. "aim 0.42"

    def met(self, row: Row) -> bool | None:
        x = row.ratio if self.on == "ratio" else row.value
        if x is None or not math.isfinite(x):
            return None
        return x <= self.bound if self.op == "<=" else x >= self.bound

    def text(self, unit: str) -> str:
        what = " ×direct" if self.on == "ratio" else ("×" if unit == "×" else f" {unit}")
        s = f"{self.op.replace('<=', '≤').replace('>=', '≥')} {self.bound:g}{what}"
        return f"{s} ({self.note})" if self.note else s


@dataclass
class Row:
    label: str
    value: float  # in `unit`
    unit: str  # "s", "ms", "MB/s", "×"
    ratio: float | None = None  # value's time ÷ the direct read of the same work
    target: Target | None = None
    samples: list[float] = field(default_factory=list)  # every repeat, in `unit`
    note: str = ""

    @property
    def status(self) -> str:
        met = self.target.met(self) if self.target else None
        return "—" if met is None else ("PASS" if met else "MISS")


@dataclass
class Table:
    key: str  # "A", "B", "C"
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *args, **kwargs) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def render(self) -> str:
        head = ("", "value", "×direct", "target", "", "")
        body = [
            (
                r.label,
                _fmt(r.value, r.unit),
                "" if r.ratio is None else f"{r.ratio:.2f}",
                r.target.text(r.unit) if r.target else "—",
                r.status,
                r.note,
            )
            for r in self.rows
        ]
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(6)]
        out = [
            f"{self.key}. {self.title}",
            "  "
            + "  ".join(
                h.rjust(w) if i in (1, 2) else h.ljust(w)
                for i, (h, w) in enumerate(zip(head, widths, strict=True))
            ).rstrip(),
        ]
        for line in body:
            cells = [
                c.rjust(w) if i in (1, 2) else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            out.append("  " + "  ".join(cells).rstrip())
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)


def _fmt(value: float, unit: str) -> str:
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.0f} {unit}"


def best(samples: Iterable[float]) -> float:
    """The summary of repeats: the best (smallest time), the least disturbed by other load."""
    return min(samples)


def repeat(n: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(max(1, n))]


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


class Stopwatch:
    """``with Stopwatch() as sw: ...``, then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t


def summary(tables: list[Table]) -> str:
    rows = [r for t in tables for r in t.rows if r.target]
    missed = [f"{t.key}: {r.label.strip()}" for t in tables for r in t.rows if r.status == "MISS"]
    text = (
        f"targets: {sum(r.status == 'PASS' for r in rows)} PASS, {len(missed)} MISS of {len(rows)}"
    )
    return text + "".join(f"\n  MISS {m}" for m in missed)


def save_json(path: str, tables: list[Table], meta: dict) -> None:
    doc = {
        "meta": meta,
        "tables": [
            {
                "key": t.key,
                "title": t.title,
                "notes": t.notes,
                "rows": [{**asdict(r), "status": r.status} for r in t.rows],
            }
            for t in tables
        ],
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")
