"""How hard the parsers were fuzzed: every target under tests/fuzz at TRACKID_FUZZ_EXAMPLES, with the inputs each
really ran and the exceptions that escaped it (issue #15's acceptance: >= 10,000 inputs per parser, 0 uncaught).

    .venv/bin/python bench/fuzz.py                      # 10,000 examples per target, appended to BENCHMARKS.md
    .venv/bin/python bench/fuzz.py --examples 500 --no-append

The counts are hypothesis' own (`--hypothesis-show-statistics`: passing + failing test cases over every phase,
invalid ones not counted); the coverage-guided atheris target has no such statistics, and counts as the `-runs` it
was given when it passed (its test asserts libFuzzer's "Done <runs> runs"). A target that fails stops at its first
uncaught exception, which hypothesis then shrinks: the table shows that exception.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import REPO, append_section  # bench/ is on sys.path when this file runs as a script

STATS_HEADER = re.compile(r"^(tests/fuzz/\S+::\S+):$")
STATS_COUNTS = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="TRACKID_FUZZ_EXAMPLES for every target")
    parser.add_argument("--no-append", action="store_true", help="print the table only, leave BENCHMARKS.md alone")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trackid-fuzz-bench-") as tmp:
        junit = Path(tmp) / "fuzz.xml"
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics"]
        done = subprocess.run(
            [*pytest, f"--junitxml={junit}", "tests/fuzz"],
            cwd=REPO,
            env={**os.environ, "TRACKID_FUZZ_EXAMPLES": str(args.examples)},
            capture_output=True,
            text=True,
            check=False,
        )
        outcomes = _outcomes(junit)
    seconds = time.perf_counter() - started
    inputs = _inputs_per_target(done.stdout)
    rows = []
    for target, escaped in outcomes.items():
        ran = inputs.get(target, args.examples if escaped is None else 0)
        rows.append((target, ran, "0" if escaped is None else f"1 ({escaped})"))
    body = "\n".join(
        ["| target | inputs run | uncaught exceptions |", "|---|---:|---|"]
        + [f"| `{target}` | {ran:,} | {escaped} |" for target, ran, escaped in rows]
    )
    print(body)
    if done.returncode not in (0, 1):
        print(done.stdout[-4000:], done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"pytest exited with {done.returncode}")
    if not args.no_append:
        notes = [
            f"TRACKID_FUZZ_EXAMPLES={args.examples}: every target under tests/fuzz, {seconds:.0f} s in all",
            "inputs run: hypothesis' passing + failing test cases over all phases (atheris: its -runs when it passed)",
        ]
        append_section("fuzz.py", notes, body)
    raise SystemExit(done.returncode)


def _outcomes(junit: Path) -> dict[str, str | None]:
    """Each test's id and, when it failed, the first line of what escaped it."""
    outcomes: dict[str, str | None] = {}
    for case in ET.parse(junit).iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        target = f"{path}.py::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            continue
        outcomes[target] = None if problem is None else (problem.get("message") or "failed").splitlines()[0][:120]
    return outcomes


def _inputs_per_target(stdout: str) -> dict[str, int]:
    """Test cases run per hypothesis target, from the statistics pytest printed."""
    counts: dict[str, int] = {}
    target = None
    for line in stdout.splitlines():
        header = STATS_HEADER.match(line.strip())
        if header:
            target = header.group(1)
            counts[target] = 0
        elif target is not None and (found := STATS_COUNTS.search(line)):
            counts[target] += int(found.group(1)) + int(found.group(2))
    return counts


if __name__ == "__main__":
    main()
