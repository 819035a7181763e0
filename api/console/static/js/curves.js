// A train job's curves, read at GET /v1/jobs/{id}/curves (not its deprecated first name,
// /metrics; tests/browser/test_job_page.py watches this path). A thinned read keeps every
// held-out evaluation's row, so the eval_fd and eval_label_agreement charts are whole.
// Read so that a page costs the API a request or two: one thinned request (every/limit)
// once the job has ended, and while it runs at most one request every REFRESH_MS for the
// steps after the last one held. Loads never overlap, and points are kept by step, so the
// charts are drawn in step order whatever order pages arrive in.

import { json } from "./api.js";

const REFRESH_MS = 5000;
const MOST_POINTS = 400; // per chart: more would not show on a 320 px wide plot

// The stride that keeps about MOST_POINTS of `steps` steps; the limit that then holds
// them all in one page.
export function thinning(steps) {
  const every = Math.max(1, Math.ceil(steps / MOST_POINTS));
  return { every, limit: Math.floor(steps / every) + 2 };
}

// How many steps the curves span: once the job ended, the last step it reached (saving
// keeps the train stage's step); while it runs, the steps it was asked for.
function span(job, ended) {
  const p = job.progress || {};
  const asked = p.total || job.request?.config?.max_steps || 0;
  return ended ? p.step || asked : asked;
}

// Returns { update(job), stop() }: update() with every job object the page sees;
// draw(points) is called with all points so far, sorted by step; fail(err) on an error.
export function curveLoader(id, draw, fail) {
  const points = new Map();
  let chain = Promise.resolve();
  let timer = null;
  let lastLoad = 0;
  let latest = null;
  let final = false;
  let stopped = false;

  const load = async (job, ended) => {
    if (stopped) return;
    lastLoad = Date.now();
    const steps = span(job, ended);
    if (!steps) return;
    const { every, limit } = thinning(steps);
    let after = null;
    if (!ended && points.size) after = Math.max(...points.keys());
    if (ended) points.clear(); // one evenly thinned read replaces what was read live
    const q = `every=${every}&limit=${limit}${after !== null ? `&after=${after}` : ""}`;
    const page = await json(`/v1/jobs/${encodeURIComponent(id)}/curves?${q}`);
    for (const point of page.items) points.set(point.step, point);
    if (points.size && !stopped) draw([...points.values()].sort((a, b) => a.step - b.step));
  };
  const enqueue = (job, ended) => {
    chain = chain.then(() => load(job, ended)).catch((err) => { if (!stopped) fail(err); });
  };

  return {
    update(job) {
      if (job.kind !== "train" || job.status === "queued" || final) return;
      latest = job;
      if (["succeeded", "failed", "canceled"].includes(job.status)) {
        // A replayed stream hands over many running events before the last one: the
        // pending live refresh is dropped, the finished job is read once.
        clearTimeout(timer);
        timer = null;
        final = true;
        enqueue(job, true);
        return;
      }
      if (timer) return;
      const wait = Math.max(1000, lastLoad + REFRESH_MS - Date.now());
      timer = setTimeout(() => { timer = null; enqueue(latest, false); }, wait);
    },
    stop() { stopped = true; clearTimeout(timer); },
  };
}
