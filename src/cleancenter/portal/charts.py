"""Charts as inline SVG, drawn on the server: no script, no style attribute, no CDN.

Pure functions: data in, markup out. Every label goes through `markupsafe.escape` after
its control characters are made visible (`cleancenter.textsafe.printable`): family names
come from samples, that is from attackers. Colours and fonts come from classes in
``portal.css`` (the CSP forbids inline styles). Each chart carries an accessible
``<title>``/``<desc>``, axis labels, and the same numbers as a table in ``<details>``
for screen readers and text browsers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from cleancenter.textsafe import printable

WIDTH = 640
MAX_LABEL = 24


@dataclass(frozen=True)
class Texts:
    """What a chart says, in the page's language."""

    title: str
    desc: str
    x_label: str
    y_label: str
    table_summary: str  # the <details> summary, e.g. "the numbers as a table"
    label_header: str
    value_header: str
    empty: str = ""  # shown inside the chart when there is nothing to draw


def _e(text: object) -> str:
    return str(escape(printable(str(text))))


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (min 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover


def _ticks(top: int) -> list[int]:
    if top <= 4:
        return list(range(top + 1))
    if top % 4 == 0:
        return [top * i // 4 for i in range(5)]
    return [0, top // 2, top] if top % 2 == 0 else [0, top]


def _table(ident: str, texts: Texts, rows: Sequence[tuple[str, int]]) -> str:
    body = "".join(f"<tr><th scope=\"row\">{_e(label)}</th><td>{value:,}</td></tr>"
                   for label, value in rows)
    return (f"<details class=\"chart-data\" id=\"{ident}-data\"><summary>"
            f"{_e(texts.table_summary)}</summary><table class=\"figures\"><thead><tr>"
            f"<th scope=\"col\">{_e(texts.label_header)}</th>"
            f"<th scope=\"col\">{_e(texts.value_header)}</th></tr></thead>"
            f"<tbody>{body}</tbody></table></details>")


def _frame(ident: str, texts: Texts, height: int, inner: str, rows: Sequence[tuple[str, int]]
           ) -> Markup:
    if texts.empty and not any(value for _, value in rows):
        inner += (f"<text class=\"empty\" x=\"{WIDTH / 2:.0f}\" y=\"{height / 2:.0f}\" "
                  f"text-anchor=\"middle\">{_e(texts.empty)}</text>")
    svg = (f"<svg class=\"chart\" id=\"{ident}\" viewBox=\"0 0 {WIDTH} {height}\" "
           f"role=\"img\" aria-labelledby=\"{ident}-title {ident}-desc\" "
           f"xmlns=\"http://www.w3.org/2000/svg\">"
           f"<title id=\"{ident}-title\">{_e(texts.title)}</title>"
           f"<desc id=\"{ident}-desc\">{_e(texts.desc)}</desc>{inner}</svg>")
    return Markup(f"<figure class=\"chart\"><figcaption>{_e(texts.title)}</figcaption>"
                  f"{svg}{_table(ident, texts, rows)}</figure>")


def bar_chart(ident: str, texts: Texts, items: Sequence[tuple[str, int]]) -> Markup:
    """Horizontal bars, one per item (families, funnel steps): label left, value right."""
    left, right, top_pad, row, bottom = 200, 70, 26, 26, 44
    plot = WIDTH - left - right
    height = top_pad + row * max(len(items), 1) + bottom
    top = nice_max(max((v for _, v in items), default=0))
    parts: list[str] = []
    axis_y = top_pad + row * max(len(items), 1)
    for tick in _ticks(top):
        x = left + plot * tick / top
        parts.append(f"<line class=\"grid\" x1=\"{x:.1f}\" y1=\"{top_pad}\" x2=\"{x:.1f}\" "
                     f"y2=\"{axis_y}\"/><text class=\"tick\" x=\"{x:.1f}\" y=\"{axis_y + 16}\" "
                     f"text-anchor=\"middle\">{tick:,}</text>")
    for i, (label, value) in enumerate(items):
        y = top_pad + i * row
        width = plot * value / top
        parts.append(
            f"<g class=\"bar-row\"><text class=\"label\" x=\"{left - 8}\" "
            f"y=\"{y + row / 2 + 4:.1f}\" text-anchor=\"end\">{_e(_short(label))}</text>"
            f"<rect class=\"bar\" x=\"{left}\" y=\"{y + 4}\" width=\"{width:.1f}\" "
            f"height=\"{row - 8}\"><title>{_e(label)}: {value:,}</title></rect>"
            f"<text class=\"value\" x=\"{left + width + 6:.1f}\" y=\"{y + row / 2 + 4:.1f}\">"
            f"{value:,}</text></g>")
    parts.append(f"<line class=\"axis\" x1=\"{left}\" y1=\"{top_pad}\" x2=\"{left}\" "
                 f"y2=\"{axis_y}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{axis_y}\" "
                 f"x2=\"{left + plot}\" y2=\"{axis_y}\"/>")
    parts.append(f"<text class=\"axis-label\" x=\"{left + plot / 2:.1f}\" y=\"{height - 6}\" "
                 f"text-anchor=\"middle\">{_e(texts.x_label)}</text>")
    parts.append(f"<text class=\"axis-label\" x=\"{left - 8}\" y=\"16\" "
                 f"text-anchor=\"end\">{_e(texts.y_label)}</text>")
    return _frame(ident, texts, height, "".join(parts), items)


def day_chart(ident: str, texts: Texts, days: Sequence[tuple[date, int]]) -> Markup:
    """One column per day; the date under every fifth column and the last one."""
    left, right, top_pad, bottom, plot_h = 56, 12, 12, 56, 180
    plot = WIDTH - left - right
    height = top_pad + plot_h + bottom
    axis_y = top_pad + plot_h
    top = nice_max(max((v for _, v in days), default=0))
    step = plot / max(len(days), 1)
    parts: list[str] = []
    for tick in _ticks(top):
        y = axis_y - plot_h * tick / top
        parts.append(f"<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1f}\" x2=\"{left + plot}\" "
                     f"y2=\"{y:.1f}\"/><text class=\"tick\" x=\"{left - 6}\" y=\"{y + 4:.1f}\" "
                     f"text-anchor=\"end\">{tick:,}</text>")
    for i, (day, value) in enumerate(days):
        x = left + i * step
        h = plot_h * value / top
        parts.append(f"<rect class=\"bar\" x=\"{x + 1:.1f}\" y=\"{axis_y - h:.1f}\" "
                     f"width=\"{max(step - 2, 1):.1f}\" height=\"{h:.1f}\"><title>"
                     f"{day.isoformat()}: {value:,}</title></rect>")
        if i % 5 == 0 or i == len(days) - 1:
            parts.append(f"<text class=\"tick\" x=\"{x + step / 2:.1f}\" y=\"{axis_y + 16}\" "
                         f"text-anchor=\"middle\">{day.strftime('%m-%d')}</text>")
    parts.append(f"<line class=\"axis\" x1=\"{left}\" y1=\"{top_pad}\" x2=\"{left}\" "
                 f"y2=\"{axis_y}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{axis_y}\" "
                 f"x2=\"{left + plot}\" y2=\"{axis_y}\"/>")
    parts.append(f"<text class=\"axis-label\" x=\"{left + plot / 2:.1f}\" y=\"{height - 8}\" "
                 f"text-anchor=\"middle\">{_e(texts.x_label)}</text>")
    parts.append(f"<text class=\"axis-label\" x=\"14\" y=\"{top_pad + plot_h / 2:.1f}\" "
                 f"text-anchor=\"middle\" transform=\"rotate(-90 14 {top_pad + plot_h / 2:.1f})\">"
                 f"{_e(texts.y_label)}</text>")
    rows = [(day.isoformat(), value) for day, value in days]
    return _frame(ident, texts, height, "".join(parts), rows)
