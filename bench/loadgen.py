"""Drive one endpoint with wrk at fixed concurrency; read back its latency percentiles.

Why wrk: it is a separate C process, so the load tool does not share the Python
interpreter (or its GIL) with anything it measures, and it keeps a fixed number of
connections busy. A small Lua script (written next to the results) cycles through a list
of paths (a different ticket per reply, so no conversation keeps growing), adds the
session cookie and HTMX/CSRF headers, counts non-2xx answers (wrk itself only counts
4xx/5xx) and prints one JSON line with p50/p95/p99 in microseconds.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = "sudo apt-get install -y wrk   (Debian/Ubuntu; macOS: brew install wrk)"
SCRIPT = r"""
-- written by bench/loadgen.py; configured through the environment
local paths, i = {}, 0
local f = assert(io.open(os.getenv("BENCH_PATHS_FILE"), "r"))
for line in f:lines() do if #line > 0 then paths[#paths + 1] = line end end
f:close()
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body == "" then body = nil end
local headers = {}
for name, value in string.gmatch(os.getenv("BENCH_HEADERS") or "", "([^:\n]+): ([^\n]*)") do
  headers[name] = value
end
local threads = {}
non2xx = 0

function setup(thread)
  table.insert(threads, thread)
end

function request()
  i = i + 1
  return wrk.format(method, paths[((i - 1) % #paths) + 1], headers, body)
end

function response(status, hdrs, resp_body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d,' ..
    ' "read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d,' ..
    ' "non2xx": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d,' ..
    ' "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, bad, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class Load:
    """One wrk run: where, what, how hard and for how long."""

    base_url: str
    paths: list[str]
    headers: dict[str, str]
    method: str = "GET"
    body: str = ""
    connections: int = 2
    seconds: float = 10.0


def require_wrk() -> str:
    """The wrk executable, or exit with the command that installs it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            f"wrk is not installed; the benchmark drives the app with it:\n  {INSTALL_HINT}"
        )
    return found


def run(load: Load, workdir: Path) -> dict[str, Any]:
    """Run wrk once; return its counts and latencies (ms) plus requests per second."""
    wrk = require_wrk()
    workdir.mkdir(parents=True, exist_ok=True)
    script, paths = workdir / "endpoint.lua", workdir / "paths.txt"
    script.write_text(SCRIPT)
    paths.write_text("\n".join(load.paths) + "\n")
    env = {
        **os.environ,
        "BENCH_PATHS_FILE": str(paths),
        "BENCH_METHOD": load.method,
        "BENCH_BODY": load.body,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in load.headers.items()),
    }
    seconds = max(1, round(load.seconds))
    cmd = [
        wrk,
        "-t1",
        f"-c{load.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        load.base_url,
    ]
    done = subprocess.run(  # noqa: S603 - wrk from PATH, our own arguments
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    return parse(done.stdout, done.stderr, done.returncode)


def parse(stdout: str, stderr: str = "", returncode: int = 0) -> dict[str, Any]:
    """Read the BENCH_RESULT line wrk's done() printed."""
    for text in stdout.splitlines():
        if text.startswith("BENCH_RESULT "):
            raw = json.loads(text.removeprefix("BENCH_RESULT "))
            seconds = raw["duration_us"] / 1e6
            errors = sum(
                raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
            )
            return {
                "requests": raw["requests"],
                "seconds": round(seconds, 2),
                "req_per_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p95_ms": raw["p95_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "mean_ms": round(raw["mean_us"] / 1000, 2),
                "max_ms": raw["max_us"] / 1000,
                "non2xx": raw["non2xx"],
                "socket_errors": errors,
            }
    raise SystemExit(f"wrk printed no result (exit {returncode}):\n{stdout}\n{stderr}")


def post_once(base_url: str, path: str, headers: dict[str, str], body: str) -> int:
    """One POST outside wrk (the notification probe); returns the HTTP status."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
