// Models (versions, metrics, lineage, aliases) and the playground (a preview grid from
// any version, classes, seed and sampling options, in seconds).

import { ApiError, call, json } from "./api.js";
import { append, clear, errorBox, h, heading, number, shortId, table, when } from "./dom.js";
import { auditText, dpText } from "./privacy.js";

function metricsText(metrics) {
  const lines = [];
  for (const [group, values] of Object.entries(metrics || {})) {
    const flat = Object.entries(values?.metrics || values || {})
      .map(([k, v]) => `${k} ${typeof v === "object" && v ? number(v.value) : number(v)}`);
    lines.push(`${group}: ${flat.slice(0, 6).join(", ")}`);
  }
  return lines.length ? lines.join("\n") : "-";
}

// A version's DP record (from its lineage) and the newest audit among its evaluations.
function privacyCell(v) {
  const audits = Object.entries(v.metrics || {})
    .filter(([group, values]) => group.startsWith("evaluation ") && values?.privacy?.audited);
  const latest = audits.length ? audits[audits.length - 1] : null;
  return [
    h("div", {}, dpText(v.privacy)),
    latest ? h("div", { class: "note" }, `${latest[0]}: ${auditText(latest[1].privacy)}`) : null,
  ];
}

export async function renderModels(view) {
  append(view, [heading("Models")]);
  const [models, engines] = await Promise.all([json("/v1/models"), json("/v1/engines")]);
  const sampleOptions = Object.fromEntries(engines.map((e) => [e.name, e.sample_options]));
  if (!models.length) {
    view.append(h("p", {}, "No models yet: ", h("a", { href: "#/submit" }, "train one"), "."));
    return () => {};
  }
  view.append(table(["Model", "Versions", "Latest", "Aliases", "Engine", "Dataset", "Created"], models.map((m) => [
    h("a", { href: `#/models/${encodeURIComponent(m.name)}` }, m.name),
    h("td", { class: "num" }, String(m.versions)),
    h("td", { class: "num" }, String(m.latest_version.version)),
    Object.entries(m.aliases || {}).map(([a, v]) => `${a}→${v}`).join(", ") || "-",
    m.latest_version.engine, m.latest_version.dataset, when(m.latest_version.created_at),
  ]), "Registered models"));
  return () => {};
}

export async function renderModel(view, name) {
  append(view, [heading(`Model ${name}`)]);
  const body = h("div");
  view.append(body);
  const draw = async () => {
    const [versions, aliases] = await Promise.all([
      json(`/v1/models/${encodeURIComponent(name)}/versions`),
      json(`/v1/models/${encodeURIComponent(name)}/aliases`),
    ]);
    const form = aliasForm(name, versions, draw);
    append(clear(body), [
      h("h2", {}, "Versions"),
      table(["Version", "Aliases", "Engine", "Dataset", "Privacy", "Metrics", "Trained by", "Config", ""], versions.map((v) => [
        h("td", { class: "num" }, String(v.version)),
        v.aliases.join(", ") || "-",
        v.engine, v.dataset,
        h("td", { class: "privacy" }, privacyCell(v)),
        h("td", {}, h("pre", { class: "mono", style: null }, metricsText(v.metrics))),
        v.train_job_id ? h("a", { href: `#/jobs/${v.train_job_id}` }, `job ${shortId(v.train_job_id)}`) : "-",
        h("details", {}, h("summary", {}, "config"), h("pre", { class: "mono" }, JSON.stringify(v.config, null, 1))),
        h("a", { href: `#/playground?model=${encodeURIComponent(`${name}:${v.version}`)}` }, "Preview"),
      ]), "Versions"),
      h("h2", {}, "Aliases"),
      aliases.items.length ? table(["Alias", "Version", "Set by", "When"], aliases.items.map((a) => [
        h("code", {}, `${name}@${a.alias}`), h("td", { class: "num" }, String(a.version)), a.updated_by || "-", when(a.updated_at),
      ]), "Aliases") : h("p", {}, "No aliases."),
      form,
      aliases.moves.length ? h("details", {}, h("summary", {}, `Alias history (${aliases.moves.length})`),
        table(["Alias", "From", "To", "By", "When"], aliases.moves.map((m) => [
          m.alias, m.from_version ?? "-", m.to_version ?? "removed", m.moved_by, when(m.moved_at)]), "Alias history")) : null,
    ]);
  };
  await draw();
  return () => {};
}

function aliasForm(name, versions, redraw) {
  const error = h("p", { class: "field-error", id: "alias-error", role: "alert", hidden: true });
  const alias = h("input", { id: "alias-name", required: true, placeholder: "production", "aria-describedby": "alias-error" });
  const version = h("select", { id: "alias-version" }, versions.map((v) => h("option", { value: v.version }, `version ${v.version}`)));
  return h("form", { class: "row", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      await json(`/v1/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias.value.trim())}`,
        { method: "PUT", body: { version: Number(version.value) } });
      await redraw();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      alias.focus();
    }
  } },
  h("label", { for: "alias-name" }, "Alias"), alias,
  h("label", { for: "alias-version" }, "points at"), version,
  h("button", { type: "submit" }, "Set alias"), error);
}

// A sampling option of GET /v1/engines (declared once, with the engine) as a form field:
// a list of choices is a <select>, a number an <input> with the declared bounds; left
// empty, the option is left out, and the placeholder says what that samples with.
function sampleField(o) {
  const id = `pg-${o.name}`;
  const label = h("label", { for: id, title: o.help }, o.name);
  const hint = h("p", { class: "hint" }, o.help);
  if (o.choices) {
    return h("div", { class: "field" }, label,
      h("select", { id, dataset: { option: o.name, type: "choice" } },
        h("option", { value: "" }, `default: ${o.default_text}`),
        o.choices.map((c) => h("option", { value: c }, c))), hint);
  }
  const integer = o.type.startsWith("integer");
  return h("div", { class: "field" }, label,
    h("input", { id, type: "number", step: integer ? "1" : "any", min: o.min ?? o.exclusive_min, max: o.max ?? o.exclusive_max,
      placeholder: o.default_text, title: `left empty: ${o.default_text}`, dataset: { option: o.name, type: integer ? "integer" : "number" } }), hint);
}

export async function renderPlayground(view, params) {
  append(view, [heading("Playground"), h("p", {}, "Pick a model version and classes; the grid is drawn by the preview worker, one row per class.")]);
  const [models, engines] = await Promise.all([json("/v1/models"), json("/v1/engines")]);
  const sampleOptions = Object.fromEntries(engines.map((e) => [e.name, e.sample_options]));
  if (!models.length) {
    view.append(h("p", {}, "No models yet: ", h("a", { href: "#/submit" }, "train one"), "."));
    return () => {};
  }
  const versions = (await Promise.all(models.map((m) => json(`/v1/models/${encodeURIComponent(m.name)}/versions`)))).flat();
  const wanted = params.get("model");
  const select = h("select", { id: "pg-model" }, versions.map((v) => h("option", {
    value: `${v.name}:${v.version}`, selected: wanted === `${v.name}:${v.version}`,
  }, `${v.name}:${v.version} (${v.engine}, ${v.dataset})`)));
  const classes = h("fieldset", { id: "pg-classes" });
  const options = h("div", { id: "pg-options" });
  const count = h("input", { id: "pg-count", type: "number", min: "1", max: "64", placeholder: "up to 8 a row" });
  const seed = h("input", { id: "pg-seed", type: "number", min: "0", value: "0" });
  const result = h("div", { class: "preview-box", id: "pg-result", "aria-live": "polite" });
  const button = h("button", { type: "submit", id: "pg-go" }, "Preview");
  const form = h("form", { id: "playground", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "pg-model" }, "Model version"), select),
    classes, options,
    h("div", { class: "field" }, h("label", { for: "pg-count" }, "Images (at most 64)"), count),
    h("div", { class: "field" }, h("label", { for: "pg-seed" }, "Seed"), seed),
    button);
  view.append(h("div", { class: "split" }, form, h("section", {}, h("h2", {}, "Grid"), result)));

  const current = () => versions.find((v) => `${v.name}:${v.version}` === select.value);
  const draw = () => {
    const v = current();
    const names = v.spec.class_names || [];
    append(clear(classes), [h("legend", {}, v.spec.conditional === false ? "Classes (unconditional model)" : "Classes"),
      h("div", { class: "checks" }, v.spec.conditional === false ? "This model draws without a class." :
        names.map((n, i) => h("label", {}, h("input", { type: "checkbox", name: "class", value: String(i), checked: true }), n)))]);
    append(clear(options), (sampleOptions[v.engine] || []).map(sampleField));
  };
  select.addEventListener("change", draw);
  draw();

  let url = null;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = current();
    const body = { seed: Number(seed.value || 0), config: {} };
    if (v.spec.conditional !== false) body.labels = [...classes.querySelectorAll("input:checked")].map((c) => Number(c.value));
    if (count.value) body.count = Number(count.value);
    for (const input of options.querySelectorAll("[data-option]")) {
      if (input.value === "") continue;
      body.config[input.dataset.option] = input.dataset.type === "choice" ? input.value : Number(input.value);
    }
    button.disabled = true;
    append(clear(result), [h("p", {}, "Drawing…")]);
    const started = performance.now();
    try {
      const response = await call(`/v1/models/${encodeURIComponent(select.value)}/preview`, { method: "POST", body });
      if (url) URL.revokeObjectURL(url);
      url = null;
      let src;
      if (response.status === 202) src = await waitFor((await response.json()).urls.get, result);
      else src = url = URL.createObjectURL(await response.blob());
      const took = ((performance.now() - started) / 1000).toFixed(1);
      append(clear(result), [
        h("img", { src, id: "pg-image", class: "pixelated", alt: `preview grid of ${select.value}`, width: null }),
        h("p", { class: "hint" }, `${select.value}, seed ${body.seed}, ${took} s (model ${response.headers.get("X-Preview-Cache") === "hit" ? "was loaded" : "loaded now"})`),
      ]);
      const img = result.querySelector("img");
      img.addEventListener("load", () => { img.style.width = `${Math.min(img.naturalWidth * 4, 640)}px`; });
    } catch (err) {
      append(clear(result), [errorBox(err instanceof ApiError ? err.message : String(err))]);
    } finally {
      button.disabled = false;
    }
  });
  return () => { if (url) URL.revokeObjectURL(url); };
}

// A preview past the API's bound: poll it until the PNG is ready; its (signed) URL.
async function waitFor(getUrl, result) {
  append(clear(result), [h("p", {}, "The worker is busy; waiting for the grid…")]);
  const path = new URL(getUrl).pathname;
  for (;;) {
    const preview = await json(path);
    if (preview.status === "succeeded") return preview.urls.image;
    if (preview.status === "failed") throw new Error(preview.error?.message || "the preview failed");
    await new Promise((r) => setTimeout(r, 1000));
  }
}
