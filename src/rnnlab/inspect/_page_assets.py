"""The fixed parts of the activations page: HTML skeleton, inline CSS and vanilla JavaScript.

Kept apart from :mod:`rnnlab.inspect.activations_page` (which fills in the data) so that
each reads as one thing. The page loads nothing: the Content-Security-Policy forbids
every network request, and the data arrives as JSON in ``<script id="data">``.
The JavaScript writes text only through ``textContent``, never ``innerHTML``.
"""

CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: #f6f8fa; }
header { padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 17px; margin: 0 0 2px; }
.note { color: var(--muted); font-size: 12px; }
.controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-top: 8px; }
.controls label { font-size: 13px; color: var(--muted); }
select, input, button { font: inherit; font-size: 13px; padding: 2px 6px;
  border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--fg); }
input#cell { width: 5.5em; }
button { cursor: pointer; }
button:hover { border-color: var(--accent); }
.legend { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; }
.legend .bar { width: 140px; height: 12px; border: 1px solid var(--line); border-radius: 3px;
  background: linear-gradient(to right, rgb(69,117,180), #fff, rgb(215,48,39)); }
main { display: flex; gap: 16px; padding: 16px 20px; align-items: flex-start; }
main > section { flex: 1; min-width: 0; }
#text { background: #fff; border: 1px solid var(--line);
  border-radius: 8px; padding: 14px 16px; white-space: pre-wrap; word-break: break-word;
  font: 14px/1.9 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
#text.word { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.tok { border-radius: 2px; padding: 1px 0; cursor: default; }
.tok:hover { outline: 1px solid #000; }
.tok.nl, .tok.esc { color: var(--muted); font-size: 11px; }
aside { width: 270px; flex: none; background: #fff; border: 1px solid var(--line);
  border-radius: 8px; padding: 10px 12px; font-size: 13px; }
aside h2 { font-size: 14px; margin: 0 0 4px; }
aside h3 { font-size: 12px; margin: 10px 0 3px; color: var(--muted); font-weight: 600; }
.top { display: block; width: 100%; text-align: left; margin: 2px 0; font-family:
  ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.top.active { border-color: var(--accent); background: #ddf4ff; }
.pager { margin: 0 0 8px; display: flex; gap: 8px; align-items: center; font-size: 13px; }
#tip { position: fixed; display: none; pointer-events: none; z-index: 10; background: #fff;
  border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; min-width: 190px;
  box-shadow: 0 4px 14px rgba(0,0,0,.15); font-size: 12px; }
#tip .head { font-weight: 600; margin-bottom: 4px; }
#tip table { border-collapse: collapse; width: 100%; }
#tip td { padding: 1px 4px; font-family: ui-monospace, Menlo, Consolas, monospace; }
#tip .p { width: 90px; }
#tip .p div { height: 8px; background: var(--accent); border-radius: 2px; }
"""

BODY = """
<header>
  <h1 id="title"></h1>
  <div class="note" id="about"></div>
  <div class="controls">
    <label>state <select id="state"></select></label>
    <label>layer <select id="layer"></select></label>
    <label>cell <button id="prev" title="previous cell">&#9664;</button>
      <input id="cell" type="number" min="0" value="0">
      <button id="next" title="next cell">&#9654;</button></label>
    <span class="legend"><span id="lo"></span><span class="bar"></span><span id="hi"></span></span>
  </div>
</header>
<main>
  <section>
    <div class="pager" id="pager"><button id="pgprev">&#9664; previous</button>
      <span id="pginfo"></span><button id="pgnext">next &#9654;</button></div>
    <div id="text"></div>
  </section>
  <aside><h2>Cells that follow the text</h2>
    <div class="note">|Pearson r| of each cell with a feature of the text, over the tokens
      shown; click one to colour the text by it.</div>
    <div id="tops"></div></aside>
</main>
<div id="tip"></div>
"""

JS = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const raw = atob(D.values);
const Q = new Int8Array(raw.length);
for (let i = 0; i < raw.length; i++) Q[i] = (raw.charCodeAt(i) << 24) >> 24;
const N = D.tokens.length, S = D.states.length, L = D.layers, H = D.cells;
const nl = new Set(D.newlines), esc = new Set(D.escaped);
let cur = {s: 0, l: 0, h: 0}, page = 0;
const pages = Math.max(1, Math.ceil(N / D.page_size));

function offset(c) { return ((c.s * L + c.l) * H + c.h) * N; }
function scale(c) { return D.scale[(c.s * L + c.l) * H + c.h]; }
function colour(v) {
  const a = Math.min(1, Math.abs(v));
  const t = v >= 0 ? [215, 48, 39] : [69, 117, 180];
  const m = t.map((x) => Math.round(255 + (x - 255) * a));
  return "rgb(" + m.join(",") + ")";
}
function text(el, s) { el.textContent = s; return el; }
function make(tag, cls, s) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (s !== undefined) el.textContent = s;
  return el;
}
function render() {
  const box = $("text"), frag = document.createDocumentFragment();
  const a = page * D.page_size, b = Math.min(N, a + D.page_size);
  for (let t = a; t < b; t++) {
    const sp = make("span", "tok" + (nl.has(t) ? " nl" : "") + (esc.has(t) ? " esc" : ""),
      D.tokens[t]);
    sp.id = "t" + t; sp.dataset.t = t;
    frag.appendChild(sp);
    if (nl.has(t)) frag.appendChild(document.createElement("br"));
    else if (D.level === "word" && t + 1 < b) frag.appendChild(document.createTextNode(" "));
  }
  box.replaceChildren(frag);
  text($("pginfo"), "tokens " + a + "\u2013" + (b - 1) + " (page " + (page + 1) + " of " +
    pages + ")");
  $("pgprev").disabled = page === 0; $("pgnext").disabled = page === pages - 1;
  $("pager").style.display = pages > 1 ? "flex" : "none";
  recolour();
}
function recolour() {
  const o = offset(cur);
  for (const sp of $("text").children) {
    if (sp.tagName !== "SPAN") continue;
    const v = Q[o + Number(sp.dataset.t)] / 127;
    sp.dataset.v = v.toFixed(3);
    sp.style.backgroundColor = colour(v);
    sp.style.color = Math.abs(v) > 0.65 ? "#fff" : "";
  }
  const k = scale(cur).toPrecision(3);
  text($("lo"), "\u2212" + k); text($("hi"), "+" + k);
  for (const b of document.querySelectorAll(".top")) {
    const on = b.dataset.s == cur.s && b.dataset.l == cur.l && b.dataset.h == cur.h;
    b.classList.toggle("active", on);
  }
}
function choose(s, l, h) {
  cur = {s: s, l: l, h: Math.max(0, Math.min(H - 1, h))};
  $("state").value = cur.s; $("layer").value = cur.l; $("cell").value = cur.h;
  recolour();
}
function tip(ev) {
  const sp = ev.target.closest(".tok"), box = $("tip");
  if (!sp) { box.style.display = "none"; return; }
  const t = Number(sp.dataset.t), v = Q[offset(cur) + t] / 127 * scale(cur);
  box.replaceChildren(make("div", "head", "\u201c" + D.tokens[t] + "\u201d  #" + t + "  " +
    D.states[cur.s] + "[" + cur.l + "][" + cur.h + "] = " + v.toFixed(3)));
  if (D.pred_ids) {
    const unit = {char: "character", word: "word", byte: "byte"}[D.level];
    box.appendChild(make("div", "note", "predicted next " + unit + ":"));
    const tb = make("table", "preds");
    D.pred_ids[t].forEach((id, j) => {
      const tr = make("tr"), p = D.pred_probs[t][j], bar = make("div");
      bar.style.width = Math.round(100 * p) + "%";
      tr.append(make("td", "", D.pred_vocab[id]), make("td", "", p.toFixed(3)));
      const cell = make("td", "p"); cell.appendChild(bar); tr.appendChild(cell);
      tb.appendChild(tr);
    });
    box.appendChild(tb);
  }
  box.style.display = "block";
  const x = Math.min(ev.clientX + 14, window.innerWidth - box.offsetWidth - 8);
  const y = ev.clientY + 18 + box.offsetHeight > window.innerHeight ?
    ev.clientY - box.offsetHeight - 10 : ev.clientY + 18;
  box.style.left = x + "px"; box.style.top = y + "px";
}
function setup() {
  text($("title"), D.title); text($("about"), D.about);
  D.states.forEach((s, i) => $("state").appendChild(new Option(s, i)));
  for (let l = 0; l < L; l++) $("layer").appendChild(new Option(l, l));
  $("cell").max = H - 1;
  $("state").onchange = () => choose(Number($("state").value), cur.l, cur.h);
  $("layer").onchange = () => choose(cur.s, Number($("layer").value), cur.h);
  $("cell").onchange = () => choose(cur.s, cur.l, Number($("cell").value) || 0);
  $("prev").onclick = () => choose(cur.s, cur.l, cur.h - 1);
  $("next").onclick = () => choose(cur.s, cur.l, cur.h + 1);
  $("pgprev").onclick = () => { page = Math.max(0, page - 1); render(); };
  $("pgnext").onclick = () => { page = Math.min(pages - 1, page + 1); render(); };
  $("text").addEventListener("mouseover", tip);
  $("text").addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
  for (const [f, cells] of Object.entries(D.top_cells)) {
    $("tops").appendChild(make("h3", "", D.feature_names[f] || f));
    if (!cells.length) $("tops").appendChild(make("div", "note", D.feature_notes[f] || ""));
    for (const c of cells) {
      const s = D.states.indexOf(c.state);
      const r = (c.r >= 0 ? "+" : "\u2212") + Math.abs(c.r).toFixed(2);
      const b = make("button", "top", c.state + " layer " + c.layer + " cell " + c.cell +
        "  r " + r);
      b.dataset.s = s; b.dataset.l = c.layer; b.dataset.h = c.cell;
      b.onclick = () => choose(s, c.layer, c.cell);
      $("tops").appendChild(b);
    }
  }
  if (D.level === "word") $("text").classList.add("word");
  const first = Object.values(D.top_cells).find(cells => cells.length);
  if (first) {
    choose(D.states.indexOf(first[0].state), first[0].layer, first[0].cell);
  }
  render();
}
setup();
"""
