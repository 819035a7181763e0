// Datasets: the tenant's uploads by name (status, size, classes), an upload form that does
// what the SDK's datasets.upload does (create → send the file to the signed URL or its
// parts → complete → watch the validation job), a refusal shown as what it says, delete.

import { ApiError, all, call, json } from "./api.js";
import { append, badge, bytes, clear, errorBox, h, heading, shortId, table, when } from "./dom.js";
import { showErrors } from "./forms.js";
import { every } from "./live.js";

// The upload format a file's name says (as the SDK's guess_format).
const SUFFIXES = [[".tar.gz", "tar"], [".tgz", "tar"], [".tar.bz2", "tar"], [".tar.xz", "tar"],
  [".tar", "tar"], [".zip", "zip"], [".npz", "npz"], [".bin", "cifar"]];

export function guessFormat(fileName) {
  const lower = fileName.toLowerCase();
  return SUFFIXES.find(([suffix]) => lower.endsWith(suffix))?.[1] || "";
}

function defaultName(fileName) {
  const stem = fileName.replace(/(\.tar)?\.[^.]+$/i, "").replace(/[^A-Za-z0-9._-]+/g, "-");
  return stem.startsWith("ds_") ? `my-${stem}` : stem;
}

// One PUT with upload progress (fetch() cannot report it). Signed URLs carry their own
// authority: no Authorization header goes with the bytes.
function put(url, blob, onBytes) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => onBytes(e.loaded);
    xhr.onload = () => {
      if (xhr.status < 400) { resolve(); return; }
      let detail = xhr.statusText;
      try { detail = JSON.parse(xhr.responseText).detail || detail; } catch { /* S3 answers XML */ }
      reject(new Error(`the upload was refused (${xhr.status}): ${detail}`));
    };
    // A presigned S3 URL on another origin needs the bucket's CORS rules to allow this page.
    xhr.onerror = () => reject(new Error(
      `the upload URL (${new URL(url).origin}) cannot be reached from this page`));
    xhr.send(blob);
  });
}

async function send(target, file, onBytes) {
  if (target.method === "PUT") { await put(target.url, file, onBytes); return; }
  let done = 0;
  for (const part of target.parts) {
    const start = (part.part_number - 1) * target.part_size;
    const piece = file.slice(start, start + target.part_size);
    await put(part.url, piece, (n) => onBytes(done + n));
    done += piece.size;
  }
}

function readyText(d) {
  const split = d.split ? ` (train ${sum(d.split.train)}, test ${sum(d.split.test)})` : "";
  return `${d.num_images} images in ${d.classes?.length ?? 0} classes${split}`;
}

function sum(counts) { return Object.values(counts || {}).reduce((a, b) => a + b, 0); }

function classesText(classes) {
  if (!classes) return "-";
  return classes.length <= 6 ? classes.join(", ") : `${classes.slice(0, 6).join(", ")} +${classes.length - 6} more`;
}

function details(d) {
  const facts = [
    ["id", h("code", {}, d.id)],
    ["format", d.format],
    ["sha256", d.sha256 ? h("code", {}, d.sha256) : "-"],
    ["image shape", d.image_shape ? d.image_shape.join("×") : "-"],
    ["images per class", d.counts ? Object.entries(d.counts).map(([c, n]) => `${c} ${n}`).join(", ") : "-"],
    ["split", d.split ? `test fraction ${d.split.test_fraction}, seed ${d.split.seed}` : "-"],
    ["resized", d.resized ? `yes (uploaded sizes: ${Object.keys(d.original_sizes || {}).join(", ")})` : "no"],
    ["left out (corrupt)", d.corrupt?.length ? d.corrupt.map((c) => `${c.file}: ${c.reason}`).join("; ") : "none"],
    ["ignored", d.ignored?.length ? d.ignored.join(", ") : "none"],
    ["validation", d.validation_job ? h("a", { href: `#/jobs/${d.validation_job}` }, `job ${shortId(d.validation_job)}`) : "-"],
  ];
  return h("details", {}, h("summary", {}, "details"),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function statusCell(d) {
  return h("td", {}, badge(d.status),
    d.error ? h("p", { class: "field-error", dataset: { datasetError: d.id } }, d.error.message) : null);
}

export async function renderDatasets(view) {
  const list = h("div", { id: "datasets-list" });
  const form = uploadForm(() => refresh());
  append(view, [heading("Datasets"),
    h("p", {}, "Upload a zip or tar of class folders (class_name/image.png), an npz "
      + "(images, labels) or CIFAR batches; jobs name a dataset by its name "
      + "(", h("code", {}, '"dataset": "NAME"'), ", ", h("code", {}, '"NAME:test"'), ")."),
    form, h("h2", {}, "Your datasets"), list]);

  const remove = async (d) => {
    if (!window.confirm(`Delete dataset ${d.name}? Jobs that name it will not find it.`)) return;
    try {
      await call(`/v1/datasets/${encodeURIComponent(d.id)}`, { method: "DELETE" });
    } catch (err) {
      list.prepend(errorBox(err));
      return;
    }
    await refresh();
  };

  const refresh = async () => {
    let items;
    try {
      items = await all("/v1/datasets", 200);
    } catch (err) {
      append(clear(list), [errorBox(err)]);
      throw err; // every() tries again
    }
    append(clear(list), [items.length
      ? table(["Name", "Status", "Images", "Classes", "Size", "Created", ""], items.map((d) => [
        h("td", {}, h("strong", { class: "dataset-name" }, d.name), details(d)),
        statusCell(d),
        h("td", { class: "num" }, d.num_images ?? "-"),
        classesText(d.classes),
        h("td", { class: "num" }, d.size == null ? "-" : bytes(d.size)),
        when(d.created_at),
        h("button", { type: "button", class: "secondary", onclick: () => remove(d),
          "aria-label": `Delete dataset ${d.name}` }, "Delete"),
      ]), "Uploaded datasets, newest first")
      : h("p", {}, "No datasets yet: upload one above.")]);
    return items.some((d) => d.status === "validating");
  };
  return every(2000, refresh);
}

function uploadForm(onChange) {
  const file = h("input", { id: "ds-file", name: "file", type: "file", required: true,
    accept: ".zip,.tar,.tgz,.gz,.bz2,.xz,.npz,.bin", "aria-describedby": "e-file" });
  const name = h("input", { id: "ds-name", name: "name", required: true, spellcheck: "false",
    "aria-describedby": "h-name e-name" });
  const format = h("select", { id: "ds-format", name: "format", "aria-describedby": "e-format" },
    h("option", { value: "" }, "from the file name"),
    ["zip", "tar", "npz", "cifar"].map((f) => h("option", { value: f }, f)));
  const testFraction = h("input", { id: "ds-test-fraction", name: "test_fraction", type: "number",
    min: "0", max: "0.9", step: "any", placeholder: "0.2", "aria-describedby": "h-test_fraction e-test_fraction" });
  const skipCorrupt = h("input", { id: "ds-skip-corrupt", name: "skip_corrupt", type: "checkbox" });
  const progress = h("p", { id: "upload-progress", role: "status", hidden: true });
  const outcome = h("div", { id: "upload-outcome" });
  const general = h("div");
  const button = h("button", { type: "submit" }, "Upload");
  const error = (f) => h("p", { class: "field-error", id: `e-${f}`, hidden: true });
  const box = (f, ...children) => h("div", { class: "field", dataset: { field: f } }, ...children, error(f));

  file.addEventListener("change", () => {
    const chosen = file.files[0];
    if (chosen && !name.value) name.value = defaultName(chosen.name);
  });

  const form = h("form", { id: "upload-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    clear(outcome);
    const chosen = file.files[0];
    const fmt = format.value || (chosen ? guessFormat(chosen.name) : "");
    const local = [];
    if (!chosen) local.push({ name: "file", reason: "choose a file to upload" });
    else if (!fmt) local.push({ name: "format", reason: `cannot tell the format of ${chosen.name} from its name: choose one` });
    if (!name.value.trim()) local.push({ name: "name", reason: "a dataset needs a name" });
    showErrors(form, local, general);
    if (local.length) return;
    const body = { name: name.value.trim(), format: fmt, size: chosen.size, skip_corrupt: skipCorrupt.checked };
    if (testFraction.value !== "") body.test_fraction = Number(testFraction.value);
    button.disabled = true;
    const say = (text) => { progress.hidden = false; progress.textContent = text; };
    try {
      let created;
      try {
        created = await json("/v1/datasets", { method: "POST", body });
      } catch (err) {
        if (err instanceof ApiError && err.params.length) { showErrors(form, err.params, general); return; }
        throw err;
      }
      await onChange();
      await send(created.upload, chosen, (n) => say(`Uploading ${chosen.name}: ${bytes(n)} of ${bytes(chosen.size)}`));
      await json(`/v1/datasets/${created.id}/complete`, { method: "POST" });
      say(`Validating ${body.name}…`);
      const done = await validated(created.id, say);
      await onChange();
      progress.hidden = true;
      outcome.append(done.status === "ready"
        ? h("p", { class: "ok-box", role: "status" }, `${done.name} is ready: ${readyText(done)}.`)
        : h("p", { class: "error-box", role: "alert" }, `${done.name} is invalid: ${done.error?.message || "validation failed"}`));
      form.reset();
    } catch (err) {
      progress.hidden = true;
      outcome.append(errorBox(err));
    } finally {
      button.disabled = false;
    }
  } },
  h("fieldset", {}, h("legend", {}, "Upload a dataset"),
    h("div", { class: "grid-fields" },
      box("file", h("label", { for: "ds-file" }, "File *"), file),
      box("name", h("label", { for: "ds-name" }, "Name *"), name,
        h("p", { class: "hint", id: "h-name" }, "unique among your datasets; not a built-in's name, no \":\" or \"/\"")),
      box("format", h("label", { for: "ds-format" }, "Format"), format),
      box("test_fraction", h("label", { for: "ds-test-fraction" }, "Test fraction"), testFraction,
        h("p", { class: "hint", id: "h-test_fraction" }, "share of each class held out as the test split · default 0.2")),
      box("skip_corrupt", h("div", { class: "checks" }, h("label", {}, skipCorrupt, " leave out images that cannot be decoded")))),
    general, h("div", { class: "row" }, button, progress)),
  outcome);
  return form;
}

// Polls the dataset until its validation ended, saying the job's progress as it goes.
async function validated(id, say) {
  for (;;) {
    const d = await json(`/v1/datasets/${encodeURIComponent(id)}`);
    if (d.status === "ready" || d.status === "invalid") return d;
    if (d.validation_job) {
      const job = await json(`/v1/jobs/${encodeURIComponent(d.validation_job)}`);
      const pct = Math.round((job.progress?.fraction ?? 0) * 100);
      say(`Validating ${d.name}: ${job.status} ${pct}%`);
    }
    await new Promise((resolve) => { setTimeout(resolve, 700); });
  }
}
