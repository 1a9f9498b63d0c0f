"""One process writes an embedded store at a time (issue #15, item 4).

Each process keeps its own in-memory vector index, so two ingests into one SQLite store both "succeeded" while each
missed the other's identities (0 cross-camera matches instead of 4). The store now holds a lock while open.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trackid.identity.stores import StoreError, StoreLockedError, make_store

HOLDER = textwrap.dedent(
    """
    import sys, time
    from trackid.identity.stores import make_store

    store = make_store(sys.argv[1])
    print("open", flush=True)
    time.sleep(60)
    """
)


def test_a_second_process_cannot_open_a_store_another_has_open(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "open\n"
            with pytest.raises(
                StoreLockedError, match=rf"{path}: already open in another process \(pid {holder.pid}\)"
            ):
                make_store(path)
            assert issubclass(StoreLockedError, StoreError) and issubclass(StoreError, ValueError)
        finally:
            os.kill(holder.pid, signal.SIGKILL)
    with make_store(path) as store:  # a killed holder's lock goes with it
        assert store.identities() == []


def test_one_process_holds_one_store_open_once(tmp_path: Path) -> None:
    """Two store objects in one process are two indexes too: the second open is refused until the first closes."""
    first = make_store(tmp_path / "gallery.db")
    with pytest.raises(StoreLockedError, match=rf"already open in this process \(pid {os.getpid()}\)"):
        make_store(tmp_path / "gallery.db")
    first.close()
    make_store(tmp_path / "gallery.db").close()
