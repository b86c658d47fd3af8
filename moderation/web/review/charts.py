"""Small charts drawn on the server as inline SVG: no JavaScript, no external assets, CSP-friendly.

Colours come from CSS classes (`series-<name>`) in review.css, never from style attributes (the CSP
forbids inline styles). Every chart has a <title> and each mark a <title> tooltip with its figure;
the stats page also shows the numbers as a table for screen readers and people who prefer numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


def _nice_top(value: float, *, percent: bool) -> float:
    """An axis maximum at or above `value` whose quarters are round numbers (gridlines at 0, ¼, ½, ¾, 1)."""
    if percent:
        return next(top for top in (0.2, 0.4, 0.6, 0.8, 1.0) if value <= top + 1e-9) if value <= 1 else 1.0
    magnitude = 1.0
    while True:
        factors = (1.0, 2.0, 5.0) if magnitude < 10 else (1.0, 2.0, 2.5, 5.0)  # quarters stay whole numbers
        for factor in factors:
            if magnitude * factor * 4 >= value:
                return magnitude * factor * 4
        magnitude *= 10


def _frame(title: str, labels: Sequence[str], top: float, percent: bool, width: int) -> list[str]:
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        text = f"{value:.0%}" if percent else f"{value:,.0f}"
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    every = max(1, -(-len(labels) // (8 if width >= 600 else 5)))
    slot = plot_w / max(1, len(labels))
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label[5:])}</text>'
            )
    return parts


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    names: Mapping[str, str] | None = None,
    *,
    width: int = WIDTH,
) -> Markup:
    """Bars per label (e.g. day), stacked by series (e.g. decision); `names` maps a series' CSS name to
    the words in its tooltips. Empty input draws an empty frame."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = _nice_top(max(totals, default=0), percent=False)
    parts = _frame(title, labels, top, percent=False, width=width)
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    bar = max(1.0, slot * 0.72)
    for i, label in enumerate(labels):
        base: float = TOP + plot_h
        x = LEFT + slot * i + (slot - bar) / 2
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(
                f'<rect class="series-{escape(name)}" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                f"<title>{escape(label)}: {value:,.0f} {escape((names or {}).get(name, name))}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value interpolated above went through escape()


def lines(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    percent: bool,
    width: int = WIDTH,
) -> Markup:
    """One polyline per series with a dot per point; None leaves a gap (no data that day)."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = _nice_top(max(values, default=0), percent=percent)
    parts = _frame(title, labels, top, percent=percent, width=width)
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    for name, points in series.items():
        segment: list[str] = []
        dots: list[str] = []
        for i, value in enumerate(points):
            if value is None:
                if len(segment) > 1:
                    parts.append(f'<polyline class="line series-{escape(name)}" points="{" ".join(segment)}"/>')
                segment = []
                continue
            x = LEFT + slot * (i + 0.5)
            y = TOP + plot_h - plot_h * min(value, top) / top
            segment.append(f"{x:.1f},{y:.1f}")
            shown = f"{value:.0%}" if percent else f"{value:,.0f}"
            dots.append(
                f'<circle class="dot series-{escape(name)}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(labels[i])}: {shown} {escape(name)}</title></circle>"
            )
        if len(segment) > 1:
            parts.append(f'<polyline class="line series-{escape(name)}" points="{" ".join(segment)}"/>')
        parts.extend(dots)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value interpolated above went through escape()
