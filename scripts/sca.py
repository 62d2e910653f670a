"""Dependency audit for `make check`: pip-audit over the installed environment.

Three outcomes, and the difference matters:

- **fail** (exit 1): a vulnerability service answered and named a known vulnerability in an
  installed package (the finding is printed with the versions that fix it).
- **pass** (exit 0): a service answered for the installed packages and found nothing.
- **skipped** (exit 0, printed as ``SCA skipped: vulnerability service unreachable (...)``):
  no service could be asked. pip-audit's default service is PyPI's JSON API; where only a
  package mirror is reachable (no JSON API) pip-audit reports every package as "not found"
  and then says "No known vulnerabilities found" with exit 0 — a false green. That case is
  detected here (no package could be looked up) and reported as skipped, never as a pass.

The services are tried in order (PyPI, then OSV); the first that answers decides.
Usage: ``python scripts/sca.py`` (``--timeout`` seconds per request).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICES = ("pypi", "osv")
UNREACHABLE_MARKERS = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Failed to resolve",
    "Connection refused",
    "Network is unreachable",
    "timed out",
    "Temporary failure in name resolution",
)


@dataclass(frozen=True)
class Decision:
    """What the audit means: outcome is 'pass', 'fail' or 'unreachable'."""

    outcome: str
    message: str


def _unreachable_reason(stderr: str) -> str | None:
    for marker in UNREACHABLE_MARKERS:
        if marker in stderr:
            lines = [line.strip() for line in stderr.splitlines() if marker in line]
            return lines[-1][:300] if lines else marker
    return None


def _findings(dependencies: list[dict[str, Any]]) -> list[str]:
    found = []
    for dep in dependencies:
        for vuln in dep.get("vulns") or []:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            package = f"{dep['name']} {dep.get('version', '?')}"
            found.append(f"{package}: {vuln['id']} (fixed in {fixes})")
    return found


def decide(service: str, returncode: int, stdout: str, stderr: str) -> Decision:
    """Turn one pip-audit run (JSON output) into pass, fail or unreachable."""
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        report = None
    if report is None:
        reason = _unreachable_reason(stderr)
        if reason is not None:
            return Decision("unreachable", f"{service}: {reason}")
        tail = stderr.strip().splitlines()[-1:] or [f"exit {returncode}, no output"]
        return Decision("fail", f"pip-audit ({service}) did not produce a report: {tail[0]}")
    dependencies = report.get("dependencies", [])
    findings = _findings(dependencies)
    if findings:
        return Decision("fail", "known vulnerabilities:\n  " + "\n  ".join(findings))
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d]
    if skipped and not audited:
        example = skipped[0]["skip_reason"]
        return Decision(
            "unreachable",
            f"{service}: none of {len(skipped)} packages could be looked up (e.g. {example!r})",
        )
    if returncode != 0:
        detail = stderr.strip()[:300]
        return Decision("fail", f"pip-audit ({service}) exited {returncode}: {detail}")
    note = f"; {len(skipped)} not looked up (not on the index)" if skipped else ""
    return Decision("pass", f"{service}: {len(audited)} packages audited, none vulnerable{note}")


def run_pip_audit(service: str, timeout: int) -> tuple[int, str, str]:
    """Run pip-audit on this interpreter's environment; return (exit code, stdout, stderr)."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [
        str(pip_audit),
        "--local",
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--vulnerability-service",
        service,
        "--timeout",
        str(timeout),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    return done.returncode, done.stdout, done.stderr


def main(argv: list[str] | None = None) -> int:
    """Audit the installed packages; print one verdict line; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request")
    args = parser.parse_args(argv)
    reasons = []
    for service in SERVICES:
        decision = decide(service, *run_pip_audit(service, args.timeout))
        if decision.outcome == "unreachable":
            reasons.append(decision.message)
            continue
        if decision.outcome == "fail":
            print(f"SCA FAILED: {decision.message}")
            return 1
        print(f"SCA passed: {decision.message}")
        return 0
    print(f"SCA skipped: vulnerability service unreachable ({'; '.join(reasons)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
