"""Charts for the auditor's report: matplotlib (Agg backend) drawn to inline SVG text.

Money stays Decimal everywhere else; here it becomes float only as a plotting
coordinate, on lines marked ``# float-ok: plotting``. Each chart gets its own
hash salt so the ids inside one SVG (clip paths, markers) never collide with
another's on the same page, and no date is written, so a chart is reproducible.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib import rcParams  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable, selectable

COMPONENT_COLOURS = {"core": "#4c72b0", "outcomes": "#55a868", "reserve": "#8172b2",
                     "risk adjustment": "#c44e52", "high-cost": "#dd8452", "true-ups": "#937860", "adjustments": "#da8bc3"}


def _svg(fig: Figure, salt: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline SVG
    return _METADATA.sub("", text, count=1)


def _millions(value: float, _: object) -> str:  # float-ok: plotting
    return f"{value / 1e6:,.1f}m"  # float-ok: plotting


def payments_chart(years: Sequence[int], components: Mapping[str, Sequence[Decimal]], salt: str) -> str:
    """Stacked bars per contract year; negative components stack below zero."""
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    x = list(range(len(years)))
    up = [0.0] * len(years)  # float-ok: plotting
    down = [0.0] * len(years)  # float-ok: plotting
    for name, values in components.items():
        if not any(values):
            continue
        heights = [float(v) for v in values]  # float-ok: plotting
        bottoms = [up[i] if h >= 0 else down[i] for i, h in enumerate(heights)]  # float-ok: plotting
        ax.bar(x, heights, bottom=bottoms, label=name, color=COMPONENT_COLOURS.get(name), width=0.6)
        for i, h in enumerate(heights):
            if h >= 0:
                up[i] += h  # float-ok: plotting
            else:
                down[i] += h  # float-ok: plotting
    ax.axhline(0, color="#333", linewidth=0.8)
    ax.set_xticks(x, [f"year {y}" for y in years])
    ax.yaxis.set_major_formatter(FuncFormatter(_millions))
    ax.set_ylabel("GBP")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title("Payment components by contract year", fontsize=10)
    return _svg(fig, salt)


def indicator_chart(title: str, years: Sequence[int], values: Sequence[Decimal | None],
                    baselines: Sequence[Decimal | None], thresholds: Mapping[str, Sequence[Decimal | None]],
                    salt: str) -> str:
    """A measure's value by year against its baseline and its resolved thresholds."""
    fig = Figure(figsize=(4.2, 2.6))
    ax = fig.add_subplot()

    def series(points: Sequence[Decimal | None]) -> tuple[list[int], list[float]]:
        pairs = [(y, float(v)) for y, v in zip(years, points) if v is not None]  # float-ok: plotting
        return [p[0] for p in pairs], [p[1] for p in pairs]

    xs, ys = series(values)
    ax.plot(xs, ys, marker="o", color="#4c72b0", label="value", zorder=3)
    bx, by = series(baselines)
    if bx:
        ax.plot(bx, by, linestyle="--", color="#555", label="baseline", drawstyle="steps-mid")
    styles = iter(["#c44e52", "#55a868", "#dd8452", "#8172b2", "#937860", "#da8bc3"])
    for name, points in thresholds.items():
        tx, ty = series(points)
        if tx:
            ax.plot(tx, ty, linestyle=":", marker="_", color=next(styles, "#999"), label=name)
    ax.set_xticks(list(years), [str(y) for y in years])
    ax.set_xlabel("contract year", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="best")
    return _svg(fig, salt)


def cost_chart(years: Sequence[int], budgets: Sequence[Decimal], costs: Sequence[Decimal | None],
               corridors: Sequence[Sequence[tuple[Decimal, Decimal]]], salt: str) -> str:
    """Cost per year against the budget, with the risk-share tiers drawn as bands around the reference.

    ``corridors[i]`` lists (low, high) bounds of each bounded tier for year i, innermost first.
    """
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    x = list(range(len(years)))
    shades = ["#2ca02c", "#ffbf00", "#d62728"]
    labelled = set()
    for i, bands in enumerate(corridors):
        for n, (low, high) in reversed(list(enumerate(bands))):
            label = f"tier {n + 1} bound" if n not in labelled else None
            labelled.add(n)
            ax.fill_between([i - 0.4, i + 0.4], float(low), float(high),  # float-ok: plotting
                            color=shades[min(n, len(shades) - 1)], alpha=0.12 + 0.08 * n, linewidth=0,
                            label=label)
    cx = [i for i, c in zip(x, costs) if c is not None]
    cy = [float(c) for c in costs if c is not None]  # float-ok: plotting
    ax.bar(cx, cy, width=0.35, color="#4c72b0", label="reported cost (current versions)", zorder=3)
    ax.plot(x, [float(b) for b in budgets], marker="D", color="#333", linestyle="-",  # float-ok: plotting
            label="budget", zorder=4)
    ax.set_xticks(x, [f"year {y}" for y in years])
    ax.yaxis.set_major_formatter(FuncFormatter(_millions))
    values = [b for b in budgets] + [c for c in costs if c is not None] + [v for bands in corridors for b in bands
                                                                           for v in b]
    if values:
        low, high = min(values), max(values)
        pad = (high - low) * Decimal("0.15") or high * Decimal("0.05") or Decimal(1)
        ax.set_ylim(float(max(Decimal(0), low - pad)), float(high + pad))  # float-ok: plotting
    ax.set_ylabel("GBP")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title("Cost against budget, with the risk-share corridor", fontsize=10)
    return _svg(fig, salt)


_ID = re.compile(r"[^A-Za-z0-9_-]")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def salt_for(*parts: object) -> str:
    return _ID.sub("-", "-".join(str(p) for p in parts))
