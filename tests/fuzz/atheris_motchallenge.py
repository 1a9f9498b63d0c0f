"""Coverage-guided fuzzing (atheris, libFuzzer) of the MOTChallenge readers: `read_mot_file` and `read_seqinfo` on
the same bytes, held to the promise of the hypothesis targets (parse, or raise `MotFormatError`). Not collected by
pytest (the name has no `test_` prefix); `test_atheris.py` runs it briefly where atheris installs, `make fuzz` longer:

    .venv/bin/python tests/fuzz/atheris_motchallenge.py -runs=10000
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris
import numpy  # noqa: F401  (imported first so that only trackid's own modules are instrumented)

with atheris.instrument_imports(include=["trackid"]):
    from trackid.sources.motchallenge import MotFormatError, read_mot_file, read_seqinfo

SCRATCH = Path(tempfile.mkdtemp(prefix="trackid-atheris-"))


def one_input(data: bytes) -> None:
    path = SCRATCH / "input.txt"
    path.write_bytes(data)
    for read in (read_mot_file, read_seqinfo):
        with contextlib.suppress(MotFormatError):
            read(path)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
