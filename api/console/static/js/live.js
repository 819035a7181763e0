// How the console hears that a job changed: the ONE place to switch to the job event
// stream (GET /v1/jobs/{id}/events, SSE) once the API has it. EventSource cannot send an
// Authorization header, so that version would read the stream with fetch() and a
// ReadableStream, calling onJob with each event's job object; callers stay the same.

import { json } from "./api.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

export function isTerminal(status) { return TERMINAL.has(status); }

// Calls onJob(job) now and on every change until the job ends; returns stop().
export function watchJob(id, onJob, onError, intervalMs = 1000) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      const job = await json(`/v1/jobs/${encodeURIComponent(id)}`);
      if (stopped) return;
      onJob(job);
      if (isTerminal(job.status)) return;
    } catch (err) {
      if (stopped) return;
      onError(err);
    }
    timer = setTimeout(tick, intervalMs);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// Re-runs load() every intervalMs while it resolves to true (e.g. "a job is still
// running"); returns stop().
export function every(intervalMs, load) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    let again = false;
    try { again = await load(); } catch { again = true; }
    if (!stopped && again) timer = setTimeout(tick, intervalMs);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
