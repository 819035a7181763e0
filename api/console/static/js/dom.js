// Small DOM helpers. Text always goes in as text (never innerHTML), so nothing a job,
// a model name or an error message holds can inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function table(headers, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => (
        c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))))))));
}

export function announce(text) {
  const status = document.getElementById("status");
  status.textContent = "";
  setTimeout(() => { status.textContent = text; }, 30);
}

export function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

export function shortId(id) { return String(id).slice(0, 8); }

export function when(value) {
  if (!value) return "-";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function seconds(s) {
  if (s === null || s === undefined) return "-";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function number(v) {
  if (typeof v !== "number") return String(v);
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3)
    : String(Number(v.toPrecision(4)));
}

export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

export function progressBar(job, label) {
  const fraction = job.status === "succeeded" ? 1 : (job.progress?.fraction ?? 0);
  const pct = Math.round(fraction * 100);
  return h("progress", {
    max: "100", value: String(pct), "aria-label": label || `progress of job ${shortId(job.id)}`,
    "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100",
  }, `${pct}%`);
}

export function errorBox(error) {
  return h("p", { class: "error-box", role: "alert" }, String(error.message || error));
}
