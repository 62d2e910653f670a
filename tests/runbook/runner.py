"""Run runbook commands for real: `bash -c` from the repository root, .venv/bin first on PATH.

A scenario is a list of `Step`s (runbook command lines, verbatim, with placeholders) and
`Do`s (what a person or a supervisor does between commands: arrange data, stop a worker).
`export NAME=…` lines set NAME for the steps after them, as they would in the operator's
shell. Background steps (a worker, the cron) run until the scenario ends or a `Do` stops
them; they count as started once their `ready` condition holds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.runbook.extract import substitute

ROOT = Path(__file__).resolve().parents[2]
EXPORT = re.compile(r"^export ([A-Z_][A-Z0-9_]*)=")
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Step:
    """A runbook command and what running it must show (exit code, output regex)."""

    command: str
    expect: str | None = None
    code: int = 0
    env: Callable[[Drill], Mapping[str, str]] | None = None
    background: bool = False
    ready: Callable[[Drill], bool] | None = None
    timeout: float = 150.0


@dataclass(frozen=True)
class Do:
    """An action between commands (arrange data, stop a process); not a runbook line."""

    what: str
    action: Callable[[Drill], None]


@dataclass(frozen=True)
class Scenario:
    """Runbook steps run in order against one deployment (see tests/runbook/conftest.py)."""

    name: str
    deployment: str
    items: tuple[Step | Do, ...]

    def commands(self) -> list[str]:
        return [item.command for item in self.items if isinstance(item, Step)]


class DrillFailure(AssertionError):
    """A step did not do what the runbook says; the message carries the transcript."""


@dataclass
class Background:
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]


@dataclass
class Drill:
    """The operator's shell for one scenario: environment, placeholder values, processes."""

    env: dict[str, str]
    values: dict[str, str]
    workdir: Path
    services: dict[str, Any] = field(default_factory=dict)
    background: dict[str, Background] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    def run_scenario(self, scenario: Scenario) -> None:
        """Run every item in order; the first failing step raises with the transcript."""
        try:
            for item in scenario.items:
                if isinstance(item, Do):
                    self.transcript.append(f"# {item.what}")
                    item.action(self)
                else:
                    self.run(item)
        finally:
            self.stop_all()

    def _fail(self, message: str) -> DrillFailure:
        history = "\n".join(self.transcript[-12:])
        return DrillFailure(f"{message}\n--- drill transcript (last steps) ---\n{history}")

    def run(self, step: Step) -> str:
        """Run one step and check it; return its combined output."""
        command = substitute(step.command, self.values)
        env = {**self.env, **(step.env(self) if step.env else {})}
        if step.background:
            self._start(step, command, env)
            return ""
        export = EXPORT.match(command)
        script = f'{command}\nprintf "%s" "${export.group(1)}"' if export else command
        started = time.monotonic()
        try:
            done = subprocess.run(  # noqa: S603 - the runbook's own commands
                ["bash", "-o", "pipefail", "-c", script],  # noqa: S607
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=step.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise self._fail(f"`{command}` did not finish in {step.timeout:g} s") from exc
        output = done.stdout + done.stderr
        self.transcript.append(
            f"$ {command}  [exit {done.returncode}, {time.monotonic() - started:.1f} s]"
        )
        if done.returncode != step.code:
            raise self._fail(
                f"`{command}` exited {done.returncode}, expected {step.code}:\n{output[-3000:]}"
            )
        if step.expect is not None:
            pattern = substitute(step.expect, {k: re.escape(v) for k, v in self.values.items()})
            if not re.search(pattern, output, re.MULTILINE):
                raise self._fail(f"`{command}` output lacks /{pattern}/:\n{output[-3000:]}")
        if export:
            if not done.stdout:
                raise self._fail(f"`{command}` set {export.group(1)} to an empty value")
            self.env[export.group(1)] = done.stdout
        return output

    def _start(self, step: Step, command: str, env: Mapping[str, str]) -> None:
        log_path = self.workdir / f"background-{len(self.background)}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(  # noqa: S603 - the runbook's own commands
            ["bash", "-c", f"exec {command}"],  # noqa: S607
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = Background(process, log_path, log)
        self.background[step.command] = running
        self.transcript.append(f"$ {command} &")
        deadline = time.monotonic() + READY_TIMEOUT
        while step.ready is not None and not step.ready(self):
            if process.poll() is not None:
                raise self._fail(f"`{command}` exited {process.returncode}:\n{running.output()}")
            if time.monotonic() > deadline:
                raise self._fail(
                    f"`{command}` not ready in {READY_TIMEOUT:g} s:\n{running.output()}"
                )
            time.sleep(0.2)

    def stop(self, command: str) -> None:
        """Stop a background step the way a supervisor does: SIGTERM, then wait."""
        running = self.background.pop(command)
        process = running.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        running.log.close()
        self.transcript.append(f"# stopped `{command}` (exit {process.returncode})")

    def stop_all(self) -> None:
        """Stop every background step still running."""
        for command in list(self.background):
            self.stop(command)
