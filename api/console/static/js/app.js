// The console's shell: sign-in (the key lives in this tab's sessionStorage only), and a
// hash router (#/jobs, #/jobs/ID, #/submit, #/datasets, #/models, #/models/NAME, #/playground) that
// gives each page a fresh view and stops the previous page's polling.

import { auth, json } from "./api.js";
import { announce, clear, errorBox } from "./dom.js";
import { renderDatasets } from "./datasets.js";
import { renderSubmit } from "./forms.js";
import { renderJob } from "./job.js";
import { renderJobs } from "./jobs.js";
import { renderModel, renderModels, renderPlayground } from "./models.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signIn = document.getElementById("sign-in");
let stop = () => {};

function route() {
  const [path, query] = (window.location.hash.slice(1) || "/jobs").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  if (parts[0] === "jobs" && parts[1]) return { page: "jobs", run: (v) => renderJob(v, parts[1]) };
  if (parts[0] === "submit") return { page: "submit", run: renderSubmit };
  if (parts[0] === "datasets") return { page: "datasets", run: renderDatasets };
  if (parts[0] === "models" && parts[1]) return { page: "models", run: (v) => renderModel(v, parts[1]) };
  if (parts[0] === "models") return { page: "models", run: renderModels };
  if (parts[0] === "playground") return { page: "playground", run: (v) => renderPlayground(v, params) };
  return { page: "jobs", run: renderJobs };
}

async function show() {
  stop();
  stop = () => {};
  clear(view);
  const signedIn = Boolean(auth.key);
  signIn.hidden = signedIn;
  nav.hidden = !signedIn;
  if (!signedIn) {
    signIn.querySelector("h1").focus();
    return;
  }
  const { page, run } = route();
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#/${page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    stop = (await run(view)) || (() => {});
  } catch (err) {
    view.append(errorBox(err));
  }
  const h1 = view.querySelector("h1");
  if (h1) {
    document.title = `${h1.textContent} · synthgen`;
    h1.focus();
    announce(h1.textContent);
  }
}

document.getElementById("sign-in-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("api-key");
  const error = document.getElementById("api-key-error");
  const key = input.value.trim();
  error.hidden = true;
  try {
    await json("/v1/jobs?limit=1", { key });
  } catch (err) {
    error.textContent = err.status === 401 ? "That key is not valid." : err.message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  input.value = "";
  input.removeAttribute("aria-invalid");
  auth.set(key);
  show();
});

document.getElementById("sign-out").addEventListener("click", () => {
  auth.clear();
  show();
});

window.addEventListener("synthgen:signed-out", show);
window.addEventListener("hashchange", show);
show();
