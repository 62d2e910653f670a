"""Secret scan for `make check`: detect-secrets over every tracked file, against the baseline.

`.secrets.baseline` lists what `detect-secrets scan` found in the tracked files, each finding
audited (`"is_secret": false`: documentation examples and test fixtures with fake keys).
The check fails when

- a tracked file holds a potential secret that is not in the baseline (a new secret), or
- the baseline holds a finding that is not audited as a false positive (unaudited or real).

The hook runs against a temporary copy of the baseline: it rewrites the baseline it is given
when only line numbers moved, and a release check must not edit tracked files. Moved line
numbers are reported, and `make secrets-baseline` refreshes them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".secrets.baseline"
HOOK_NEW_SECRETS = 1
HOOK_BASELINE_MOVED = 3


def unaudited(baseline: dict[str, Any]) -> list[str]:
    """Findings in the baseline that are not audited as false positives ('file:line type')."""
    bad = []
    for filename, results in sorted(baseline.get("results", {}).items()):
        for result in results:
            if result.get("is_secret") is not False:
                state = "unaudited" if "is_secret" not in result else "marked real"
                bad.append(f"{filename}:{result.get('line_number')} {result['type']} ({state})")
    return bad


def tracked_files() -> list[str]:
    """Every tracked file that exists in the work tree, except the baseline itself."""
    done = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, like every developer
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    names = [n for n in done.stdout.decode().split("\0") if n]
    return [n for n in names if n != BASELINE.name and (ROOT / n).is_file()]


def run_hook(files: list[str], baseline: Path) -> tuple[int, str]:
    """Run detect-secrets-hook on `files` against a copy of `baseline`; return (code, output)."""
    hook = Path(sys.executable).with_name("detect-secrets-hook")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "baseline.json"
        shutil.copyfile(baseline, copy)
        done = subprocess.run(  # noqa: S603 - our own tool, file names from git
            [str(hook), "--baseline", str(copy), *files],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    return done.returncode, (done.stdout + done.stderr).strip()


def verdict(code: int, output: str, bad_audits: list[str]) -> tuple[bool, str]:
    """Turn the hook's exit code and the baseline's audit state into (ok, message)."""
    if code == HOOK_NEW_SECRETS:
        return False, (
            f"{output}\nA tracked file holds a potential secret that is not in "
            ".secrets.baseline. Remove it (and rotate it if it was real); if it is a fake "
            "(a test fixture, a doc example), run `make secrets-baseline` and mark it false."
        )
    if code not in (0, HOOK_BASELINE_MOVED):
        return False, f"detect-secrets-hook failed (exit {code}):\n{output}"
    if bad_audits:
        return False, (
            "findings in .secrets.baseline not audited as false positives:\n  "
            + "\n  ".join(bad_audits)
            + "\nRun `.venv/bin/detect-secrets audit .secrets.baseline` and answer each."
        )
    if code == HOOK_BASELINE_MOVED:
        return True, "no new secrets (.secrets.baseline line numbers moved: make secrets-baseline)"
    return True, "no new secrets"


def main() -> int:
    """Scan the tracked files and check the baseline's audit; print the verdict."""
    baseline = json.loads(BASELINE.read_text())
    files = tracked_files()
    code, output = run_hook(files, BASELINE)
    ok, message = verdict(code, output, unaudited(baseline))
    print(f"secret scan {'ok' if ok else 'FAILED'} ({len(files)} tracked files): {message}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
