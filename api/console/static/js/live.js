// How the console hears that a job changed: the job's event stream
// (GET /v1/jobs/{id}/events, SSE), read with fetch() because EventSource cannot send an
// Authorization header (and the key never goes into a URL). Each event carries the job
// object. When the stream cannot be read (an old server, a proxy that buffers), it falls
// back to polling GET /v1/jobs/{id}.

import { call, json } from "./api.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

export function isTerminal(status) { return TERMINAL.has(status); }

// Calls onJob(job) now and on every change until the job ends; returns stop().
export function watchJob(id, onJob, onError, intervalMs = 1000) {
  const control = { stopped: false, timer: null, abort: new AbortController() };
  const poll = async () => {
    try {
      const job = await json(`/v1/jobs/${encodeURIComponent(id)}`);
      if (control.stopped) return;
      onJob(job);
      if (isTerminal(job.status)) return;
    } catch (err) {
      if (control.stopped) return;
      onError(err);
    }
    control.timer = setTimeout(poll, intervalMs);
  };
  streamJob(id, onJob, control).then((ended) => {
    if (!ended && !control.stopped) poll();
  });
  return () => { control.stopped = true; control.abort.abort(); clearTimeout(control.timer); };
}

// Reads the event stream; resolves true once the job ended, false if the stream failed
// before that (the caller polls instead).
async function streamJob(id, onJob, control) {
  let response;
  try {
    response = await call(`/v1/jobs/${encodeURIComponent(id)}/events`, {
      signal: control.abort.signal, accept: "text/event-stream",
    });
  } catch {
    return false;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      // Events end with a blank line; the server may end lines with \r\n.
      while ((cut = /\r?\n\r?\n/.exec(buffer)) !== null) {
        const block = buffer.slice(0, cut.index);
        buffer = buffer.slice(cut.index + cut[0].length);
        const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart()).join("\n");
        if (!data || control.stopped) continue;
        last = JSON.parse(data);
        onJob(last);
      }
    }
  } catch {
    return false;
  }
  return last !== null && isTerminal(last.status);
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
