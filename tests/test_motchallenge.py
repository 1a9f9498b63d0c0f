"""MOTChallenge files: every variant in the wild reads, every malformed file fails with `file:line: what`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from trackid.sources.motchallenge import (
    FrameDetections,
    MotFormatError,
    detections_by_frame,
    read_deepsort_detections,
    read_mot_file,
    read_seqinfo,
    write_mot_results,
)

SEQINFO = "[Sequence]\nname=S\nimDir=img1\nframeRate=25\nseqLength=5\nimWidth=640\nimHeight=480\nimExt=.jpg\n"


def _write(tmp_path: Path, text: str, name: str = "det.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("line", "score"),
    [
        ("2,-1,10,20,30,40", 1.0),
        ("2,-1,10,20,30,40,0.75", 0.75),
        ("2,3,10,20,30,40,1,1,0.5", 1.0),
        ("2,-1,10,20,30,40,0.75,-1,-1,-1", 0.75),
    ],
    ids=["6 columns", "7 columns", "9 columns", "10 columns"],
)
def test_reads_every_column_variant(tmp_path: Path, line: str, score: float) -> None:
    rows = read_mot_file(_write(tmp_path, line + "\n"))
    assert len(rows) == 1
    assert rows.frame.tolist() == [2]
    assert rows.xywh.tolist() == [[10, 20, 30, 40]]
    assert rows.score.tolist() == [score]


def test_rows_are_sorted_by_frame_and_blank_lines_skipped(tmp_path: Path) -> None:
    text = "3,1,0,0,5,5,0.3\n\n1,2,0,0,6,6,0.1\n   \n3,4,0,0,7,7,0.2\n1,5,0,0,8,8,0.4\n\n"
    rows = read_mot_file(_write(tmp_path, text))
    assert rows.frame.tolist() == [1, 1, 3, 3]
    assert rows.track_id.tolist() == [2, 5, 1, 4]  # stable: file order within a frame
    assert rows.score.tolist() == [0.1, 0.4, 0.3, 0.2]


def test_empty_file_gives_no_rows(tmp_path: Path) -> None:
    rows = read_mot_file(_write(tmp_path, "\n\n"))
    assert len(rows) == 0
    assert rows.xywh.shape == (0, 4)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("1,-1,0,0,5,5,0.9\n\n1,-1,a,0,5,5,0.9\n", 3, "not a number"),
        ("1,-1,0,0,5,5,0.9\n1,-1,0,0,5\n", 2, "found 5"),
        ("1,-1,0,0,5,5,0.9,1\n", 1, "found 8"),
        ("1,-1,0,0,5,5,0.9\n1,-1,0,0,5,5\n", 2, "line 1 has 7"),
        ("1,-1,0,0,5,5\n\n\n2,-1,0,0,0,5\n", 4, "width and height must be positive"),
        ("1,-1,0,0,5,-2\n", 1, "width and height must be positive"),
        ("1,-1,0,0,5,5\n2,-1,nan,0,5,5\n", 2, "NaN"),
        ("1,-1,0,0,5,5\n0,-1,0,0,5,5\n", 2, "frame must be a positive integer"),
        ("1.5,-1,0,0,5,5\n", 1, "frame must be a positive integer"),
        ("1,2.5,0,0,5,5\n", 1, "id must be an integer"),
    ],
    ids=[
        "non-numeric",
        "too few columns",
        "8 columns",
        "mixed counts",
        "zero size",
        "negative size",
        "NaN",
        "frame 0",
        "fractional frame",
        "fractional id",
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(MotFormatError) as info:
        read_mot_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert what in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.txt"
    with pytest.raises(MotFormatError, match=re.escape(f"{path}: file not found")):
        read_mot_file(path)


def test_reads_seqinfo(tmp_path: Path) -> None:
    info = read_seqinfo(_write(tmp_path, SEQINFO, "seqinfo.ini"))
    assert (info.name, info.frame_rate, info.length, info.width, info.height) == ("S", 25.0, 5, 640, 480)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("name=S\n", "not a valid ini file"),
        ("[Other]\nname=S\n", "missing [Sequence] section"),
        (SEQINFO.replace("seqLength=5\n", ""), "no 'seqLength'"),
        (SEQINFO.replace("frameRate=25", "frameRate=fast"), "'frameRate' must be a float"),
        (SEQINFO.replace("imWidth=640", "imWidth=0"), "'imWidth' must be positive"),
        (SEQINFO.replace("seqLength=5", "seqLength=5.5"), "'seqLength' must be a int"),
    ],
    ids=["no section header", "wrong section", "missing key", "non-numeric", "zero", "fractional length"],
)
def test_bad_seqinfo(tmp_path: Path, text: str, what: str) -> None:
    path = _write(tmp_path, text, "seqinfo.ini")
    with pytest.raises(MotFormatError) as info:
        read_seqinfo(path)
    assert str(info.value).startswith(f"{path}: ")
    assert what in str(info.value)


def test_missing_seqinfo(tmp_path: Path) -> None:
    with pytest.raises(MotFormatError, match="seqinfo file not found"):
        read_seqinfo(tmp_path / "seqinfo.ini")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    frame = np.array([2, 1, 2, 1])
    track_id = np.array([5, 7, 3, 2])
    xyxy = np.array([[0, 0, 10, 20], [1.5, 2.25, 4, 8], [100, 50, 130.5, 120], [3, 3, 4, 4]], float)
    path = write_mot_results(tmp_path / "out" / "seq.txt", frame, track_id, xyxy)
    rows = read_mot_file(path)
    order = np.lexsort((track_id, frame))  # written sorted by frame, then id
    assert rows.frame.tolist() == frame[order].tolist()
    assert rows.track_id.tolist() == track_id[order].tolist()
    expected_xywh = np.column_stack([xyxy[order, :2], xyxy[order, 2:] - xyxy[order, :2]])
    np.testing.assert_allclose(rows.xywh, expected_xywh, atol=0.005)
    assert not list((tmp_path / "out").glob(".*.tmp")), "temporary file left behind"


def test_detections_by_frame_splits_filters_and_pads(tmp_path: Path) -> None:
    text = "1,-1,0,0,10,10,0.9\n1,-1,5,5,10,10,0.2\n3,-1,1,1,2,2,0.8\n9,-1,1,1,2,2,0.8\n"
    frames = detections_by_frame(read_mot_file(_write(tmp_path, text)), num_frames=4, min_score=0.5)
    assert [len(f) for f in frames] == [1, 0, 1, 0]  # frame 9 is past the sequence; frame 1's 0.2 is dropped
    assert frames[0].xyxy.tolist() == [[0, 0, 10, 10]]
    assert frames[2].score.tolist() == [0.8]


def test_deepsort_detections_per_frame_with_embeddings(tmp_path: Path) -> None:
    rows = np.array(
        [[2, -1, 10, 20, 30, 40, 0.9, 1.0, 0.0], [1, -1, 0, 0, 5, 5, 0.5, 0.0, 1.0], [4, -1, 0, 0, 1, 1, 0.1, 1, 1]]
    )
    np.save(tmp_path / "f.npy", rows)
    frames = read_deepsort_detections(tmp_path / "f.npy", 3)
    assert [len(f) for f in frames] == [1, 1, 0]  # frame 4 lies past the 3 asked for
    np.testing.assert_allclose(frames[1].xyxy, [[10, 20, 40, 60]])
    np.testing.assert_allclose(frames[1].score, [0.9])
    np.testing.assert_allclose(frames[1].embedding, [[1.0, 0.0]])
    assert frames[2].embedding.shape == (0, 2)


def test_deepsort_detections_without_embeddings_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((3, 7)))
    with pytest.raises(MotFormatError, match=r"f\.npy: expected \(rows, 7 MOT columns \+ embedding\), got shape"):
        read_deepsort_detections(tmp_path / "f.npy", 3)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """Issue #15, item 13: spreadsheets on Windows start a CSV export with a UTF-8 byte-order mark."""
    det = tmp_path / "det.txt"
    det.write_bytes(b"\xef\xbb\xbf2,-1,10,20,30,40,0.75\n")
    assert read_mot_file(det).frame.tolist() == [2]
    ini = tmp_path / "seqinfo.ini"
    ini.write_bytes(b"\xef\xbb\xbf" + SEQINFO.encode())
    assert read_seqinfo(ini).length == 5


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("1,-1,1e300,20,30,40,0.9", "box or score beyond"),
        ("1,-1,10,20,30,1e300,0.9", "box or score beyond"),
        ("1,-1,10,20,30,40,1e300", "box or score beyond"),
        ("1e300,-1,10,20,30,40,0.9", "frame must be at most"),
        ("2000000000,-1,10,20,30,40,0.9", "frame must be at most"),
        ("1,1e300,10,20,30,40,0.9", "id must be an integer"),
    ],
    ids=["x", "height", "score", "frame 1e300", "frame 2e9", "id"],
)
def test_absurd_values_are_refused_with_file_and_line(tmp_path: Path, line: str, what: str) -> None:
    """Issue #15, item 3: values no camera produces overflow box areas or make a tracker step through 10^300 frames."""
    path = _write(tmp_path, "1,-1,10,20,30,40,0.9\n" + line + "\n")
    with pytest.raises(MotFormatError, match=re.escape(f"{path}:2: {what}")):
        read_mot_file(path)


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (("frameRate=25", "frameRate=inf"), "'frameRate' must be between"),
        (("frameRate=25", "frameRate=1e-300"), "'frameRate' must be between"),
        (("frameRate=25", "frameRate=nan"), "'frameRate' must be positive"),
        (("seqLength=5", "seqLength=2000000000"), "'seqLength' must be at most 500,000"),
        (("imWidth=640", "imWidth=99999999999"), "image size 99999999999x480 exceeds"),
    ],
    ids=["inf frame rate", "tiny frame rate", "nan frame rate", "huge length", "huge width"],
)
def test_absurd_seqinfo_values_are_refused(tmp_path: Path, change: tuple[str, str], what: str) -> None:
    path = _write(tmp_path, SEQINFO.replace(*change), "seqinfo.ini")
    with pytest.raises(MotFormatError, match=re.escape(f"{path}: {what}")):
        read_seqinfo(path)


@pytest.mark.parametrize("name", ["seqinfo.ini", "det.txt"])
def test_a_binary_file_is_refused_by_name(tmp_path: Path, name: str) -> None:
    """Issue #15, item 11: a binary seqinfo.ini raised a raw UnicodeDecodeError."""
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * 2)
    with pytest.raises(MotFormatError, match=re.escape(f"{path}: not a UTF-8 text file")):
        read_seqinfo(path) if name == "seqinfo.ini" else read_mot_file(path)


def test_frame_detections_store_no_frame_until_it_is_read(tmp_path: Path) -> None:
    """Issue #15, item 10: a long declared sequence costs memory for the file's rows, not for every frame."""
    import tracemalloc

    rows = read_mot_file(_write(tmp_path, "1,-1,0,0,10,10,0.9\n3,-1,1,1,2,2,0.8\n"))
    tracemalloc.start()
    frames = FrameDetections.from_rows(rows, num_frames=1_000_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000
    assert len(frames) == 1_000_000
    assert [len(f) for f in frames[:4]] == [1, 0, 1, 0]
    assert len(frames[-1]) == 0
    with pytest.raises(IndexError):
        frames[1_000_000]
