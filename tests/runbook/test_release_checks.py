"""The decision logic of `make check`'s scripts: SCA outcomes, the secret scan's verdict
(and a real hook run that catches a new secret), scratch database names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from scripts import scratch_db, secret_scan
from scripts.sca import decide

# --- dependency audit (scripts/sca.py) ------------------------------------------------


def report(*deps: Mapping[str, object]) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


FLASK_OK = {"name": "flask", "version": "3.1.3", "vulns": []}
NOT_FOUND = {"name": "nh3", "skip_reason": "Dependency not found on PyPI and could not be audited"}


def test_a_known_vulnerability_fails_with_its_fix() -> None:
    vulnerable = {
        "name": "jinja2",
        "version": "3.1.2",
        "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": []}],
    }
    decision = decide("pypi", 1, report(FLASK_OK, vulnerable), "")
    assert decision.outcome == "fail"
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in decision.message


def test_a_clean_answer_passes_and_counts_what_it_could_not_look_up() -> None:
    decision = decide("pypi", 0, report(FLASK_OK, NOT_FOUND), "")
    assert decision.outcome == "pass"
    assert (
        decision.message
        == "pypi: 1 packages audited, none vulnerable; 1 not looked up (not on the index)"
    )


def test_every_package_not_found_is_an_unreachable_service_not_a_pass() -> None:
    # What pip-audit does against a mirror without PyPI's JSON API: exit 0, "no known
    # vulnerabilities", and not one package actually looked up.
    decision = decide("pypi", 0, report(NOT_FOUND, {**NOT_FOUND, "name": "flask"}), "")
    assert decision.outcome == "unreachable"
    assert "none of 2 packages could be looked up" in decision.message


def test_a_connection_error_is_an_unreachable_service() -> None:
    stderr = (
        "Traceback (most recent call last):\n  ...\nrequests.exceptions.ConnectionError: "
        "HTTPSConnectionPool(host='api.osv.dev', port=443): Max retries exceeded\n"
    )
    decision = decide("osv", 1, "", stderr)
    assert decision.outcome == "unreachable"
    assert decision.message.startswith("osv: requests.exceptions.ConnectionError")


def test_any_other_crash_fails_rather_than_skips() -> None:
    decision = decide("pypi", 2, "", "pip-audit: error: unrecognized arguments: --bogus\n")
    assert decision.outcome == "fail"
    assert "unrecognized arguments" in decision.message


def test_sca_prints_skipped_when_no_service_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts import sca

    answers = {
        "pypi": (0, report(NOT_FOUND), ""),
        "osv": (1, "", "requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'"),
    }
    monkeypatch.setattr(sca, "run_pip_audit", lambda service, timeout: answers[service])
    assert sca.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SCA skipped: vulnerability service unreachable (pypi: none of 1 ")
    assert "osv: requests.exceptions.ConnectionError" in out


# --- secret scan (scripts/secret_scan.py) ---------------------------------------------


def test_the_committed_baseline_is_fully_audited() -> None:
    baseline = json.loads(secret_scan.BASELINE.read_text())
    assert baseline["results"], "the baseline lists the audited false positives"
    assert secret_scan.unaudited(baseline) == []


def test_unaudited_or_real_findings_fail_the_verdict() -> None:
    baseline = {
        "results": {
            "a.py": [{"type": "Secret Keyword", "line_number": 3}],
            "b.py": [{"type": "AWS Access Key", "line_number": 9, "is_secret": True}],
            "c.py": [{"type": "Secret Keyword", "line_number": 1, "is_secret": False}],
        }
    }
    bad = secret_scan.unaudited(baseline)
    assert bad == ["a.py:3 Secret Keyword (unaudited)", "b.py:9 AWS Access Key (marked real)"]
    ok, message = secret_scan.verdict(0, "", bad)
    assert not ok
    assert "detect-secrets audit .secrets.baseline" in message
    assert secret_scan.verdict(0, "", []) == (True, "no new secrets")
    assert secret_scan.verdict(3, "updated", [])[0] is True  # only line numbers moved


def test_a_new_secret_in_a_file_fails_the_hook(tmp_path: Path) -> None:
    leaked = tmp_path / "settings_local.py"
    key = "AKIA" + "ZX4Q7RLM2KD5WE3N"  # an AWS access key id shape, split against self-scans
    leaked.write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    code, output = secret_scan.run_hook([str(leaked)], secret_scan.BASELINE)
    assert code == secret_scan.HOOK_NEW_SECRETS, output
    assert "AWS Access Key" in output
    ok, message = secret_scan.verdict(code, output, [])
    assert not ok
    assert "not in .secrets.baseline" in message


def test_a_tracked_file_already_in_the_baseline_passes_the_hook() -> None:
    code, output = secret_scan.run_hook(["tests/factories.py"], secret_scan.BASELINE)
    assert code in (0, secret_scan.HOOK_BASELINE_MOVED), output


# --- scratch databases (scripts/scratch_db.py) ----------------------------------------


@pytest.mark.parametrize(
    ("test_database", "role", "name"),
    [
        ("helpdesk_test", "main", "helpdesk_drill_main"),
        ("helpdesk_test_h5", "restored", "helpdesk_drill_h5_restored"),
        ("ci-Run.2", "jobs", "helpdesk_drill_ci_run_2_jobs"),
    ],
)
def test_scratch_names_derive_from_the_test_database(
    test_database: str, role: str, name: str
) -> None:
    assert scratch_db.scratch_name(test_database, role) == name


def test_scratch_urls_keep_server_and_socket_options() -> None:
    url = "postgresql+psycopg://postgres@/helpdesk_test?host=/tmp/pg"
    assert scratch_db.scratch_url(url, "main") == (
        "postgresql+psycopg://postgres@/helpdesk_drill_main?host=/tmp/pg"
    )


def test_only_scratch_databases_can_be_dropped() -> None:
    with pytest.raises(ValueError, match="not a scratch database"):
        scratch_db.drop("postgresql+psycopg://postgres@127.0.0.1:5432/helpdesk_test")
