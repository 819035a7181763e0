// Submit forms generated from the API's own OpenAPI schema: one form per job body
// variant (train per engine, generate, evaluate). Empty fields are left out, so the API's
// defaults apply; the API validates, and each problem+json `invalid_params` entry is
// shown beside the field it names.

import { ApiError, json } from "./api.js";
import { append, clear, h, heading } from "./dom.js";

let schemaPromise = null;

function openapi() {
  schemaPromise ??= fetch("/openapi.json").then((r) => r.json());
  return schemaPromise;
}

function deref(doc, schema) {
  while (schema && schema.$ref) schema = doc.components.schemas[schema.$ref.split("/").pop()];
  return schema;
}

// A job body's variants: [{kind, engine, schema}] from the request body's oneOf tree.
export function variants(doc) {
  const body = doc.paths["/v1/jobs"].post.requestBody.content["application/json"].schema;
  const out = [];
  const walk = (s) => {
    // A branch may be a reference to a union of its own (train jobs: one per engine).
    const schema = deref(doc, s);
    if (schema.oneOf) { schema.oneOf.forEach(walk); return; }
    out.push({ kind: schema.properties.kind.const, engine: schema.properties.engine?.const, schema });
  };
  walk(body);
  return out;
}

function unwrap(schema) {
  const options = schema.anyOf?.filter((s) => s.type !== "null");
  return options && options.length === 1 ? { ...options[0], title: schema.title, description: schema.description, default: schema.default } : schema;
}

function hintFor(s) {
  const parts = [];
  if (s.description) parts.push(s.description);
  if (s.minimum !== undefined || s.maximum !== undefined) parts.push(`${s.minimum ?? "…"} to ${s.maximum ?? "…"}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`more than ${s.exclusiveMinimum}`);
  if (s.default !== undefined && s.default !== null) parts.push(`default ${JSON.stringify(s.default)}`);
  if (s.type === "array" && !s.items?.enum) parts.push("comma-separated");
  return parts.join(" · ");
}

function field(doc, path, raw, required) {
  const s = unwrap(raw);
  const target = deref(doc, s);
  if (target !== s || (s.type === "object" && s.properties)) {
    return h("fieldset", { dataset: { field: path } },
      h("legend", {}, target.title || path),
      h("p", { class: "field-error", id: `e-${path}`, hidden: true }),
      h("div", { class: "grid-fields" }, Object.entries(target.properties).map(([name, sub]) => (
        field(doc, `${path}.${name}`, sub, (target.required || []).includes(name))))));
  }
  const id = `f-${path}`;
  const hint = hintFor(s);
  const described = [hint ? `h-${path}` : null, `e-${path}`].filter(Boolean).join(" ");
  const common = { id, name: path, "aria-describedby": described, dataset: { path, type: s.type, items: s.items?.type || "" } };
  let input;
  if (s.type === "array" && s.items?.enum) {
    input = h("div", { class: "checks", role: "group", "aria-labelledby": `l-${path}`, dataset: { path, type: "checks" } },
      s.items.enum.map((v) => h("label", {}, h("input", { type: "checkbox", value: v, checked: (s.default || []).includes(v) }), v)));
  } else if (s.enum || s.type === "boolean") {
    const values = s.enum || ["true", "false"];
    input = h("select", common, h("option", { value: "" }, required ? "choose…" : "(default)"),
      values.map((v) => h("option", { value: String(v) }, String(v))));
  } else if (s.type === "integer" || s.type === "number") {
    input = h("input", { ...common, type: "number", step: s.type === "integer" ? "1" : "any", min: s.minimum, max: s.maximum, inputmode: "decimal" });
  } else {
    input = h("input", { ...common, type: s.format === "uri" ? "url" : "text", spellcheck: "false" });
  }
  return h("div", { class: "field", dataset: { field: path } },
    h("label", { for: id, id: `l-${path}` }, s.title || path, required ? " *" : ""),
    input,
    hint ? h("p", { class: "hint", id: `h-${path}` }, hint) : null,
    h("p", { class: "field-error", id: `e-${path}`, hidden: true }));
}

function parseScalar(text, type) {
  if (type === "integer" && /^-?\d+$/.test(text)) return Number(text);
  if (type === "number" && text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text; // left as typed: the API says what is wrong with it
}

export function collect(form) {
  const body = {};
  const set = (path, value) => {
    const keys = path.split(".");
    let node = body;
    for (const k of keys.slice(0, -1)) node = node[k] ??= {};
    node[keys[keys.length - 1]] = value;
  };
  for (const el of form.querySelectorAll("[data-path]")) {
    const { path, type, items } = el.dataset;
    if (type === "checks") {
      const checked = [...el.querySelectorAll("input:checked")].map((c) => c.value);
      if (checked.length) set(path, checked);
      continue;
    }
    const text = el.value.trim();
    if (text === "") continue;
    if (type === "boolean") set(path, text === "true");
    else if (type === "array") set(path, text.split(",").map((t) => parseScalar(t.trim(), items)).filter((t) => t !== ""));
    else set(path, parseScalar(text, type));
  }
  return body;
}

export function showErrors(form, params, general) {
  for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const unplaced = [];
  let first = null;
  for (const p of params) {
    let name = p.name;
    let box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    while (!box && name.includes(".")) {
      name = name.slice(0, name.lastIndexOf("."));
      box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    }
    if (!box) { unplaced.push(`${p.name}: ${p.reason}`); continue; }
    box.classList.add("invalid");
    const error = box.querySelector(".field-error");
    error.textContent = error.textContent ? `${error.textContent}; ${p.reason}` : p.reason;
    error.hidden = false;
    const control = box.querySelector("input, select");
    control?.setAttribute("aria-invalid", "true");
    first ??= control;
  }
  append(clear(general), unplaced.length ? [h("p", { class: "error-box", role: "alert" }, unplaced.join("; "))] : []);
  first?.focus();
}

export async function renderSubmit(view) {
  append(view, [heading("Submit a job"), h("p", {}, "The fields come from the API's schema. Leave a field empty to use its default.")]);
  const doc = await openapi();
  const all = variants(doc);
  const kinds = [...new Set(all.map((v) => v.kind))];
  const engineSelect = h("select", { id: "engine" }, all.filter((v) => v.engine).map((v) => h("option", { value: v.engine }, v.engine)));
  const engineField = h("div", { class: "field" }, h("label", { for: "engine" }, "Engine"), engineSelect);
  const kindGroup = h("fieldset", {}, h("legend", {}, "Kind"), h("div", { class: "checks" }, kinds.map((k, i) => (
    h("label", {}, h("input", { type: "radio", name: "kind", value: k, checked: i === 0 }), k)))));
  const fields = h("div", { id: "fields" });
  const general = h("div", { id: "form-errors" });
  const submit = h("button", { type: "submit" }, "Submit job");
  const form = h("form", { id: "job-form", novalidate: true }, kindGroup, engineField, fields, general, submit);
  view.append(form);

  const current = () => {
    const kind = form.querySelector("input[name=kind]:checked").value;
    return all.find((v) => v.kind === kind && (!v.engine || v.engine === engineSelect.value));
  };
  const draw = () => {
    const v = current();
    engineField.hidden = !v.engine;
    const props = Object.entries(v.schema.properties).filter(([name]) => name !== "kind" && name !== "engine");
    append(clear(fields), props.map(([name, s]) => field(doc, name, s, (v.schema.required || []).includes(name))));
    form.dataset.variant = v.engine ? `${v.kind}-${v.engine}` : v.kind;
  };
  form.addEventListener("change", (e) => { if (e.target.name === "kind" || e.target === engineSelect) draw(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = current();
    const body = { kind: v.kind, ...(v.engine ? { engine: v.engine } : {}), ...collect(fields) };
    submit.disabled = true;
    try {
      const job = await json("/v1/jobs", { method: "POST", body });
      window.location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      if (err instanceof ApiError && err.params.length) showErrors(form, err.params, general);
      else showErrors(form, [{ name: "", reason: err.message }], general);
    } finally {
      submit.disabled = false;
    }
  });
  draw();
  return () => {};
}
