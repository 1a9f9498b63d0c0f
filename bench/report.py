"""How every benchmark script records itself in BENCHMARKS.md: a section with the command, machine and date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "append_section", "command_line", "machine"]


def append_section(script: str, notes: list[str], body: str) -> None:
    """Append `## bench/<script> — <date>` with the command, machine, `notes` as bullets, then `body`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    bullets = [f"- command: `{command_line(script)}`", f"- machine: {machine()}", *(f"- {n}" for n in notes)]
    section = f"\n## bench/{script} — {stamp}\n\n" + "\n".join(bullets) + "\n\n" + body.rstrip("\n") + "\n"
    with open(REPO / "BENCHMARKS.md", "a", encoding="utf-8") as handle:
        handle.write(section)


def command_line(script: str) -> str:
    """The command as a person would retype it from the repository root."""
    python = Path(sys.executable)
    shown = python.relative_to(REPO) if python.is_relative_to(REPO) else python
    return " ".join([str(shown), f"bench/{script}", shlex.join(sys.argv[1:])]).strip()


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{_cpu_model()}, {cores} cores, Python {platform.python_version()}, {platform.system()}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
