"""The multi-camera service's parts on their own: the spool, the message schema, the stream ledger, live ids."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import OpenStore
from trackid.identity.live_ids import LiveIdentities
from trackid.identity.stores.ledger import StaleLedgerError
from trackid.pipelines.multicam.messages import CameraMessage, MessageError, decode, encode
from trackid.pipelines.multicam.spool import Spool, SpoolFullError


def _frame(seq: int = 0, boxes: np.ndarray | None = None) -> CameraMessage:
    boxes = np.array([[10.0, 20.0, 30.5, 60.25, 0.8765432, 3]]) if boxes is None else boxes
    return CameraMessage("frame", "site", "cam", seq or 1, 7, 1700000000.123, boxes)


def test_messages_round_trip_exactly() -> None:
    message = _frame(5)
    fields = encode(message)
    back = decode({k.encode(): v.encode() for k, v in fields.items()})  # as redis-py returns them
    assert back.key == "cam:5" and back.frame == 7 and back.spooled == message.spooled
    np.testing.assert_array_equal(back.boxes, message.boxes)  # no rounding: the linker sees the edge's numbers


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"v": "9"}, "field v"),
        ({"kind": "hello"}, "field kind"),
        ({"seq": "0"}, "field seq must be >= 1"),
        ({"seq": "x"}, "field seq must be an integer"),
        ({"spooled": "nan"}, "field spooled must be finite"),
        ({"boxes": "[[1, 2]]"}, "rows of 6"),
        ({"boxes": "not json"}, "JSON list"),
        ({"boxes": "[[1, 2, 0, 5, 0.5, 1]]"}, "positive width"),
        ({"camera": ""}, "field camera is missing"),
    ],
)
def test_malformed_messages_name_the_field(change: dict[str, str], words: str) -> None:
    fields = {**encode(_frame()), **change}
    with pytest.raises(MessageError, match=words):
        decode(fields)


def test_spool_numbers_resumes_and_resends(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_messages=10)
    for frame in (1, 2, 3):
        spool.append(frame, encode(_frame()))
    batch = spool.pending(10)
    assert [seq for seq, _ in batch] == [1, 2, 3] and [f["seq"] for _, f in batch] == ["1", "2", "3"]
    spool.mark_sent([1, 2], at=100.0)
    spool.mark_sent([3], at=200.0)
    assert spool.unsent() == 0
    assert spool.resend_since(150.0) == 1 and [s for s, _ in spool.pending(10)] == [3]
    spool.close()
    again = Spool(tmp_path / "s.db", max_messages=10)  # a restarted edge
    assert again.last_frame() == 3 and again.next_seq() == 4
    again.prune(sent_before=150.0)
    assert again.append(4, encode(_frame())) == 4  # numbers never repeat after pruning


def test_spool_cap_blocks_or_leaves_one_gap(tmp_path: Path) -> None:
    blocking = Spool(tmp_path / "b.db", max_messages=3, policy="block")
    for frame in (1, 2, 3):
        blocking.append(frame, encode(_frame()))
    with pytest.raises(SpoolFullError):
        blocking.append(4, encode(_frame()))
    dropping = Spool(tmp_path / "d.db", max_messages=4, policy="drop-oldest")
    for frame in range(1, 9):
        dropping.append(frame, encode(_frame()))
    rows = dropping.pending(100)
    seqs = [s for s, _ in rows]
    assert seqs == sorted(seqs) and seqs[-1] == 8
    gap = decode(rows[0][1])
    # the numbers stay contiguous: one gap message covers every dropped number before the survivors
    assert gap.kind == "gap" and gap.first == 1 and gap.seq == seqs[1] - 1
    assert dropping.dropped == gap.seq - gap.first + 1


def test_ledger_offsets_state_and_fencing(open_store: OpenStore) -> None:
    store = open_store()
    with store.transaction():
        store.save_stream_offsets("linker:a", {"c1": 5, "c2": 3})
        v1 = store.save_linker_state("linker:a", b"one", version=0)
        store.add_global_positions("a", [[1, 7, 42, 0.5, 1.0, 2.0]])
    assert store.stream_offsets("linker:a") == {"c1": 5, "c2": 3} and store.linker_state("linker:a") == (1, b"one")
    store.add_global_positions("a", [[1, 7, 42, 0.5, 1.0, 2.0], [2, 7, 42, 1.0, 1.5, 2.0]])  # frame 1 again: kept
    assert store.global_positions("a").shape == (2, 6)
    # a stale owner (it loaded version 0) cannot commit: its whole transaction rolls back
    with pytest.raises(StaleLedgerError), store.transaction():
        store.save_stream_offsets("linker:a", {"c1": 9})
        store.save_linker_state("linker:a", b"stale", version=0)
    assert store.stream_offsets("linker:a")["c1"] == 5 and store.linker_state("linker:a") == (1, b"one")
    assert store.save_linker_state("linker:a", b"two", version=v1) == 2


def test_live_identities_reattach_within_the_window_and_pickle() -> None:
    live = LiveIdentities("a", window_s=1.0, max_speed_mps=2.0, slack_m=0.5)
    first = live.observe(0.0, np.array([1, 2]), np.array([[0.0, 0.0], [10.0, 0.0]]))
    assert (first < 0).all() and first[0] != first[1]  # placeholders until created
    live.observe(0.5, np.array([1]), np.array([[0.2, 0.0]]))  # track 2 is lost
    # 0.5 s later track 9 starts 0.3 m from where track 2 was: it continues 2's identity; track 8 far away does not
    again = live.observe(1.0, np.array([1, 9, 8]), np.array([[0.4, 0.0], [10.3, 0.0], [30.0, 0.0]]))
    assert again[0] == first[0] and again[1] == first[1] and again[2] not in first
    restored = pickle.loads(pickle.dumps(live))
    later = restored.observe(5.0, np.array([10]), np.array([[0.4, 0.0]]))
    assert later[0] not in (first[0], first[1])  # beyond the window: a new identity
