"""Charts for the auditor's report: matplotlib (Agg backend) drawn to inline SVG text.

Money stays Decimal everywhere else; here it becomes float only as a plotting
coordinate, on lines marked ``# float-ok: plotting``. Each chart gets its own
hash salt so the ids inside one SVG (clip paths, markers) never collide with
another's on the same page, and no date is written, so a chart is reproducible.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape

import matplotlib

matplotlib.use("Agg")
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable, selectable
# Sized for the page: a wide chart is 7.2 in (the A4 text width, ~690 px) and a card 3.4 in, so their
# 9 pt text prints at 8-9 pt; legends sit below the plot, never over the lines.
rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 8.5,
    }
)
WIDE = (7.2, 3.3)
CARD = (3.4, 2.9)

COMPONENT_COLOURS = {
    "core": "#4c72b0",
    "outcomes": "#55a868",
    "reserve": "#8172b2",
    "risk adjustment": "#c44e52",
    "high-cost": "#dd8452",
    "true-ups": "#937860",
    "adjustments": "#da8bc3",
}


def _svg(fig: Figure, salt: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})  # fixed margins: "tight" would draw twice
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: inline SVG
    return _METADATA.sub("", text, count=1)


def _millions(value: float, _: object) -> str:  # float-ok: plotting
    return f"{value / 1e6:,.1f}m"  # float-ok: plotting


def payments_chart(years: Sequence[int], components: Mapping[str, Sequence[Decimal]], salt: str) -> str:
    """Stacked bars per contract year; negative components stack below zero."""
    fig = Figure(figsize=WIDE)
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
    ax.set_ylim(min(down) * 1.15, (max(up) * 1.08) or 1.0)  # float-ok: plotting  (room above the tallest bar)
    _legend_below(ax)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.3)
    ax.set_title("Payment components by contract year")
    return _svg(fig, salt)


def _legend_below(ax: object, ncol: int = 4) -> None:
    handles, _labels = ax.get_legend_handles_labels()  # type: ignore[attr-defined]
    if handles:  # a year with nothing decided yet (a report as of an early instant) draws no legend
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=ncol, frameon=False)  # type: ignore[attr-defined]


def _scaled(values: Sequence[float]) -> FuncFormatter:  # float-ok: plotting
    big = max((abs(v) for v in values), default=0.0)  # float-ok: plotting
    if big >= 1e6:
        return FuncFormatter(_millions)
    return FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}k")  # float-ok: plotting


def adjustments_chart(years: Sequence[int], components: Mapping[str, Sequence[Decimal]], salt: str) -> str:
    """Everything but the core, in two panels each at its own scale, so nothing vanishes beside the core:
    (a) outcome payments, reserve and high-cost reimbursement; (b) the risk-share adjustment, true-ups and
    manual adjustments, each bar labelled with its amount. Negative bars hang below zero."""
    panels = [
        ("Outcomes, reserve and high-cost reimbursement", ("outcomes", "reserve", "high-cost"), False),
        (
            "Risk-share adjustment, true-ups and manual adjustments",
            ("risk adjustment", "true-ups", "adjustments"),
            True,
        ),
    ]
    fig = Figure(figsize=(WIDE[0], 5.4))
    axes = fig.subplots(2, 1)
    fig.subplots_adjust(hspace=0.75, left=0.13, right=0.98, top=0.94, bottom=0.12)
    for ax, (title, names, labelled) in zip(axes, panels, strict=True):
        shown = {n: components[n] for n in names if n in components and any(components[n])}
        width = 0.8 / max(len(shown), 1)
        every: list[float] = []  # float-ok: plotting
        for k, (name, values) in enumerate(shown.items()):
            heights = [float(v) for v in values]  # float-ok: plotting
            every += heights
            bars = ax.bar(
                [i - 0.4 + width * (k + 0.5) for i in range(len(years))],
                heights,
                width=width * 0.92,
                label=name,
                color=COMPONENT_COLOURS.get(name),
            )
            if labelled:
                ax.bar_label(bars, labels=[_short(v) if v else "" for v in values], fontsize=7, padding=2)
        ax.axhline(0, color="#333", linewidth=0.8)
        ax.set_xticks(list(range(len(years))), [f"year {y}" for y in years])
        ax.yaxis.set_major_formatter(_scaled(every))
        ax.set_ylabel("GBP")
        if every:
            top, bottom = max(0.0, *every), min(0.0, *every)  # float-ok: plotting
            room = (top - bottom) * 0.25 or 1.0  # float-ok: plotting
            ax.set_ylim(bottom - (room if bottom < 0 else 0), top + room)
        if shown:
            _legend_below(ax, ncol=len(shown))
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
    return _svg(fig, salt)


def _short(value: Decimal) -> str:
    big = abs(value)
    if big >= 1_000_000:
        return f"{value / 1_000_000:,.2f}m"
    if big >= 1_000:
        return f"{value / 1_000:,.1f}k"
    return f"{value:,.0f}"


def indicator_chart(
    title: str,
    years: Sequence[int],
    values: Sequence[Decimal | None],
    baselines: Sequence[Decimal | None],
    thresholds: Mapping[str, Sequence[Decimal | None]],
    salt: str,
) -> str:
    """A measure's value by year against its baseline and its resolved thresholds, the axis from zero.

    Drawn as SVG directly (a report holds one per measure: matplotlib took ~0.1 s each); coordinates are
    Decimal, rounded to 0.1 px, so no float is involved at all."""
    W, left, right, top, bottom = 340, 46, 328, 30, 206
    lines: list[tuple[str, str, str, Sequence[Decimal | None]]] = [("value", "#4c72b0", "", values)]
    if any(v is not None for v in baselines):
        lines.append(("baseline", "#555555", "6 4", baselines))
    colours = iter(["#c44e52", "#55a868", "#dd8452", "#8172b2", "#937860", "#da8bc3"])
    for name, points in thresholds.items():
        if any(v is not None for v in points):
            lines.append((name, next(colours, "#999999"), "2 3", points))
    H = bottom + 52 + ((len(lines) + 1) // 2) * 16
    every = [v for *_, points in lines for v in points if v is not None]
    low = min([Decimal(0), *every])
    high = max([Decimal(0), *every])
    step = _nice_step((high - low) or Decimal(1))
    lo = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    hi = (high * Decimal("1.05") / step).to_integral_value(rounding="ROUND_CEILING") * step
    if hi == lo:
        hi = lo + step

    def y_of(v: Decimal) -> Decimal:
        return (Decimal(bottom) - (v - lo) / (hi - lo) * (bottom - top)).quantize(Decimal("0.1"))

    n = max(len(years), 1)
    slot = Decimal(right - left) / n

    def x_of(i: int) -> Decimal:
        return (Decimal(left) + slot * i + slot / 2).quantize(Decimal("0.1"))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'font-family="DejaVu Sans, sans-serif" font-size="12.5" role="img" aria-label="{escape(title)}">',
        f'<text x="{(left + right) // 2}" y="16" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#333"/>',
    ]
    tick = lo
    while tick <= hi:
        y = y_of(tick)
        out.append(
            f'<line x1="{left - 4}" y1="{y}" x2="{right}" y2="{y}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{_tick(tick, step)}</text>'
        )
        tick += step
    for i, year in enumerate(years):
        out.append(f'<text x="{x_of(i)}" y="{bottom + 15}" text-anchor="middle">{year}</text>')
    out.append(f'<text x="{(left + right) // 2}" y="{bottom + 31}" text-anchor="middle">contract year</text>')
    for name, colour, dash, points in reversed(lines):
        coords = [(x_of(i), y_of(v)) for i, v in enumerate(points) if v is not None]
        style = f' stroke-dasharray="{dash}"' if dash else ""
        width = "2" if name == "value" else "1.5"
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"{style} '
            f'points="{" ".join(f"{x},{y}" for x, y in coords)}"><title>{escape(name)}</title></polyline>'
        )
        if name == "value":
            out += [f'<circle cx="{x}" cy="{y}" r="3.2" fill="{colour}"/>' for x, y in coords]
    for k, (name, colour, dash, _) in enumerate(lines):  # the legend, below the plot in two columns
        lx, ly = 20 + (k % 2) * 160, bottom + 52 + (k // 2) * 16
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"{style}/>'
            f'<text x="{lx + 28}" y="{ly}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _nice_step(span: Decimal) -> Decimal:
    """A round tick step giving about five ticks over ``span``."""
    raw = span / 5
    power = Decimal(10) ** (raw.adjusted())
    for m in (1, 2, Decimal("2.5"), 5, 10):
        if power * m >= raw:
            return power * m
    return power * 10


def _tick(value: Decimal, step: Decimal) -> str:
    places = max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:,.{places}f}"


def cost_chart(
    years: Sequence[int],
    budgets: Sequence[Decimal],
    costs: Sequence[Decimal | None],
    corridors: Sequence[Sequence[tuple[Decimal, Decimal]]],
    salt: str,
    tier_labels: Sequence[str] = (),
) -> str:
    """Cost per year against the budget, with the risk-share tiers drawn as bands around the reference.

    ``corridors[i]`` lists (low, high) bounds of each bounded tier for year i, innermost first.
    """
    fig = Figure(figsize=WIDE)
    ax = fig.add_subplot()
    x = list(range(len(years)))
    shades = ["#2ca02c", "#ffbf00", "#d62728"]
    labelled = set()
    for i, bands in enumerate(corridors):
        for n, (low, high) in reversed(list(enumerate(bands))):
            label = (
                (tier_labels[n] if n < len(tier_labels) else f"tier {n + 1}") if n not in labelled else None
            )
            labelled.add(n)
            ax.fill_between(
                [i - 0.4, i + 0.4],
                float(low),  # float-ok: plotting
                float(high),  # float-ok: plotting
                color=shades[min(n, len(shades) - 1)],
                alpha=0.12 + 0.08 * n,
                linewidth=0,
                label=label,
            )
    cx = [i for i, c in zip(x, costs, strict=True) if c is not None]
    cy = [float(c) for c in costs if c is not None]  # float-ok: plotting
    ax.bar(cx, cy, width=0.35, color="#4c72b0", label="reported cost (current versions)", zorder=3)
    ax.plot(
        x,
        [float(b) for b in budgets],  # float-ok: plotting
        marker="D",
        color="#333",
        linestyle="-",  # float-ok: plotting
        label="budget",
        zorder=4,
    )
    ax.set_xticks(x, [f"year {y}" for y in years])
    ax.yaxis.set_major_formatter(FuncFormatter(_millions))
    values = (
        list(budgets)
        + [c for c in costs if c is not None]
        + [v for bands in corridors for b in bands for v in b]
    )
    if values:  # the axis starts at zero, so bars compare by their length
        ax.set_ylim(0, float(max(values) * Decimal("1.08")) or 1.0)  # float-ok: plotting
    ax.set_ylabel("GBP")
    _legend_below(ax, ncol=3)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.3)
    ax.set_title("Cost against budget, with the risk-share corridor")
    return _svg(fig, salt)


_ID = re.compile(r"[^A-Za-z0-9_-]")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def salt_for(*parts: object) -> str:
    return _ID.sub("-", "-".join(str(p) for p in parts))
