// The jobs list (live status and progress) and the job page (progress, ETA, curves,
// log, sample grid, artifacts, the evaluation report).

import { all, json } from "./api.js";
import { keysOf, lineChart } from "./chart.js";
import {
  append, badge, bytes, clear, errorBox, h, heading, number, progressBar, seconds, shortId,
  table, when,
} from "./dom.js";
import { every, isTerminal, watchJob } from "./live.js";
import { auditText } from "./privacy.js";

export function subject(job) {
  const r = job.request || {};
  if (job.kind === "train") return `${r.engine} on ${r.dataset} → ${r.model_name}`;
  if (job.kind === "generate") return `${r.count} images (${r.output_format || "png"}) from ${r.model}`;
  return `${r.model || `job ${shortId(r.source_job || "")}`} vs ${r.reference}`;
}

function progressCell(job) {
  const pct = job.status === "succeeded" ? 100 : Math.round((job.progress?.fraction ?? 0) * 100);
  const eta = job.status === "running" && job.progress?.eta_seconds != null
    ? ` · eta ${seconds(job.progress.eta_seconds)}` : "";
  return [progressBar(job), ` ${pct}%${eta}`];
}

export function renderJobs(view) {
  const rows = new Map();
  const tbody = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const empty = h("p", { hidden: true }, "No jobs yet. ", h("a", { href: "#/submit" }, "Submit one"), ".");
  let cursor = null;
  append(view, [
    heading("Jobs"),
    empty,
    h("div", { class: "table-wrap" }, h("table", { id: "jobs-table" },
      h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
      h("thead", {}, h("tr", {}, ["Job", "Kind", "Status", "Progress", "Created", "What"]
        .map((x, i) => h("th", { scope: "col", class: i === 4 ? "hide-narrow" : null }, x)))),
      tbody)),
    more,
  ]);

  const update = (job, atEnd) => {
    let row = rows.get(job.id);
    if (!row) {
      row = h("tr", { dataset: { jobId: job.id } },
        h("td", { class: "mono" }, h("a", { href: `#/jobs/${job.id}`, title: job.id }, shortId(job.id))),
        h("td", {}, job.kind), h("td"), h("td"),
        h("td", { class: "hide-narrow" }, when(job.created_at)), h("td", {}, subject(job)));
      rows.set(job.id, row);
      if (atEnd) tbody.append(row); else tbody.prepend(row);
    }
    const [, , status, progress] = row.children;
    if (status.textContent !== job.status) append(clear(status), [badge(job.status)]);
    append(clear(progress), progressCell(job));
  };

  const load = async () => {
    const page = await json("/v1/jobs?limit=25");
    for (const job of [...page.items].reverse()) update(job, false);
    if (cursor === null) { cursor = page.next_cursor; more.hidden = !cursor; }
    empty.hidden = rows.size > 0;
    return [...rows.values()].some((r) => !isTerminal(r.children[2].textContent));
  };
  more.addEventListener("click", async () => {
    const page = await json(`/v1/jobs?limit=25&cursor=${encodeURIComponent(cursor)}`);
    for (const job of page.items) update(job, true);
    cursor = page.next_cursor;
    more.hidden = !cursor;
  });
  return every(2000, load);
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function renderJob(view, id) {
  const head = h("div", { class: "job-head" });
  const actions = h("div", { class: "row" });
  const curves = h("div", { class: "panels", id: "curves" });
  const log = h("pre", { class: "log", id: "job-log", tabindex: "0", "aria-label": "job log" });
  const samples = h("div", { id: "samples" }, h("p", {}, "The sample grid appears when the job has finished."));
  const report = h("div", { id: "report" });
  const artifacts = h("div", { id: "artifacts" }, h("p", {}, "Artifacts are listed when the job has finished."));
  const request = h("pre", { class: "log" });
  const curvesSection = h("section", { hidden: true }, h("h2", {}, "Training curves"), curves);
  append(view, [
    heading(`Job ${shortId(id)}`), head, actions, curvesSection,
    h("section", {}, h("h2", {}, "Log"), log),
    h("section", {}, h("h2", {}, "Samples"), samples),
    h("section", {}, report),
    h("section", {}, h("h2", {}, "Artifacts"), artifacts),
    h("section", {}, h("h2", {}, "Request"), request),
  ]);

  const points = [];
  let every_ = null;
  let after = null;
  let last = {};
  const say = (text) => {
    log.append(`${new Date().toLocaleTimeString()}  ${text}\n`);
    log.scrollTop = log.scrollHeight;
  };

  const loadCurves = async (job) => {
    const total = job.progress?.total || job.request?.config?.max_steps || 0;
    if (!total) return;
    every_ ??= Math.max(1, Math.ceil(total / 400));
    for (;;) {
      const q = `every=${every_}&limit=1000${after !== null ? `&after=${after}` : ""}`;
      const page = await json(`/v1/jobs/${id}/metrics?${q}`);
      points.push(...page.items);
      if (page.items.length) after = page.items[page.items.length - 1].step;
      if (!page.next_cursor) break;
    }
    if (!points.length) return;
    curvesSection.hidden = false;
    append(clear(curves), keysOf(points).map((k) => lineChart(points, k)));
  };

  const finished = async (job) => {
    const items = await all(`/v1/jobs/${id}/artifacts`);
    const grid = items.find((a) => a.name === "grid.png");
    append(clear(samples), [grid
      ? h("img", { src: grid.url, alt: `sample grid of job ${shortId(id)}, one row per class`, class: "pixelated", id: "grid-image" })
      : h("p", {}, "This job wrote no sample grid.")]);
    const html = items.find((a) => a.name === "report.html");
    if (html) {
      append(clear(report), [h("h2", {}, "Evaluation report"),
        h("p", {}, h("a", { href: html.url, target: "_blank", rel: "noopener" }, "Open the report in a new tab")),
        // sandbox: the report is static HTML; it gets no script and no access to this tab.
        h("iframe", { src: html.url, title: "evaluation report", class: "report", sandbox: "", id: "report-frame" })]);
    }
    append(clear(artifacts), [items.length ? table(["Name", "Size", "Type"], items.map((a) => [
      h("a", { href: a.url, download: a.name.split("/").pop() }, a.name),
      h("td", { class: "num" }, bytes(a.size)), a.content_type,
    ]), "Artifacts") : h("p", {}, "No artifacts.")]);
  };

  const show = (job) => {
    const p = job.progress || {};
    if (job.status !== last.status) say(`status ${job.status}`);
    if (p.stage && p.stage !== last.stage) say(`stage ${p.stage}`);
    const tenth = Math.floor((p.fraction || 0) * 10);
    if (job.status === "running" && tenth !== last.tenth && p.step) {
      const m = Object.entries(p.metrics || {}).slice(0, 4).map(([k, v]) => `${k}=${number(v)}`).join(" ");
      say(`step ${p.step}/${p.total} ${m}`);
    }
    const version = job.result?.model_version;
    append(clear(head), [
      h("p", {}, badge(job.status), " ", subject(job)),
      progressBar(job, "job progress"),
      facts([
        ["Job id", h("span", { class: "mono" }, job.id)],
        ["Kind", job.kind],
        ["Stage", p.stage || "-"],
        ["Step", p.total ? `${p.step} / ${p.total}` : "-"],
        ["ETA", job.status === "running" ? seconds(p.eta_seconds) : "-"],
        ["Created", when(job.created_at)],
        ["Started", when(job.started_at)],
        ["Completed", when(job.completed_at)],
        ["Model", version ? h("a", { href: `#/models/${encodeURIComponent(version.name)}` }, `${version.name}:${version.version}`) : "-"],
        ...(job.result?.summary?.privacy ? [["Privacy audit", h("span", { id: "privacy-audit" }, auditText(job.result.summary.privacy))]] : []),
      ]),
      job.error ? errorBox(`${job.error.type}: ${job.error.message}`) : null,
    ]);
    clear(actions);
    if (!isTerminal(job.status)) {
      actions.append(h("button", { type: "button", class: "secondary", onclick: async () => {
        try { await json(`/v1/jobs/${id}/cancel`, { method: "POST" }); } catch (err) { say(`cancel failed: ${err.message}`); }
      } }, "Cancel job"));
    }
    if (version && job.status === "succeeded") {
      actions.append(h("a", { class: "button", href: `#/playground?model=${encodeURIComponent(`${version.name}:${version.version}`)}` }, "Preview this model"));
    }
    request.textContent = JSON.stringify(job.request, null, 2);
    if (job.kind === "train" && job.status !== "queued") loadCurves(job).catch((err) => say(`curves: ${err.message}`));
    if (isTerminal(job.status) && !isTerminal(last.status || "")) finished(job).catch((err) => say(`artifacts: ${err.message}`));
    if (job.error && job.error.message !== last.error) say(`error ${job.error.type}: ${job.error.message}`);
    last = { status: job.status, stage: p.stage, tenth, error: job.error?.message };
  };
  return watchJob(id, show, (err) => say(`could not refresh: ${err.message}`));
}
