// The REST API as the console calls it: the key from this tab's sessionStorage in the
// Authorization header (never in a URL), problem+json errors as ApiError.

const KEY = "synthgen.apiKey";

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, problem) {
    const params = problem.invalid_params || [];
    super(params.length ? params.map((p) => p.reason).join("; ")
      : `${problem.title || status}: ${problem.detail || ""}`);
    this.status = status;
    this.problem = problem;
    this.params = params;
  }
}

// A GET answered 429 (the key's rate limit) is tried again after the server's
// Retry-After (else 1, 2, 4... s), up to RETRIES times: a page that reads a lot backs off
// instead of failing. Other methods are not repeated (a POST may have done its work).
const RETRIES = 5;

function backoffMs(response, attempt) {
  const after = Number(response.headers.get("Retry-After"));
  return Number.isFinite(after) && after > 0 ? after * 1000 : Math.min(30_000, 1000 * 2 ** attempt);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export async function call(path, { method = "GET", body, key, signal, accept } = {}) {
  const headers = { Authorization: `Bearer ${key || auth.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accept) headers.Accept = accept;
  let response;
  for (let attempt = 0; ; attempt += 1) {
    try {
      response = await fetch(path, {
        method, headers, cache: "no-store", signal,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, { title: "Network error", detail: `the API cannot be reached (${err})` });
    }
    if (response.status !== 429 || method !== "GET" || attempt >= RETRIES || signal?.aborted) break;
    await sleep(backoffMs(response, attempt), signal);
  }
  if (response.status === 401 && !key) {
    auth.clear();
    window.dispatchEvent(new Event("synthgen:signed-out"));
  }
  if (!response.ok) {
    let problem;
    try { problem = await response.json(); } catch { problem = {}; }
    throw new ApiError(response.status, { title: response.statusText, ...problem });
  }
  return response;
}

export async function json(path, options) {
  const response = await call(path, options);
  return response.status === 204 ? null : response.json();
}

// Every page of a cursor-paginated listing (artifacts, versions...).
export async function all(path, limit = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await json(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
