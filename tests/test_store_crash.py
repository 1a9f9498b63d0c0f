"""`kill -9` in the middle of a stream of inserts loses no acknowledged sighting and leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from trackid.identity.stores.sqlite import SqliteGalleryStore

M = {"model_id": "mnv2", "model_version": "1"}

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from trackid.identity.stores.sqlite import SqliteGalleryStore

    store = SqliteGalleryStore(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]))
    identities = [store.create_identity().id for _ in range(4)]
    while True:
        owner = identities[int(rng.integers(5)) - 1] if rng.random() < 0.8 else None
        sighting = store.add_sighting(
            rng.normal(size=16), model_id="mnv2", model_version="1", time=float(rng.random()),
            quality=float(rng.random()), identity_id=owner,
        )
        print(sighting.id, flush=True)  # printed only after the commit returned: an acknowledgement
    """
)


def test_kill_9_mid_stream_keeps_every_acknowledged_sighting(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    acknowledged: list[int] = []
    for round_ in range(3):  # each round reopens the store a previous SIGKILL left behind
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(round_)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert child.stdout is not None
        for count, line in enumerate(child.stdout, start=1):
            acknowledged.append(int(line))
            if count == 40 + 17 * round_:
                os.kill(child.pid, signal.SIGKILL)
                break
        # Lines already in the pipe were printed after their commit returned: they are acknowledged too.
        acknowledged += [int(line) for line in child.stdout.read().splitlines() if line.strip()]
        assert child.wait() == -signal.SIGKILL

        store = SqliteGalleryStore(path)
        report = store.check_integrity()
        assert report.ok, report.problems
        assert report.repaired == (), "the index opened after a crash must already match the database"
        present = {s.id for s in store.sightings()}
        missing = sorted(set(acknowledged) - present)
        assert not missing, f"acknowledged sightings lost: {missing}"

        for identity in store.identities():  # the rebuilt index finds every prototype under its identity
            prototypes = store.prototypes(identity.id)
            assert len(prototypes) <= store.max_prototypes
            for prototype in prototypes:
                best = store.search(prototype.vector, **M, k=1)[0][0]
                assert best.identity_id == identity.id and best.similarity > 0.999
        np.testing.assert_array_equal(
            [i.sighting_count for i in store.identities()],
            [len(store.sightings(i.id)) for i in store.identities()],
        )
        store.close()
