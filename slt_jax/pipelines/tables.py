"""The pipelines' tables: values over seeds as text, and tables as markdown, CSV or HTML.

A table is a list of rows, the first its header, every cell already text (CSV cells may be
numbers). Over seeds, only the known values count: None (not measured) and NaN are left out.
"""

from __future__ import annotations

import csv
import html
import io

import numpy as np

from slt_jax.analysis import intervals as iv


def known(values) -> list:
    """The values that were measured: neither None nor NaN (nor infinite)."""
    return [v for v in values if v is not None and np.isfinite(v)]


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def mean_interval(values, digits: int = 2) -> str:
    """"mean [95% t-interval over seeds]" of the known values, "–" without any."""
    values = known(values)
    return iv.format_interval(np.mean(values), iv.seed_interval(values), digits) if values else "–"


def mean_text(values) -> str:
    """The mean of the known values to 3 decimals, "–" without any."""
    values = known(values)
    return f"{np.mean(values):.3f}" if values else "–"


def brackets(interval) -> str:
    """"[lo, hi]" to 3 decimals, "–" for no interval."""
    return "–" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def markdown_rows(table_md: str) -> list[list[str]]:
    """The rows of a markdown table (its header first), cells stripped."""
    lines = [l for l in table_md.splitlines() if l.startswith("|") and not l.startswith("|---")]
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines]


def csv_text(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def html_table(rows: list[list[str]], verdict_col: int | None = None) -> str:
    """A <table>; the cells of `verdict_col` get their verdict as class ("not measured (…)" -> not-measured)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = []
    for r in rows[1:]:
        cells = []
        for i, c in enumerate(r):
            cls = f' class="{c.split(" (")[0].replace(" ", "-")}"' if i == verdict_col else ""
            cells.append(f"<td{cls}>{html.escape(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
