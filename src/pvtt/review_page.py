"""The review page: one static HTML file, no server, no external resources.

Per pair it shows source | edited | mask overlay videos side by side with the scores, the verdict and
its reasons; pairs can be sorted by any score and filtered by difficulty, verdict and mode. Run
statistics sit on top. Media paths are relative to the page, so the dataset folder can be moved or
served by any static file server.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .5em; }
#stats { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
table.stats { border-collapse: collapse; margin: .5em 0 1em; }
table.stats td, table.stats th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
table.stats th { background: #eee; }
.controls { position: sticky; top: 0; background: #fafafa; padding: .5em 0; border-bottom: 1px solid #ddd; z-index: 1; }
.controls label { margin-right: 1em; }
.pair { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: 1em 0; padding: .7em; }
.pair.reject { border-left: 6px solid #c33; }
.pair.keep { border-left: 6px solid #3a3; }
.media { display: flex; gap: .5em; flex-wrap: wrap; align-items: flex-start; }
.media figure { margin: 0; }
.media figcaption { font-size: 12px; color: #666; }
.media video, .media img { max-height: 260px; max-width: 100%; background: #000; display: block; }
.scores { font-family: ui-monospace, monospace; font-size: 12px; margin-top: .4em; }
.reasons { color: #a22; font-size: 12px; }
.instruction { font-style: italic; margin: .3em 0; }
#count { color: #666; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<div id="stats">__STATS__</div>
<div class="controls">
  <label>sort by <select id="sort"></select></label>
  <label><input type="checkbox" id="desc" checked> descending</label>
  <label>difficulty <select id="difficulty"><option value="">all</option></select></label>
  <label>verdict <select id="verdict"><option value="">all</option></select></label>
  <label>mode <select id="mode"><option value="">all</option></select></label>
  <span id="count"></span>
</div>
<div id="pairs"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const rows = JSON.parse(document.getElementById("data").textContent);
const scoreKeys = [...new Set(rows.flatMap(r => Object.keys(r.scores || {})))].sort();
function fill(id, values) {
  const select = document.getElementById(id);
  for (const v of values) { const o = document.createElement("option"); o.value = o.textContent = v; select.appendChild(o); }
}
fill("sort", ["pair_id", ...scoreKeys]);
fill("difficulty", [...new Set(rows.map(r => r.difficulty).filter(Boolean))].sort());
fill("verdict", [...new Set(rows.map(r => r.verdict).filter(Boolean))].sort());
fill("mode", [...new Set(rows.map(r => r.mode).filter(Boolean))].sort());
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function media(label, src, kind) {
  const fig = el("figure");
  if (!src) return fig;
  const m = kind === "image" ? el("img", {src: src, alt: label, loading: "lazy"})
                             : el("video", {src: src, muted: "", loop: "", controls: "", preload: "metadata", playsinline: ""});
  if (kind !== "image") m.muted = true;
  fig.appendChild(m);
  fig.appendChild(el("figcaption", {}, label));
  return fig;
}
function render() {
  const key = document.getElementById("sort").value;
  const desc = document.getElementById("desc").checked;
  const want = id => document.getElementById(id).value;
  const shown = rows.filter(r => (!want("difficulty") || r.difficulty === want("difficulty"))
    && (!want("verdict") || r.verdict === want("verdict")) && (!want("mode") || r.mode === want("mode")));
  const value = r => key === "pair_id" ? r.pair_id : (r.scores || {})[key];
  shown.sort((a, b) => {
    const x = value(a), y = value(b);
    if (x === undefined || x === null) return 1;
    if (y === undefined || y === null) return -1;
    const c = x < y ? -1 : x > y ? 1 : 0;
    return desc ? -c : c;
  });
  const box = document.getElementById("pairs");
  box.replaceChildren();
  for (const r of shown) {
    const card = el("div", {class: "pair " + (r.verdict || ""), id: "pair-" + r.pair_id});
    card.appendChild(el("b", {}, r.pair_id));
    card.appendChild(el("span", {}, `  ${r.verdict || ""} · ${r.difficulty || ""} · ${r.mode || ""} · ${r.strategy || ""}`));
    if (r.instruction) card.appendChild(el("div", {class: "instruction"}, r.instruction));
    const m = el("div", {class: "media"});
    const f = r.files || {};
    m.appendChild(media("source", f.source_video, "video"));
    m.appendChild(media("edited", f.edited_video, "video"));
    m.appendChild(media("mask overlay", f.overlay_video, "video"));
    m.appendChild(media("target product", f.target_image, "image"));
    card.appendChild(m);
    const s = Object.entries(r.scores || {}).map(([k, v]) => `${k}=${typeof v === "number" ? v.toFixed(3) : v}`);
    card.appendChild(el("div", {class: "scores"}, s.join("  ")));
    if ((r.reasons || []).length) card.appendChild(el("div", {class: "reasons"}, r.reasons.join("; ")));
    box.appendChild(card);
  }
  document.getElementById("count").textContent = `${shown.length} of ${rows.length} pairs`;
}
for (const id of ["sort", "desc", "difficulty", "verdict", "mode"]) document.getElementById(id).addEventListener("change", render);
render();
</script>
</body>
</html>
"""


def _stats_html(stats: dict[str, Any]) -> str:
    """Nested ``{table: {row: {column: value}}}`` or ``{name: value}`` statistics as small tables."""
    parts = []
    flat = {k: v for k, v in stats.items() if not isinstance(v, dict)}
    if flat:
        cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in flat.items())
        parts.append(f'<table class="stats">{cells}</table>')
    for name, table in stats.items():
        if not isinstance(table, dict):
            continue
        columns = sorted({c for row in table.values() if isinstance(row, dict) for c in row})
        if not columns:
            cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                            for k, v in table.items())
            parts.append(f'<table class="stats"><caption>{html.escape(name)}</caption>{cells}</table>')
            continue
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            f"<tr><th>{html.escape(str(k))}</th>"
            + "".join(f"<td>{html.escape(str(row.get(c, 0)))}</td>" for c in columns) + "</tr>"
            for k, row in table.items())
        parts.append(f'<table class="stats"><caption>{html.escape(name)}</caption><tr><th></th>{head}</tr>{body}</table>')
    return "\n".join(parts)


def write_review_page(path: str | Path, rows: list[dict[str, Any]], stats: dict[str, Any],
                      title: str = "pvtt review") -> Path:
    """Write the page to ``path``; ``rows`` are pair records whose ``files`` are relative to the page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(rows, default=str).replace("</", "<\\/")  # keep "</script>" out of the JSON
    page = (_PAGE.replace("__TITLE__", html.escape(title)).replace("__STATS__", _stats_html(stats))
            .replace("__DATA__", data))
    path.write_text(page, encoding="utf-8")
    return path
