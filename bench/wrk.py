"""Load from Debian's ``wrk`` (C, one event loop per thread): it costs the two shared
cores far less per request than any Python client, so the servers are what is measured.

``run()`` drives one wrk run with a Lua script that makes each request (unique
Idempotency-Keys, a random job id from a file...) and reports JSON from ``done()``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MISSING = (
    "bench: `wrk` was not found on PATH. It is the load generator of this benchmark "
    "(a Python client would eat the cores the servers need); install it with "
    "`sudo apt-get install -y wrk` (Debian/Ubuntu) and run again."
)

# args: method, a path or @file of paths (one picked at random per request), the JSON body
# or "", "keys" to send a unique Idempotency-Key per request, then "Name: value" headers.
SCRIPT = r"""
local method, paths, body, keys, headers = "GET", {}, nil, false, {}
local counter, prefix = 0, ""

function setup(thread)
  local n = (setup_n or 0) + 1
  setup_n = n
  thread:set("tid", n)
end

function init(args)
  method = args[1]
  if string.sub(args[2], 1, 1) == "@" then
    for line in io.lines(string.sub(args[2], 2)) do paths[#paths + 1] = line end
  else
    paths[1] = args[2]
  end
  if args[3] ~= "" then body = args[3]; headers["Content-Type"] = "application/json" end
  keys = args[4] == "keys"
  prefix = args[5] .. "-" .. tostring(tid) .. "-"
  for i = 6, #args do
    local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  math.randomseed(tid * 7919 + os.time())
end

function request()
  local path = paths[1]
  if #paths > 1 then path = paths[math.random(#paths)] end
  if keys then
    counter = counter + 1
    headers["Idempotency-Key"] = prefix .. counter
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def require() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit(MISSING)
    return path


def run(
    url: str,
    *,
    method: str = "GET",
    path: str,
    body: str = "",
    keys: bool = False,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    seconds: float = 10,
    threads: int = 1,
    run_id: str = "bench",
) -> dict[str, float]:
    """One wrk run; ``path`` may be ``@file`` (a path per line, picked at random)."""
    wrk = require()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(SCRIPT)
        script = f.name
    args = [method, path, body, "keys" if keys else "-", run_id]
    args += [f"{k}: {v}" for k, v in (headers or {}).items()]
    try:
        out = subprocess.run(  # noqa: S603 - our own arguments
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                script,
                url,
                "--",
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds_run,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "n": raw["requests"],
        "errors": raw["non_2xx"] + raw["socket_errors"],
    }
