"""The demo's HTML report page, built from a :class:`ReportContent` record.

The page has, in order: the title and the error level (with any extra linked
pages, e.g. an interactive viewer written beside the report), the test-pair
table, the findings, the pseudo-label table with the kept-labels figure, the
PCK-against-error-level figure (or a note that it is missing), the stage-1
scores, the dataset preview and the figures. Tables arrive as markdown
(``| a | b |`` lines, as the demo prints them) and become HTML tables here;
every text is HTML-escaped here, so callers pass plain text.

No drawing happens here (the PNGs are :mod:`geocorr.report.pair_figure`,
:mod:`geocorr.report.label_figure`, :mod:`geocorr.report.refine_figure`); the
page only names them by their path relative to the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from geocorr.atomic import write_text_atomic

__all__ = ["Figure", "Link", "ReportContent", "html_table", "render_report", "write_report"]


@dataclass(frozen=True)
class Figure:
    """One image on the page.

    Attributes:
        src: the PNG's path relative to the page (e.g. ``figures/pair_0.png``).
        caption: plain text under it.
    """

    src: str
    caption: str


@dataclass(frozen=True)
class Link:
    """A page written beside the report and linked from its top.

    Attributes:
        href: its path relative to the report (e.g. ``viewer.html``).
        text: the link text.
    """

    href: str
    text: str


@dataclass(frozen=True)
class ReportContent:
    """Everything the report page shows.

    Attributes:
        level: the simulated error level, e.g. ``realistic x1``.
        table: the test-pair table (markdown).
        findings: one plain sentence each.
        label_table: the pseudo-label table (markdown).
        stage1: stage-1 scores against the truth, name -> value (floats
            are shown with three decimals).
        label_figure: the kept labels of one pair per filter, or ``None``.
        sweep_figure: PCK against error level, or ``None``.
        sweep_note: shown under the sweep heading instead of ``sweep_figure``
            (e.g. the figure file is missing), or ``None``.
        dataset_preview: the benchmark's preview image, relative to the page.
        figures: pair and refinement figures, in order.
        links: extra pages linked under the title (none by default).
    """

    level: str
    table: str
    findings: tuple[str, ...]
    label_table: str
    stage1: Mapping[str, float | int]
    label_figure: Figure | None = None
    sweep_figure: Figure | None = None
    sweep_note: str | None = None
    dataset_preview: str = "data/preview.png"
    figures: tuple[Figure, ...] = ()
    links: tuple[Link, ...] = ()


def html_table(table: str) -> str:
    """A markdown table (header, rule, rows) as an HTML table.

    Raises:
        ValueError: fewer than two lines (no header and rule).
    """
    lines = table.splitlines()
    if len(lines) < 2:
        raise ValueError(f"html_table: expected a header and a rule line, got {table!r}")

    def cells(line: str, tag: str) -> str:
        return "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>"
                       for c in line.strip().strip("|").split("|"))

    body = "".join(f"<tr>{cells(line, 'td')}</tr>" for line in lines[2:])
    return f"<table border='1' cellpadding='4'><tr>{cells(lines[0], 'th')}</tr>{body}</table>"


def _figure(f: Figure) -> str:
    return (f"<figure><img src='{html.escape(f.src)}' style='max-width:100%'><figcaption>"
            f"{html.escape(f.caption)}</figcaption></figure>")


def _value(v: float | int) -> str:
    return f"{v:.3f}" if isinstance(v, float) else f"{v}"


def render_report(content: ReportContent) -> str:
    """The page as one HTML string (module doc)."""
    c = content
    links = ""
    if c.links:
        links = "<p>" + " · ".join(f"<a href='{html.escape(x.href)}'>{html.escape(x.text)}</a>"
                                   for x in c.links) + "</p>"
    label = _figure(c.label_figure) if c.label_figure is not None else ""
    sweep = ""
    if c.sweep_figure is not None or c.sweep_note is not None:
        sweep = "<h2>PCK against error level</h2>" + (
            _figure(c.sweep_figure) if c.sweep_figure is not None
            else f"<p>{html.escape(c.sweep_note or '')}</p>")
    stage1 = "".join(f"<tr><td>{html.escape(k)}</td><td>{_value(v)}</td></tr>"
                     for k, v in c.stage1.items())
    findings = "".join(f"<li>{html.escape(x)}</li>" for x in c.findings)
    figures = "".join(_figure(f) for f in c.figures)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>geocorr demo</title></head>"
            f"<body style='font-family:sans-serif;max-width:1200px;margin:auto'>"
            f"<h1>geocorr demo</h1><p>Simulated SAM3D / SAM3 error level: "
            f"<b>{html.escape(c.level)}</b> (docs/synth.md)</p>{links}"
            f"<h2>Test pairs (PCK in %)</h2>{html_table(c.table)}"
            f"<h2>What this shows (and does not)</h2><ul>{findings}</ul>"
            f"<h2>Pseudo-labels on the trn pairs (%, scored against the ground truth)</h2>"
            f"<p>Precision = correct kept / kept; recall = correct kept / correct candidates. "
            f"All filters see the same candidates.</p>{html_table(c.label_table)}{label}"
            f"{sweep}"
            f"<h2>Stage 1 (scored against the ground truth)</h2><p>Angles in degrees, "
            f"medians over images; rotation modulo 90°·k yaw; canonical frame without the "
            f"modulo.</p><table border='1' cellpadding='4'>{stage1}</table>"
            f"<h2>Dataset</h2><img src='{html.escape(c.dataset_preview)}' style='max-width:100%'>"
            f"<h2>Figures</h2>{figures}</body></html>")


def write_report(path: str | Path, content: ReportContent) -> Path:
    """Write :func:`render_report` to ``path`` atomically; returns the path."""
    path = Path(path)
    write_text_atomic(path, render_report(content))
    return path
