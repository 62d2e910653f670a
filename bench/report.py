"""Tables for the terminal and docs/performance.md, target checks, growth ratios, JSON.

Every figure printed here is also in the JSON written under bench/results/ (gitignored),
together with the load averages before and after each scale, the plans and the logs'
location, so a table can always be traced back to the run that produced it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def scale_label(n: int) -> str:
    """10000 -> '10k', 1000000 -> '1m'."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def parse_scale(text: str) -> int:
    """'10k' -> 10000, '1m' -> 1000000, '2500' -> 2500."""
    raw = text.strip().lower()
    factor = {"k": 1000, "m": 1_000_000}.get(raw[-1:], 1)
    number = raw[:-1] if factor > 1 else raw
    try:
        value = float(number) * factor
    except ValueError:
        raise ValueError(f"{text!r} is not a scale like 10k, 100k or 1m") from None
    if value < 1000 or value != int(value):
        raise ValueError(f"{text!r}: a scale is a whole number of tickets, at least 1k")
    return int(value)


LIMITS = ("p50_ms", "p95_ms", "p99_ms", "req_per_s")


def _check(row: dict[str, Any]) -> str:
    target = {k: v for k, v in (row.get("target") or {}).items() if k in LIMITS and v}
    misses = []
    for key, unit in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        if target.get(key) is not None and row[key] > target[key]:
            misses.append(f"{unit}>{target[key]:g}")
    if target.get("req_per_s") is not None and row["req_per_s"] < target["req_per_s"]:
        misses.append(f"req/s<{target['req_per_s']:g}")
    if row["non2xx"] or row["socket_errors"]:
        misses.append("errors")
    return "miss: " + ", ".join(misses) if misses else ("ok" if target else "")


CORES = 2  # the targets' machine


def ceiling(row: dict[str, Any]) -> float:
    """Requests per second two cores could serve if the app and database had them alone."""
    cpu = _cpu(row)
    return CORES * 1000 / cpu if cpu > 0 else 0.0


def endpoint_table(rows: list[dict[str, Any]]) -> str:
    """The per-endpoint table, as markdown (readable in a terminal too)."""
    lines = [
        "| endpoint | req/s | p50 ms | p95 ms | p99 ms | errors | SQL/req | CPU ms/req"
        " web + db | job worker CPU ms/req | ceiling req/s | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sql = r.get("sql") or []
        sql_text = str(sql[0]) if sql and len(set(sql)) == 1 else "/".join(map(str, sql)) or "?"
        errors = r["non2xx"] + r["socket_errors"]
        lines.append(
            f"| {r['label']} | {r['req_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |"
            f" {r['p99_ms']:.1f} | {errors} | {sql_text} | {r.get('web_cpu_ms', 0):.1f} +"
            f" {r.get('db_cpu_ms', 0):.1f} | {r.get('worker_cpu_ms', 0):.1f} |"
            f" {ceiling(r):.0f} | {_check(r)} |"
        )
    return "\n".join(lines)


def scale_text(result: dict[str, Any]) -> str:
    """Everything measured at one scale, as text."""
    gen, mem = result["data"], result["memory"]
    lines = [
        f"## {result['scale']}: {result['tickets']:,} tickets"
        f" (largest org {result['org']}: {result['org_tickets']:,});"
        f" load average {result['loadavg_before'][0]:.1f} before, {result['loadavg_after'][0]:.1f}"
        " after",
        f"data: {gen.get('summary', '')}",
        "",
        endpoint_table(result["endpoints"]),
        "",
    ]
    for row in result["sweep"]:
        lines.append(
            f"SLA sweep, {row['case']}: median {row['median_ms']} ms, max"
            f" {row['max_ms']} ms over {row['runs']} runs (fired/run"
            f" {row['fired_per_run']}; target ≤ {row['target_ms']} ms)"
        )
    settled = result.get("settle")
    if settled:
        lines.append(
            f"settle before measuring: {settled['seconds']} s for the cron's first sweep and"
            f" the {settled['events']} events it and the start caused ({settled['left']} left)"
        )
    note = result["notifications"]
    lines.append(
        f"notifications, reply → SMTP sink accepted: p50 {note['latency'].get('p50_s')} s,"
        f" p99 {note['latency'].get('p99_s')} s (n={note['latency'].get('n', 0)});"
        f" the reply phase's backlog of {note['backlog']} emails drained in {note['drain_s']} s"
    )
    web = [v for k, v in mem["after"].items() if k.startswith("web")]
    lines.append(
        f"memory: web workers RSS after warm-up {_mb(mem['warm'])},"
        f" after the run {_mb(mem['after'])}"
        f" (peak {max((w.get('VmHWM', 0) for w in web), default=0) / 1024:.0f} MB);"
        f" job worker {mem['after'].get('worker', {}).get('VmRSS', 0) / 1024:.0f} MB;"
        f" {mem['requests']:,} requests in between"
    )
    lines.append(f"database size: {result['db_bytes'] / 1e9:.2f} GB")
    return "\n".join(lines)


def _mb(snapshot: dict[str, dict[str, int]]) -> str:
    values = [v.get("VmRSS", 0) / 1024 for k, v in sorted(snapshot.items()) if k.startswith("web")]
    return "/".join(f"{v:.0f}" for v in values) + " MB"


def growth_table(results: list[dict[str, Any]]) -> str:
    """Largest scale over smallest, per endpoint: p50, req/s and CPU per request."""
    small, large = results[0], results[-1]
    before = {r["key"]: r for r in small["endpoints"]}
    lines = [
        f"## growth {small['scale']} → {large['scale']}",
        "| endpoint | p50 ratio | req/s ratio | CPU/req ratio | allowed p50 ratio |",
        "|---|---|---|---|---|",
    ]
    for r in large["endpoints"]:
        old = before.get(r["key"])
        if old is None or not old["p50_ms"]:
            continue
        ratio = r["p50_ms"] / old["p50_ms"]
        allowed = (r.get("target") or {}).get("growth", 1.5)
        mark = "" if ratio <= allowed else " (miss)"
        cpu = _cpu(r) / _cpu(old) if _cpu(old) else 0.0
        lines.append(
            f"| {r['label']} | {ratio:.2f}{mark} | "
            f"{r['req_per_s'] / max(old['req_per_s'], 0.1):.2f} | {cpu:.2f} | ≤ {allowed:g} |"
        )
    return "\n".join(lines)


def _cpu(row: dict[str, Any]) -> float:
    return float(row.get("web_cpu_ms", 0) + row.get("db_cpu_ms", 0))


def save(report: dict[str, Any], name: str) -> Path:
    """Write the JSON report under bench/results/; return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


SUMMED = ("non2xx", "socket_errors", "requests")


def median_rows(passes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per endpoint, the median of each figure over several passes (errors and requests summed).

    A figure missing from some passes (an older result file) is the median of the others.
    """
    rows = []
    for index, first in enumerate(passes[0]):
        same = [p[index] for p in passes if index < len(p) and p[index]["key"] == first["key"]]
        row: dict[str, Any] = {}
        for one in same:
            row.update({k: v for k, v in one.items() if k not in row})
        for key, value in list(row.items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                values = [r[key] for r in same if key in r]
                row[key] = sum(values) if key in SUMMED else statistics.median(values)
        row["passes"] = len(same)
        rows.append(row)
    return rows


def combine(paths: list[Path]) -> list[dict[str, Any]]:
    """Results of several bench.run JSON files, one per scale, with per-figure medians."""
    by_scale: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for result in json.loads(path.read_text())["results"]:
            by_scale.setdefault(result["scale"], []).append(result)
    combined = []
    for runs in sorted(by_scale.values(), key=lambda r: r[0]["tickets"]):
        merged = dict(runs[-1])
        merged["endpoints"] = median_rows([r["endpoints"] for r in runs])
        merged["runs"] = len(runs)
        merged["loadavgs"] = [r["loadavg_before"][0] for r in runs]
        combined.append(merged)
    return combined


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.report", description="Median tables over several bench.run results."
    )
    p.add_argument("files", nargs="+", type=Path, help="bench/results/run-*.json")
    args = p.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")
    results = combine(args.files)
    for result in results:
        loads = ", ".join(f"{x:.1f}" for x in result["loadavgs"])
        print(
            f"## {result['scale']}: median of {result['runs']} run(s), load average"
            f" before each: {loads}\n\n{endpoint_table(result['endpoints'])}\n"
        )
    if len(results) > 1:
        print(growth_table(results))


if __name__ == "__main__":
    main()
