// Training curves as small SVG line charts, one per scalar (losses, lr, grad norm,
// step time), so keys with different scales each get their own y axis.

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 150;
const PAD = { left: 46, right: 8, top: 10, bottom: 22 };

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function label(value) {
  const a = Math.abs(value);
  return a !== 0 && (a >= 1e4 || a < 1e-2) ? value.toExponential(1) : String(Number(value.toPrecision(3)));
}

export function keysOf(points) {
  const keys = new Set();
  for (const p of points) for (const k of Object.keys(p)) if (k !== "step") keys.add(k);
  return [...keys].sort((a, b) => order(a) - order(b) || a.localeCompare(b));
}

function order(key) {
  if (key.startsWith("loss")) return 0;
  if (key.startsWith("grad_norm")) return 2;
  if (key.startsWith("lr")) return 3;
  return key === "step_time_s" ? 4 : 1;
}

export function lineChart(points, key) {
  const data = points.filter((p) => Number.isFinite(p[key])).map((p) => [p.step, p[key]])
    .sort((a, b) => a[0] - b[0]); // a line through points out of step order is a scribble
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.key = key;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${key} by step` });
  if (data.length) {
    const xs = data.map((d) => d[0]);
    const ys = data.map((d) => d[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const sx = (x) => PAD.left + ((x - x0) / (x1 - x0 || 1)) * (W - PAD.left - PAD.right);
    const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
    root.append(svg("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, stroke: "#999" }));
    root.append(svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, stroke: "#999" }));
    const text = (x, y, s, anchor) => {
      const t = svg("text", { x, y, "font-size": 10, fill: "#555", "text-anchor": anchor });
      t.textContent = s;
      root.append(t);
    };
    text(PAD.left - 4, PAD.top + 8, label(y1), "end");
    text(PAD.left - 4, H - PAD.bottom, label(y0), "end");
    text(PAD.left, H - 6, label(x0), "start");
    text(W - PAD.right, H - 6, `step ${label(x1)}`, "end");
    const d = data.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    root.append(svg("path", { d, fill: "none", stroke: "#1a5fb4", "stroke-width": 1.5 }));
  }
  figure.append(root);
  const caption = document.createElement("figcaption");
  const last = data.length ? data[data.length - 1][1] : null;
  caption.textContent = last === null ? `${key}: no points yet` : `${key} (last ${label(last)})`;
  figure.append(caption);
  return figure;
}
