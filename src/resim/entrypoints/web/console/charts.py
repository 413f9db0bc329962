"""Bar charts as inline SVG, drawn on the server: no script, no CDN, prints as it shows.

Each bar is a link (to the requests behind it) with an ``aria-label`` that
says the figure in words, so a screen reader or a keyboard user gets the same
as a mouse user; the page shows the same figures in a table beside the chart.
Text in the chart is escaped; the caller passes words already translated.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180
LEFT, BOTTOM, TOP = 36, 28, 12


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (a short date or a name)
    value: int
    href: str  # the drill-down link
    spoken: str  # the whole figure in words, for assistive technology


def bar_chart(bars: list[Bar], *, chart_id: str, title: str) -> Markup:
    """Vertical bars, one per entry, on a scale from 0 to the largest value."""
    if not bars:
        return Markup("")
    top = max(max(b.value for b in bars), 1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(bars)
    bar_w = max(min(slot * 0.7, 40), 2)
    every = max(1, round(len(bars) / 10))  # at most ~10 labels under the axis
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-labelledby="{escape(chart_id)}-title" focusable="false">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" '
        f'y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h - h
        parts.append(
            f'<a href="{escape(bar.href)}" aria-label="{escape(bar.spoken)}">'
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{max(h, 0.5):.1f}"><title>{escape(bar.spoken)}</title></rect></a>'
        )
        if i % every == 0:
            parts.append(
                f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle" aria-hidden="true">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    # Every piece of text above went through escape(); numbers are formatted here.
    return Markup("".join(parts))  # noqa: S704
