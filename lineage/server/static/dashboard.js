// The dashboard's one script (lineage/server/templates/base.html loads it under the page's nonce).
"use strict";

// times in the reader's time zone; the UTC text stays as the tooltip
for (const t of document.querySelectorAll("time[datetime]")) {
  const d = new Date(t.getAttribute("datetime"));
  if (isNaN(d)) continue;
  const two = (n) => String(n).padStart(2, "0");
  t.title = t.textContent;
  t.textContent = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

// Graphs: the SVG Graphviz drew, in a panel that opens fitted to it and centred on the node
// the page is about (never below a readable scale: a big graph opens on its node, and the
// rest is a drag away). Drag pans, the wheel and the buttons zoom, "fit" shows it all again.
// Nodes are Graphviz links (URL attributes): a click opens one, a drag never does.
const MIN_OPEN_SCALE = 0.6; // screen pixels per SVG unit below which labels are unreadable
const MAX_OPEN_SCALE = 1.5; // a small graph is not blown up past this
const MIN_PANEL_HEIGHT = 180; // room to zoom into a one-row picture

function graphPanel(figure) {
  const panel = figure.querySelector(".panel");
  const svg = panel && panel.querySelector("svg");
  if (!svg) return;
  const base = svg.viewBox.baseVal;
  const full = { x: base.x, y: base.y, w: base.width, h: base.height };
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  let view = { ...full };

  const show = () => {
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    figure.dataset.scale = scale().toFixed(3);
  };
  // screen pixels per SVG unit for the current view ("meet": the tighter of the two)
  const scale = () => Math.min(panel.clientWidth / view.w, panel.clientHeight / view.h);
  // the panel's aspect ratio, so a view fills it exactly
  const fill = (cx, cy, s) => {
    const w = panel.clientWidth / s, h = panel.clientHeight / s;
    view = { x: cx - w / 2, y: cy - h / 2, w, h };
  };
  const bbox = (node) => {
    // a node's box in the SVG's own units, whatever transform Graphviz put around it
    const box = node.getBBox();
    const m = svg.getScreenCTM().inverse().multiply(node.getScreenCTM());
    const p = (x, y) => new DOMPoint(x, y).matrixTransform(m);
    const a = p(box.x, box.y), b = p(box.x + box.width, box.y + box.height);
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(b.x - a.x), h: Math.abs(b.y - a.y) };
  };
  const root = [...svg.querySelectorAll("g.node")].find(
    (g) => g.querySelector("title")?.textContent === figure.dataset.root);
  root?.classList.add("root");

  const fit = () => {
    const s = Math.min(panel.clientWidth / full.w, panel.clientHeight / full.h, MAX_OPEN_SCALE);
    fill(full.x + full.w / 2, full.y + full.h / 2, s);
    show();
  };
  const clamp = (c, start, length, span) => {
    // a centre that keeps [start, start + length] in a view of width span, nearest to c
    const lo = Math.min(start + span / 2, start + length - span / 2);
    const hi = Math.max(start + span / 2, start + length - span / 2);
    return Math.min(Math.max(c, lo), hi);
  };
  const open = () => {
    // all of it when it is readable so, as near the centre as the version can be brought;
    // else the version at a readable scale, in the middle
    const s = Math.min(panel.clientWidth / full.w, panel.clientHeight / full.h, MAX_OPEN_SCALE);
    if (!root) return fit();
    const r = bbox(root);
    // too big to read whole: open on the version at a readable scale, the panel full of graph
    const at = s >= MIN_OPEN_SCALE ? s : MIN_OPEN_SCALE * 1.5;
    const w = panel.clientWidth / at, h = panel.clientHeight / at;
    fill(clamp(r.x + r.w / 2, full.x, full.w, w), clamp(r.y + r.h / 2, full.y, full.h, h), at);
    show();
  };
  const zoom = (factor, px, py) => {
    // keep the point under (px, py) (panel pixels) where it is
    const rect = panel.getBoundingClientRect();
    px = px ?? rect.width / 2;
    py = py ?? rect.height / 2;
    const s = scale();
    const ux = view.x + (px - (rect.width - view.w * s) / 2) / s;
    const uy = view.y + (py - (rect.height - view.h * s) / 2) / s;
    const next = Math.min(8, Math.max(0.02, s * factor));
    view = {
      w: panel.clientWidth / next, h: panel.clientHeight / next,
      x: ux - px / next, y: uy - py / next,
    };
    show();
  };

  panel.addEventListener("wheel", (event) => {
    event.preventDefault();
    const rect = panel.getBoundingClientRect();
    zoom(Math.exp(-event.deltaY * 0.0015), event.clientX - rect.left, event.clientY - rect.top);
  }, { passive: false });

  let drag = null;
  panel.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    drag = { x: event.clientX, y: event.clientY, view: { ...view }, moved: false, id: event.pointerId };
  });
  panel.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) {
      drag.moved = true;
      panel.setPointerCapture(drag.id); // only now: a plain click still reaches the link
      panel.classList.add("dragging");
    }
    const s = scale();
    view = { ...drag.view, x: drag.view.x - dx / s, y: drag.view.y - dy / s };
    show();
  });
  const end = () => {
    if (drag?.moved) {
      panel.classList.remove("dragging");
      figure.dataset.dragged = "1"; // the click that ends a drag opens nothing
      setTimeout(() => delete figure.dataset.dragged, 0);
    }
    drag = null;
  };
  panel.addEventListener("pointerup", end);
  panel.addEventListener("pointercancel", end);
  panel.addEventListener("click", (event) => {
    if (figure.dataset.dragged) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  for (const button of figure.querySelectorAll("button[data-act]")) {
    button.addEventListener("click", () => {
      const act = button.dataset.act;
      if (act === "in") zoom(1.4);
      else if (act === "out") zoom(1 / 1.4);
      else if (act === "fit") fit();
      else if (act === "node") open();
    });
  }
  // A wide, short picture (a diff, a shallow lineage) gets a panel no taller than the picture
  // at the width's scale: the stylesheet's height is the most a panel takes, not the least.
  const size = () => {
    panel.style.height = "";
    panel.style.minHeight = "";
    const tallest = panel.clientHeight;
    const s = Math.min(panel.clientWidth / full.w, MAX_OPEN_SCALE);
    const needed = Math.ceil(full.h * s) + 2;
    if (needed < tallest) {
      panel.style.minHeight = "0";
      panel.style.height = `${Math.max(needed, MIN_PANEL_HEIGHT)}px`;
    }
  };
  size();
  addEventListener("resize", size);
  new ResizeObserver(() => open()).observe(panel);
  open();
}

for (const figure of document.querySelectorAll("figure.graph[data-root]")) graphPanel(figure);

// the runs page: "compare" needs two runs or more; picked rows are marked
const picker = document.querySelector("form#pick");
if (picker) {
  const button = picker.querySelector("button.compare");
  const boxes = [...picker.querySelectorAll("input[name=run]")];
  const update = () => {
    const picked = boxes.filter((b) => b.checked);
    for (const box of boxes) box.closest("tr").classList.toggle("picked", box.checked);
    button.disabled = picked.length < 2;
    button.textContent = picked.length >= 2 ? `Compare ${picked.length} runs` : "Compare (pick 2 or more)";
  };
  for (const box of boxes) box.addEventListener("change", update);
  update();
}

// comparing runs: show only the rows that differ, or all
const only = document.querySelector("input#only-diff");
if (only) {
  const table = document.querySelector("table.compare");
  const update = () => table.classList.toggle("only-diff", only.checked);
  only.addEventListener("change", update);
  update();
}

// the runs page's time filters: the server speaks UTC, the reader their own time zone
const filters = document.querySelector("form#filters");
if (filters) {
  const local = (d) => {
    const two = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T` +
      `${two(d.getHours())}:${two(d.getMinutes())}`;
  };
  const inputs = [...filters.querySelectorAll("input[data-utc]")];
  for (const input of inputs) {
    if (input.value) input.value = local(new Date(`${input.value}:00Z`));
  }
  filters.addEventListener("submit", () => {
    for (const input of inputs) {
      if (!input.value) continue;
      const sent = document.createElement("input");
      sent.type = "hidden";
      sent.name = input.name;
      sent.value = new Date(input.value).toISOString().replace(".000Z", "Z");
      input.removeAttribute("name");
      filters.append(sent);
    }
  });
}
