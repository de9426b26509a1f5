"""Drives one golden scenario with the real Prefect client in one Python process.

Usage: ``python driver.py SCENARIO.py OUT.json`` with ``PREFECT_API_URL`` (and a fresh
``PREFECT_HOME``) in the environment.

A scenario module defines ``STEPS``: a list of

- ``("cli", "work-pool create p --type process")``: the ``prefect`` CLI, invoked in this
  process by Prefect's own test runner (``prefect.testing.cli.CycloptsCliRunner``), so dozens
  of commands pay Python's start-up once. ``{name}`` placeholders are filled from the
  values earlier SDK steps saved.
- ``("sdk", "label", fn)``: ``fn(client, saved)`` is an async function given a
  ``PrefectClient`` and the dict of saved values; what it returns is recorded (JSON).

Each step is recorded as ``{"step", "exit_code", "output"}`` after normalisation
(:func:`normalise`): ids become ``<id-N>`` numbered by first appearance in the whole
transcript, timestamps ``<time>``, relative times ``<relative>``, and rich tables lose
their column widths. The same scenario recorded against Prefect 3.9.1's own server
(``record.sh``) is the golden output a pushpool test compares with, step by step.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import sys
import traceback

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}| ?UTC)?"
)
RELATIVE = re.compile(
    r"\b(in )?(a|an|\d+) (second|minute|hour|day|week|month|year)s?( ago)?\b"
    r"|\bjust now\b|\bmoments? ago\b|\ba few seconds( ago)?\b"
)
RULE = re.compile(r"[─━═┄┈]{2,}")
PY_DATETIME = re.compile(r"(DateTime|datetime\.datetime)\(\d{4}, [^()]*(\([^()]*\))?\)")
BOX_EDGE = re.compile(r"[┏┓┗┛┃┡┩└┘┌┐│├┤┬┴┼╭╮╰╯]")
SPACES = re.compile(r"[ \t]{2,}")
LOOPBACK = re.compile(r"(127\.0\.0\.1|localhost):\d+")
# Prefect's server merges a deployment's tags into a run's through a Python set: their
# order differs from one server process to the next, so listed tags are compared sorted.
TAG_LIST = re.compile(r"((?:'tags': |tags=)\[)([^\]]*)(\])")


def _sorted_tags(match: re.Match[str]) -> str:
    items = [t.strip() for t in match.group(2).split(",") if t.strip()]
    return match.group(1) + ", ".join(sorted(items)) + match.group(3)


class Normaliser:
    """Replaces the values that differ between servers by nature (ids, times)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _id(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if value not in self.ids:
            self.ids[value] = f"<id-{len(self.ids) + 1}>"
        return self.ids[value]

    def text(self, text: str) -> str:
        text = UUID.sub(self._id, text)
        text = LOOPBACK.sub("127.0.0.1:<port>", text)
        text = TAG_LIST.sub(_sorted_tags, text)
        text = PY_DATETIME.sub("<time>", text)
        text = TIME.sub("<time>", text)
        text = RELATIVE.sub("<relative>", text)
        lines = []
        for line in text.splitlines():
            line = RULE.sub("─", line)
            line = BOX_EDGE.sub("|", line)
            line = SPACES.sub(" ", line).rstrip()
            lines.append(line)
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def value(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value


def load(path: str):
    spec = importlib.util.spec_from_file_location("scenario", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jsonable(value):
    """Pydantic models and other SDK values as plain JSON."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


async def sdk_step(fn, saved):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await fn(client, saved)


def main() -> int:
    scenario_path, out_path = sys.argv[1], sys.argv[2]
    os.environ.setdefault("PREFECT_CLI_COLORS", "false")
    os.environ.setdefault("PREFECT_CLI_PROMPT", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.cli import CycloptsCliRunner, _strip_ansi_codes

    scenario = load(scenario_path)
    runner = CycloptsCliRunner()
    norm = Normaliser()
    saved: dict = {}
    recorded = []
    for step in scenario.STEPS:
        kind = step[0]
        if kind == "cli":
            command = step[1].format(**saved)
            result = runner.invoke(command)
            output = _strip_ansi_codes(result.stdout + result.stderr)
            recorded.append(
                {
                    "step": "prefect " + step[1],
                    "exit_code": result.exit_code,
                    "output": norm.text(output),
                }
            )
        elif kind == "sdk":
            _, label, fn = step
            try:
                value = jsonable(asyncio.run(sdk_step(fn, saved)))
                code = 0
            except Exception as exc:  # recorded: a failure is part of the transcript
                value = f"{type(exc).__name__}: {exc}"
                code = 1
                if os.environ.get("GOLDEN_DEBUG"):
                    traceback.print_exc()
            recorded.append(
                {"step": "sdk " + label, "exit_code": code, "output": norm.value(value)}
            )
        else:
            raise ValueError(f"unknown step kind {kind!r}")
    with open(out_path, "w") as out:
        json.dump(recorded, out, indent=1, ensure_ascii=False)
        out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
