// The jobs list (live status and progress) and what each job is about, in words.

import { all, json } from "./api.js";
import { append, badge, clear, h, heading, progressBar, seconds, shortId, when } from "./dom.js";
import { every, isTerminal } from "./live.js";

// The tenant's uploaded datasets, id → name, read once per page (a job stores the id
// its dataset's name resolved to; a person knows the name).
export async function datasetNames() {
  try {
    return Object.fromEntries((await all("/v1/datasets")).map((d) => [d.id, d.name]));
  } catch {
    return {}; // the ids still say which dataset it is
  }
}

// "mnist100:train" for an uploaded dataset with a name, else the reference as stored.
function dataset(ref, names) {
  const [id, split] = String(ref || "").split(":");
  return names[id] ? `${names[id]}${split ? `:${split}` : ""}` : ref;
}

export function subject(job, names = {}) {
  const r = job.request || {};
  if (job.kind === "train") return `${r.engine} on ${dataset(r.dataset, names)} → ${r.model_name}`;
  if (job.kind === "generate") return `${r.count} images (${r.output_format || "png"}) from ${r.model}`;
  if (job.kind === "evaluate") {
    return `${r.model || `job ${shortId(r.source_job || "")}`} vs ${dataset(r.reference, names)}`;
  }
  if (job.kind === "validate_dataset") return `validate dataset ${r.name || names[r.dataset] || r.dataset}`;
  if (job.kind === "import_model") return `import model ${r.import || ""}`;
  if (job.kind === "txt2img") return `${Object.keys(r.prompts || {}).length} classes from ${r.model}`;
  return job.kind;
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
  let names = {};
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
        h("td", { class: "hide-narrow" }, when(job.created_at)), h("td", {}, subject(job, names)));
      rows.set(job.id, row);
      if (atEnd) tbody.append(row); else tbody.prepend(row);
    }
    const [, , status, progress] = row.children;
    if (status.textContent !== job.status) append(clear(status), [badge(job.status)]);
    append(clear(progress), progressCell(job));
  };

  const load = async () => {
    if (cursor === null) names = await datasetNames();
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
