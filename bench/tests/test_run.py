"""The benchmark runs end to end on a small database, and its parts report what they see."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench import loadgen, report, run
from bench.tests.conftest import database

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason=loadgen.INSTALL_HINT)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path.startswith("/ok") else 302 if self.path == "/moved" else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@needs_wrk
def test_wrk_counts_every_answer_that_is_not_2xx(server: str, tmp_path: Path) -> None:
    good = loadgen.run(loadgen.Load(server, ["/ok/1", "/ok/2"], {}, seconds=1), tmp_path)
    bad = loadgen.run(loadgen.Load(server, ["/ok", "/moved", "/missing"], {}, seconds=1), tmp_path)
    assert good["requests"] > 10 and good["non2xx"] == 0 and good["p50_ms"] > 0
    assert good["p50_ms"] <= good["p95_ms"] <= good["p99_ms"] <= good["max_ms"]
    assert bad["non2xx"] >= bad["requests"] * 2 // 3 - 1  # redirects count, not only 4xx


def test_scales_parse_and_name_databases() -> None:
    assert [report.parse_scale(s) for s in ("10k", "100K", "1m", "2500")] == [
        10_000,
        100_000,
        1_000_000,
        2500,
    ]
    assert [report.scale_label(n) for n in (10_000, 1_000_000, 2500)] == ["10k", "1m", "2500"]
    with pytest.raises(ValueError, match="not a scale"):
        report.parse_scale("lots")
    with pytest.raises(ValueError, match="at least 1k"):
        report.parse_scale("500")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give either --scale"),
        (["--scale", "10k", "--tickets", "5"], "give either --scale"),
        (["--scale", "10k,huge"], "not a scale"),
        (["--scale", "10k,100k", "--database-url", "postgresql://x/helpdesk_bench"], "{scale}"),
        (["--tickets", "5000", "--connections", "0"], "--connections 1-256"),
    ],
)
def test_bad_options_say_what_to_change(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        run.parse_args(argv)
    assert message in capsys.readouterr().err


@needs_wrk
@pytest.mark.timeout(600)
def test_a_small_run_measures_every_endpoint(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    template = database("helpdesk_bench_test_run_{scale}").replace("%7Bscale%7D", "{scale}")
    run.main(
        [
            "--tickets",
            "3000",
            "--duration",
            "1",
            "--warmup",
            "1",
            "--sweep-runs",
            "2",
            "--repeat",
            "2",
            "--database-url",
            template,
            "--redis-url",
            redis_url,
            "--orgs",
            "8",
        ]
    )
    out = capsys.readouterr().out
    written = out.strip().splitlines()[-1].removeprefix("wrote ")
    result = json.loads((report.ROOT / written).read_text())["results"][0]
    rows = {r["key"]: r for r in result["endpoints"]}
    assert set(rows) == {
        "list_page",
        "list_fragment",
        "view_my_open",
        "view_all_open",
        "search_common",
        "search_rare",
        "ticket",
        "ticket_100",
        "ticket_long",
        "reply",
        "api_list",
    }
    assert all(
        r["requests"] > 0 and r["non2xx"] == 0 and r["socket_errors"] == 0 for r in rows.values()
    )
    assert all(set(s) == {200} for s in result["probe_statuses"].values())
    assert all(r["web_cpu_ms"] > 0 and r["db_cpu_ms"] > 0 for r in rows.values())
    gets = [r for k, r in rows.items() if k != "reply"]
    assert all(len(set(r["sql"])) == 1 for r in gets), {r["key"]: r["sql"] for r in gets}
    # Constant in rows and comments: a 200-message ticket costs the statements of a short one.
    assert rows["ticket"]["sql"] == rows["ticket_100"]["sql"] == rows["ticket_long"]["sql"]
    assert rows["search_common"]["sql"] == rows["search_rare"]["sql"]
    assert rows["list_fragment"]["sql"] == rows["view_all_open"]["sql"]
    assert [s["case"] for s in result["sweep"]] == ["none due", "1,000 due"]
    assert result["sweep"][1]["fired_per_run"] == 3000
    assert result["notifications"]["latency"]["n"] >= 20
    # Measured on a settled stack: the cron's first sweep ran and its emails went out first.
    assert result["settle"]["left"] == 0
    assert "| job worker CPU ms/req |" in out
    assert all(v.get("VmRSS", 0) > 0 for v in result["memory"]["after"].values())
    assert "| list (HTMX fragment) |" in out


def test_medians_over_passes_sum_errors_and_fill_missing_figures() -> None:
    first = [{"key": "a", "label": "A", "p50_ms": 10.0, "non2xx": 1, "requests": 100}]
    second = [
        {"key": "a", "label": "A", "p50_ms": 30.0, "non2xx": 0, "requests": 50, "web_cpu_ms": 4.0}
    ]
    third = [
        {"key": "a", "label": "A", "p50_ms": 20.0, "non2xx": 2, "requests": 70, "web_cpu_ms": 6.0}
    ]
    (row,) = report.median_rows([first, second, third])
    assert row["p50_ms"] == 20.0 and row["non2xx"] == 3 and row["requests"] == 220
    assert row["web_cpu_ms"] == 5.0 and row["passes"] == 3
