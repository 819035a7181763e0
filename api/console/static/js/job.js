// The job page: status, progress and ETA, training curves, a log of the job's events
// (each at the time it happened), the sample grid, the evaluation report and the
// artifacts. A finished job's samples and artifacts are read once; a failed read is shown
// as an error with a way to try again, never as "not yet".

import { all, json } from "./api.js";
import { keysOf, lineChart } from "./chart.js";
import { curveLoader } from "./curves.js";
import {
  append, badge, bytes, clear, errorBox, h, heading, number, progressBar, seconds, shortId, table,
  when,
} from "./dom.js";
import { datasetNames, subject } from "./jobs.js";
import { isTerminal, watchJob } from "./live.js";
import { auditText } from "./privacy.js";

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// When what a job object says happened: the event's own time (event_at, on streamed
// events), else the time the job object records for that status.
function timeOf(job) {
  const at = job.event_at
    || (isTerminal(job.status) ? job.completed_at : null)
    || (job.status === "running" ? job.started_at : null)
    || (job.status === "queued" ? job.created_at : null);
  const d = at ? new Date(at) : new Date();
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

function stepText(job) {
  const p = job.progress || {};
  if (!p.total) return "-";
  const budget = job.request?.config?.max_seconds;
  // A time budget ends the run before max_steps: the bar follows time, the numbers steps.
  return budget ? `${p.step} (time budget ${seconds(budget)}; at most ${p.total} steps)`
    : `${p.step} / ${p.total}`;
}

const WAITING = {
  samples: "The sample grid appears when the job has finished.",
  artifacts: "Artifacts are listed when the job has finished.",
};

export function renderJob(view, id) {
  const head = h("div", { class: "job-head" });
  const actions = h("div", { class: "row" });
  const curves = h("div", { class: "panels", id: "curves" });
  const log = h("pre", { class: "log", id: "job-log", tabindex: "0", "aria-label": "job log" });
  const samples = h("div", { id: "samples" }, h("p", {}, WAITING.samples));
  const report = h("div", { id: "report" });
  const artifacts = h("div", { id: "artifacts" }, h("p", {}, WAITING.artifacts));
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

  let last = {};
  let names = {};
  let shown = null;
  const say = (text, at = new Date()) => {
    log.append(`${at.toLocaleTimeString()}  ${text}\n`);
    log.scrollTop = log.scrollHeight;
  };
  const loader = curveLoader(id, (points) => {
    curvesSection.hidden = false;
    append(clear(curves), keysOf(points).map((k) => lineChart(points, k)));
  }, (err) => say(`curves: ${err.message}`));

  const showOutputs = (job, items) => {
    const grid = items.find((a) => a.name === "grid.png");
    const html = items.find((a) => a.name === "report.html");
    let none = "This job wrote no sample grid.";
    if (html) none = "The samples are in the evaluation report below.";
    else if (job.status !== "succeeded") none = `No sample grid: the job ${job.status}.`;
    append(clear(samples), [grid
      ? h("img", { src: grid.url, alt: `sample grid of job ${shortId(id)}, one row per class`, class: "pixelated", id: "grid-image" })
      : h("p", {}, none)]);
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

  const finished = async (job) => {
    let items;
    try {
      items = await all(`/v1/jobs/${encodeURIComponent(id)}/artifacts`);
    } catch (err) {
      const retry = () => {
        for (const el of [samples, artifacts]) append(clear(el), [h("p", {}, "Loading…")]);
        finished(job);
      };
      for (const el of [samples, artifacts]) {
        append(clear(el), [errorBox(`Could not list the job's artifacts: ${err.message}`),
          h("button", { type: "button", class: "secondary", onclick: retry }, "Try again")]);
      }
      say(`artifacts: ${err.message}`);
      return;
    }
    showOutputs(job, items);
  };

  const show = (job) => {
    shown = job;
    const p = job.progress || {};
    const at = timeOf(job);
    if (job.status !== last.status) say(`status ${job.status}`, at);
    if (p.stage && p.stage !== last.stage) say(`stage ${p.stage}`, at);
    const tenth = Math.floor((p.fraction || 0) * 10);
    if (job.status === "running" && tenth !== last.tenth && p.step) {
      const m = Object.entries(p.metrics || {}).slice(0, 4).map(([k, v]) => `${k}=${number(v)}`).join(" ");
      say(`step ${p.step}/${p.total} ${m}`, at);
    }
    const version = job.result?.model_version;
    append(clear(head), [
      h("p", {}, badge(job.status), " ", subject(job, names)),
      progressBar(job, "job progress"),
      facts([
        ["Job id", h("span", { class: "mono" }, job.id)],
        ["Kind", job.kind],
        ["Stage", p.stage || "-"],
        ["Step", stepText(job)],
        ["ETA", job.status === "running" ? seconds(p.eta_seconds) : "-"],
        ["Created", when(job.created_at)],
        ["Started", when(job.started_at)],
        ["Completed", when(job.completed_at)],
        ["Model", version ? h("a", { href: `#/models/${encodeURIComponent(version.name)}` }, `${version.name}:${version.version}`) : "-"],
        ...(job.result?.summary?.features_note ? [["Features", h("span", { id: "features-note" }, job.result.summary.features_note)]] : []),
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
    loader.update(job);
    if (isTerminal(job.status) && !last.ended) finished(job);
    if (job.error && job.error.message !== last.error) say(`error ${job.error.type}: ${job.error.message}`, at);
    last = { status: job.status, stage: p.stage, tenth, error: job.error?.message, ended: last.ended || isTerminal(job.status) };
  };
  // Dataset names arrive once; the job's line is drawn again with them.
  datasetNames().then((found) => { names = found; if (shown) show(shown); });
  const stop = watchJob(id, show, (err) => say(`could not refresh: ${err.message}`));
  return () => { stop(); loader.stop(); };
}
