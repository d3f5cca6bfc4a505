"""A scan's report folder: report.json, a thumbnail per person, a timeline picture with one
row per person and bars where they are on screen, and an index.html tying them together."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import cv2
import numpy as np

from edged.scan import ScanResult

ROW = 56
LABEL = 220
WIDTH = 1200
KNOWN = (80, 170, 40)
STRANGER = (40, 140, 240)


def _nice_step(seconds: float) -> float:
    """A tick spacing giving 5-12 ticks: 1, 2, 5 x 10^k seconds."""
    raw = max(seconds / 10, 1e-3)
    base = 10 ** math.floor(math.log10(raw))
    return next(base * m for m in (1, 2, 5, 10) if base * m >= raw)


def timeline(result: ScanResult) -> np.ndarray:
    rows = max(len(result.people), 1)
    height = 40 + rows * ROW + 30
    canvas = np.full((height, WIDTH, 3), 255, np.uint8)
    duration = max(result.duration, 1e-3)
    plot = WIDTH - LABEL - 20

    def x_of(t: float) -> int:
        return LABEL + int(round(t / duration * plot))

    step = _nice_step(duration)
    t = 0.0
    while t <= duration + 1e-9:
        x = x_of(t)
        cv2.line(canvas, (x, 30), (x, height - 28), (225, 225, 225), 1)
        cv2.putText(canvas, f"{t:g}s", (x - 10, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1,
                    cv2.LINE_AA)
        t += step
    cv2.putText(canvas, Path(result.video).name, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for row, person in enumerate(result.people):
        top = 40 + row * ROW
        if person.thumbnail is not None and person.thumbnail.size:
            thumb = cv2.resize(person.thumbnail, (ROW - 8, ROW - 8), interpolation=cv2.INTER_AREA)
            canvas[top + 4:top + ROW - 4, 8:8 + ROW - 8] = thumb
        color = STRANGER if person.anonymous else KNOWN
        cv2.putText(canvas, person.name[:18], (ROW + 10, top + ROW // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (0, 0, 0), 1, cv2.LINE_AA)
        for interval in person.intervals:
            x1, x2 = x_of(interval.start), max(x_of(interval.end), x_of(interval.start) + 3)
            cv2.rectangle(canvas, (x1, top + 12), (x2, top + ROW - 12), color, -1)
    return canvas


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_report(result: ScanResult, folder: Path) -> dict[str, str]:
    """Writes the report; returns each person's thumbnail path, relative to the folder."""
    (folder / "thumbnails").mkdir(parents=True, exist_ok=True)
    thumbnails = {}
    for person in result.people:
        if person.thumbnail is not None and person.thumbnail.size:
            relative = f"thumbnails/{_safe(person.name)}.jpg"
            cv2.imwrite(str(folder / relative), person.thumbnail)
            thumbnails[person.name] = relative
    cv2.imwrite(str(folder / "timeline.png"), timeline(result))
    document = result.to_json(thumbnails)
    (folder / "report.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (folder / "index.html").write_text(_page(result, thumbnails), encoding="utf-8")
    return thumbnails


def _bars(result: ScanResult) -> str:
    """The timeline as HTML: one row per person, bars placed in percent of the video, so that
    it fits a phone as well as a desktop (the PNG, 1200 px wide, shrinks to unreadable)."""
    duration = max(result.duration, 1e-3)
    rows = []
    for p in result.people:
        kind = "stranger" if p.anonymous else "known"
        bars = "".join(f'<span class="bar {kind}" style="left:{100 * i.start / duration:.2f}%;'
                       f'width:max(3px,{100 * (i.end - i.start) / duration:.2f}%)" '
                       f'title="{i.start:.2f}-{i.end:.2f} s"></span>' for i in p.intervals)
        rows.append(f'<div class="row"><span class="who">{html.escape(p.name)}</span>'
                    f'<span class="lane">{bars}</span></div>')
    return (f'<div class="timeline" role="img" aria-label="timeline: one row per person">{"".join(rows)}'
            f'<div class="row"><span class="who"></span><span class="lane axis"><span>0 s</span>'
            f'<span>{result.duration:.1f} s</span></span></div></div>')


def _page(result: ScanResult, thumbnails: dict[str, str]) -> str:
    rows = []
    for p in result.people:
        img = f'<img class="thumb" src="{html.escape(thumbnails[p.name])}" alt="">' if p.name in thumbnails else ""
        spans = "<br>".join(f"{i.start:.2f} s - {i.end:.2f} s (frames {i.first_frame}-{i.last_frame})"
                            for i in p.intervals)
        kept = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in p.vector_spans)
        kind = "stranger" if p.anonymous else f"enrolled, similarity {p.similarity:.2f}"
        rows.append(f"<tr><td>{img}</td><td><b>{html.escape(p.name)}</b><br><small>{kind}</small></td>"
                    f"<td data-label=\"first seen\">{p.first_seen:.2f} s</td>"
                    f"<td data-label=\"last seen\">{p.last_seen:.2f} s</td>"
                    f"<td data-label=\"on screen\">{spans}"
                    + (f"<br><small>faces kept from: {kept}</small>" if kept else "")
                    + f"</td><td data-label=\"tracks\">{len(p.tracks)}</td></tr>")
    speed = result.duration / result.processing_seconds if result.processing_seconds else 0.0
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edged scan: {html.escape(Path(result.video).name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ overflow-wrap: anywhere; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 6px 12px; border-bottom: 1px solid #ddd; text-align: left; }}
img.thumb {{ width: 64px; height: 64px; object-fit: cover; border-radius: 4px; }}
.timeline {{ margin: 1em 0; max-width: 1200px; }}
.row {{ display: flex; align-items: center; gap: 8px; min-height: 28px; }}
.who {{ flex: 0 0 9em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-size: 15px; }}
.lane {{ position: relative; flex: 1; height: 20px; background: #f2f2f2; border-radius: 3px; }}
.lane.axis {{ background: none; display: flex; justify-content: space-between; font-size: 13px; color: #666; }}
.bar {{ position: absolute; top: 0; bottom: 0; border-radius: 3px; }}
.bar.known {{ background: #28aa50; }} .bar.stranger {{ background: #f08c28; }}
@media (max-width: 640px) {{
  body {{ margin: 1em; }}
  .who {{ flex-basis: 6.5em; }}
  table, tbody, tr, td {{ display: block; }} th {{ display: none; }}
  tr {{ border-bottom: 1px solid #ddd; padding: 8px 0; }} td {{ border: none; padding: 2px 0; }}
  td[data-label]::before {{ content: attr(data-label) ": "; color: #666; }}
}}
</style></head><body>
<h1>Who is in {html.escape(Path(result.video).name)}</h1>
<p>{len(result.people)} people in {result.duration:.1f} s of video ({result.frames} frames),
scanned in {result.processing_seconds:.1f} s ({speed:.1f}x real time) with embedder
<code>{html.escape(result.embedder)}</code>.</p>
{_bars(result)}
<table><tr><th></th><th>person</th><th>first seen</th><th>last seen</th><th>on screen</th><th>tracks</th></tr>
{"".join(rows)}
</table>
<p><a href="report.json">report.json</a> · <a href="timeline.png">timeline picture</a></p>
</body></html>
"""
