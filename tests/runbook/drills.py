"""The runbook drills: every command of docs/runbook.md's `sh` blocks, run for real.

Each scenario runs runbook lines verbatim (placeholders filled from PLACEHOLDERS' values)
against scratch databases (`helpdesk_drill_*`, derived from TEST_DATABASE_URL), the test
Redis database, live test servers and a real clamd (tests/runbook/conftest.py). To drill a
new runbook command, add a `Step` with the exact line — and what its output must show — to
the scenario it belongs to; tests/runbook/test_runbook.py fails until every command is
either drilled here or listed in NOT_DRILLED with the reason.
"""

from __future__ import annotations

from tests.runbook import arrange
from tests.runbook.runner import Do, Scenario, Step

# Placeholders the runbook uses, with what the drill puts in their place (values are
# built in tests/runbook/conftest.py; an unknown placeholder fails the coverage test).
PLACEHOLDERS: dict[str, str] = {
    "<org-slug>": "the org the drill bootstraps: drill",
    "<org-name>": "its display name: Drill Org",
    "<email>": "its admin: ops@drill.test",
    "<token-name>": "an API token label",
    "<backup-file>": "a dump file in the drill's temporary directory",
    "<new-db>": "the scratch database to restore into (helpdesk_drill_…_restored)",
    "<new-database-url>": "DATABASE_URL of that database",
    "<revision>": "the code's migration head",
    "<previous-revision>": "(expectations only) the revision below head",
    "<queue>": "notify",
    "<queues>": "sla,scan,default: every queue but notify",
    "<message-file>": "a raw email from tests/fixtures/mail",
    "<ticket-number>": "a ticket the drill opens in the drill org",
    "<base-url>": "the live test server",
    "<message>": "a migration message (the command is not drilled)",
    "<flag>": "a feature flag: webhooks",
    "<reason>": "why it is flipped: runbook drill",
}

# Runbook commands that cannot run inside a test, each with why and where (if anywhere)
# it is exercised instead.
NOT_DRILLED: dict[str, str] = {
    ". .venv/bin/activate": (
        "changes only the operator's shell; every drill step runs with the same .venv/bin "
        "first on PATH, which is all it does"
    ),
    "make run": (
        "starts the long-running development stack (helpdesk.devrun); no test runs it. "
        "bench/stack.py (`make bench`) starts the same processes the same way"
    ),
    "PORT=8000 make run": "as `make run` (PORT is read by helpdesk.devrun)",
    "cp .env.example .env": (
        "writes .env into the work tree, which every flask command would then read; not "
        "exercised anywhere. The settings and their defaults: tests/unit/test_config.py"
    ),
    "make test": "CI: .ci/run runs `make check`, whose last step is `make test`",
    "make lint": "CI: the first step of `make check` in .ci/run",
    "make check": "CI: .ci/run runs it; it runs these drills, so it cannot drill itself",
    "make reset-dev-data": (
        "deletes instance/ (the embedded servers' data, the dev secret key); not exercised "
        "anywhere: it is one guarded `rm -rf instance` in the Makefile"
    ),
    'alembic revision --autogenerate -m "<message>"': (
        "writes a migration file into migrations/versions; not run here. `alembic check` "
        "(drilled, and a `make check` step) is what fails while one is missing"
    ),
    "make smoke-e2e BASE_URL=<base-url> SMOKE_EMAIL=<email> SMOKE_ORG=<org-slug>": (
        "drives a browser against a deployment; tests/smoke/test_smoke_e2e.py runs the same "
        "scripts/smoke_e2e.py against a live test server with a seeded agent"
    ),
}

PGURL = 'export PGURL="${DATABASE_URL/+psycopg/}"'
ON_NEW_DB = 'DATABASE_URL="$NEW_DATABASE_URL" '
DEMO_ACCOUNTS = (
    'psql "$PGURL" -tAc "select count(*) from users where email like '
    "'%@demo.test' or email like '%@acme.test'\""
)
TOKEN = (
    "export TOKEN=$(flask --app wsgi tokens create --email <email> --org <org-slug> "
    '--name "<token-name>")'
)
API_TICKETS = (
    'curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/v1/orgs/<org-slug>/tickets"'
)
REVOKE_LINKS = (
    'curl -fsS -X POST -H "Authorization: Bearer $TOKEN" '
    '"$BASE_URL/api/v1/orgs/<org-slug>/tickets/<ticket-number>/revoke-links"'
)
INBOUND = (
    'curl -fsS -X POST --data-binary @<message-file> -H "Authorization: Bearer '
    '$INBOUND_EMAIL_SECRET" "$BASE_URL/inbound/email"'
)
STORAGE_CHECK = (
    'python -c "from wsgi import app; from helpdesk.storage import get_storage; '
    "get_storage(app).check(); print('storage ok')\""
)
SMOKE_OK = r"^ok    database: 100 ticket\(s\) in 2 org\(s\)$(.|\n)*^smoke ok"
WORKER = "flask --app wsgi worker"
CRON = "flask --app wsgi cron"
WORKER_WITHOUT = "flask --app wsgi worker -q <queues>"


MIGRATIONS = Scenario(
    "migrations, backup, emergency restore, smoke",
    "main",
    (
        Step(PGURL),
        Step("alembic upgrade head", expect=r"Running upgrade .* -> <revision>"),
        Step("alembic current", expect=r"^<revision> \(head\)"),
        Step("alembic check", expect="No new upgrade operations detected"),
        Step("alembic downgrade -1", expect=r"Running downgrade <revision> -> <previous-revision>"),
        Step("alembic current", expect=r"^<previous-revision>$"),
        Step("alembic upgrade head", expect=r"Running upgrade <previous-revision> -> <revision>"),
        Step("flask --app wsgi seed demo", expect="created org acme"),
        Step(DEMO_ACCOUNTS, expect=r"^6$"),
        Step("flask --app wsgi smoke", expect=SMOKE_OK),
        Step('curl -fsS "$BASE_URL/healthz"', expect=r'"status": ?"ok"'),
        Step('curl -sS "$BASE_URL/readyz" | python3 -m json.tool', expect=r'"migrations": \{'),
        Step('pg_dump -Fc -f <backup-file> "$PGURL"'),
        Do("the backup is a custom-format archive", arrange.check_dump),
        Step("export NEW_DATABASE_URL=<new-database-url>"),
        Step('createdb --maintenance-db="$PGURL" <new-db>'),
        Step(
            'pg_restore --no-owner --exit-on-error -d "${NEW_DATABASE_URL/+psycopg/}" <backup-file>'
        ),
        Do("the restored database records an older revision", arrange.record_wrong_revision),
        Step(ON_NEW_DB + "alembic current", expect=r"^<previous-revision>$"),
        Step(ON_NEW_DB + "alembic stamp <revision>", expect="<previous-revision> -> <revision>"),
        Do("web, workers and cron restart on the restored database", arrange.use_restored),
        Step('export DATABASE_URL="$NEW_DATABASE_URL"'),
        Step("flask --app wsgi smoke", expect=SMOKE_OK),
        # The restored copy's audit chains are intact (the demo seed audits its tickets).
        Step("flask --app wsgi audit verify", expect=r"^org acme: \d+ events, intact"),
        Step("promtool check rules ops/alerts.yml", expect="SUCCESS"),
        Step("promtool test rules ops/alerts_test.yml", expect="SUCCESS"),
    ),
)

ACCOUNTS = Scenario(
    "bootstrap, tokens, operators, release checks, inbound mail, containment",
    "accounts",
    (
        Step(PGURL),
        Step(
            'flask --app wsgi bootstrap --org-slug <org-slug> --org-name "<org-name>" '
            "--admin-email <email>",
            expect=r"created org <org-slug> with admin <email>(.|\n)*password \(shown once",
        ),
        Step(TOKEN),
        Step(API_TICKETS, expect=r'"items": ?\['),
        Do("an agent opens a ticket in the org", arrange.open_ticket),
        Step(REVOKE_LINKS, expect=r'"revoked": ?\d'),
        Step("flask --app wsgi operators grant --email <email>", expect="<email>"),
        Step("flask --app wsgi operators list", expect="<email>"),
        Step("flask --app wsgi operators revoke --email <email>", expect="<email>"),
        Step("flask --app wsgi limiter limits", expect=r"auth\.login: /login"),
        Step(
            "flask --app wsgi ceilings",
            expect=r"^api-token: API_LIMIT_TOKEN=.*\nuser: USER_LIMIT=",
        ),
        Step(
            'python3 -c "import secrets; print(secrets.token_urlsafe(48))"',
            expect=r"^[A-Za-z0-9_-]{64}$",
        ),
        Step(STORAGE_CHECK, expect="^storage ok$"),
        Step(INBOUND, expect=r'"id": ?\d'),
        Step(
            "flask --app wsgi audit verify --org <org-slug>",
            expect=r"^org <org-slug>: \d+ events, intact",
        ),
        Step("flask --app wsgi flags list", expect=r"^webhooks +on"),
        Step(
            'flask --app wsgi flags set <flag> off --reason "<reason>"', expect="<flag> is now off"
        ),
        Step("flask --app wsgi flags set <flag> on", expect="<flag> is now on"),
        Step("flask --app wsgi sessions revoke --email <email>", expect="ended every session"),
        Step(
            "flask --app wsgi sessions revoke --all --yes",
            expect=r"ended every session of \d+ users",
        ),
        # The flips and revocations above are in the site chain, still intact.
        Step("flask --app wsgi audit verify", expect=r"^site: \d+ events, intact"),
        Step(
            'psql "$PGURL" -c "update users set active = false where email = \'<email>\'"',
            expect="^UPDATE 1$",
        ),
        # The deactivated admin's API token stops working at once (curl -f: exit 22).
        Step(API_TICKETS, code=22, expect="401"),
    ),
)

JOBS = Scenario(
    "background jobs: start, status, metrics, drain, requeue, dead deliveries, rescan",
    "jobs",
    (
        Do("a job that raises waits on the default queue", arrange.failing_job),
        Do("a webhook delivery gave up", arrange.dead_delivery),
        Step(WORKER, background=True, ready=arrange.worker_on("sla", "notify", "scan", "default")),
        Do("the worker ran the job: it is in the failed registry", arrange.job_failed),
        Step(CRON, background=True, ready=arrange.sweep_finished),
        Step("flask --app wsgi jobs status", expect=r"sla\.sweep: finished"),
        Step(
            'curl -fsS -H "Authorization: Bearer $METRICS_TOKEN" "$BASE_URL/metrics"',
            expect="^helpdesk_queue_depth",
        ),
        Step('curl -fsS "http://127.0.0.1:$PORT/metrics"', expect="^helpdesk_queue_workers"),
        Step(
            "flask --app wsgi jobs drain --queue <queue>",
            expect=r"start instead:\n.*: flask --app wsgi worker -q <queues>$",
        ),
        Do("the supervisor stops the worker (SIGTERM)", arrange.stop(WORKER)),
        Step(WORKER_WITHOUT, background=True, ready=arrange.worker_on("sla", "scan", "default")),
        Step("flask --app wsgi jobs drain --queue <queue> --wait 120", expect="<queue> is drained"),
        Step("flask --app wsgi jobs requeue-failed", expect=r"^requeued 1 failed job"),
        Step("flask --app wsgi jobs dead", expect=rf"^#\d+ org={arrange.JOBS_ORG} "),
        Step(
            "flask --app wsgi jobs retry-dead",
            expect=r"^1 dead delivery\(ies\) set back to pending",
        ),
        Step(
            "flask --app wsgi jobs undrain --queue <queue>",
            expect=r"<queue> is no longer marked as draining",
        ),
        Step(
            "flask --app wsgi attachments rescan --status error",
            expect=r"^\d+ attachment\(s\) set back to pending \(error\)",
        ),
    ),
)

SCENARIOS: tuple[Scenario, ...] = (MIGRATIONS, ACCOUNTS, JOBS)


def drilled_commands() -> list[str]:
    """Every runbook line some scenario runs."""
    return [command for scenario in SCENARIOS for command in scenario.commands()]
