"""`alembic check` for `make check`: do the models and the migrations agree?

Upgrades a fresh scratch database (see scripts/scratch_db.py) to head with the real
`alembic` command, then runs `alembic check`, which fails when autogenerate would write a
new migration (a model changed without one). The scratch database is dropped afterwards.
Run from the repository root: `python -m scripts.migration_check`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpdesk import embedded
from scripts import scratch_db

ROOT = scratch_db.ROOT


def _alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    alembic = Path(sys.executable).with_name("alembic")
    return subprocess.run(  # noqa: S603 - our own tool and arguments
        [str(alembic), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def main() -> int:
    """Upgrade a scratch database to head and run `alembic check` on it."""
    url = scratch_db.scratch_url(scratch_db.test_server_url(), "alembic_check")
    try:
        scratch_db.recreate(url)
        for args in (("upgrade", "head"), ("check",)):
            done = _alembic(*args, url=url)
            if done.returncode != 0:
                print(f"alembic {' '.join(args)} FAILED:\n{done.stdout}{done.stderr}".rstrip())
                if args == ("check",):
                    print(
                        "The models and the migrations disagree: write the migration "
                        "(alembic revision --autogenerate -m '...') and review it."
                    )
                return 1
        print("alembic check ok: a fresh database at head matches the models")
        return 0
    finally:
        scratch_db.drop(url)
        embedded.stop_all()


if __name__ == "__main__":
    sys.exit(main())
