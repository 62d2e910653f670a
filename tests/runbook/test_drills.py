"""Run the runbook's commands for real (tests/runbook/drills.py): a wrong command, a changed
output or a step that no longer works fails here, with the drill's transcript.

The scenarios run side by side (each on its own deployment: tests/runbook/conftest.py):
every command is a process that builds the app, so on two cores running them one after
another would take twice as long.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from tests.runbook.conftest import make_drill
from tests.runbook.drills import PLACEHOLDERS, SCENARIOS, Scenario
from tests.runbook.runner import Drill

DRILL_TIMEOUT = 600  # seconds for all scenarios together, on a loaded machine


@pytest.fixture(scope="module")
def drill_runs(
    drill_services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Drill]]]:
    """Start every scenario at once; each test waits for its own."""

    def run(scenario: Scenario) -> Drill:
        workdir = tmp_path_factory.mktemp(scenario.deployment)
        shell = make_drill(drill_services, scenario, workdir)
        shell.run_scenario(scenario)
        return shell

    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        yield {s.name: pool.submit(run, s) for s in SCENARIOS}


@pytest.mark.timeout(DRILL_TIMEOUT)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.deployment)
def test_drill(scenario: Scenario, drill_runs: dict[str, Future[Drill]]) -> None:
    shell = drill_runs[scenario.name].result(timeout=DRILL_TIMEOUT)
    print("\n".join(shell.transcript))  # shown with -rP or -s: where the time goes


def test_every_placeholder_has_a_drill_value(
    drill_services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    shell = make_drill(drill_services, SCENARIOS[0], tmp_path_factory.mktemp("values"))
    filled_by_the_drill = {"<ticket-number>"}  # arrange.open_ticket sets it
    assert set(shell.values) | filled_by_the_drill == set(PLACEHOLDERS)
