"""Sinks of the frame loop (`stages.Sink`) that write a run folder's files: MOT results, per-box JSON lines, the
annotated video, tracklet summaries and best crops.

Each writes to a temporary name while the run goes and renames into place in `close` (or writes atomically there),
so a reader never sees half a file, and a run that stops part-way still leaves complete files of what it did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.multiview.persistence.tracks import TrackCollector
from trackid.pipelines.stages import Frame, Sink
from trackid.sources.motchallenge import write_mot_results
from trackid.types import Detections, Tracklet

if TYPE_CHECKING:  # the filter's module imports scikit-learn: only its type is needed here
    from trackid.multiview.persistence.models import PersistenceFilter

__all__ = ["AnnotatedVideo", "FilteredMotResultFile", "MotResultFile", "TrackRows", "TrackletFiles", "TracksJsonl"]


class TrackRows(Sink):
    """Every reported box as (frame number, track id, xyxy) arrays: what `write_mot_results` takes."""

    def __init__(self) -> None:
        # frame numbers as ints and counts, not one small array per frame kept for the whole run
        self._frames: list[int] = []
        self._counts: list[int] = []
        self._ids: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
        self._boxes: list[NDArray[np.float64]] = [np.zeros((0, 4))]

    def on_frame(self, frame: Frame, tracked: Detections) -> None:
        self._frames.append(frame.number)
        self._counts.append(len(tracked))
        self._ids.append(tracked.track_id)
        self._boxes.append(tracked.xyxy)

    def arrays(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """(frame, track id, xyxy) of every box so far, aligned, in the order reported."""
        frames = np.repeat(np.asarray(self._frames, np.int64), np.asarray(self._counts, np.int64))
        return frames, np.concatenate(self._ids), np.concatenate(self._boxes)


class MotResultFile(TrackRows):
    """The MOTChallenge result file (`frame,id,x,y,w,h,1,-1,-1,-1`, what TrackEval reads), written at close."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.dropped: list[int] = []  # ids of tracks left out of the file (a filter's, below)

    def written(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """The (frame, track id, xyxy) rows the file holds: `arrays()` without the `dropped` tracks' boxes."""
        frames, ids, boxes = self.arrays()
        if not self.dropped:
            return frames, ids, boxes
        keep = ~np.isin(ids, self.dropped)
        return frames[keep], ids[keep], boxes[keep]

    def close(self) -> dict[str, Path]:
        return {"tracks_mot": write_mot_results(self.path, *self.written())}


class FilteredMotResultFile(MotResultFile):
    """The MOT result file without the tracks a persistence filter calls transient. Tracks are judged whole, at
    close (the filter reads every frame of a track), so this is for replayed detections, whose frames carry them:
    score ranks are ranks among all of a stream's detections, not only the tracked ones."""

    def __init__(
        self, path: Path, model: PersistenceFilter, sequence: str, image_size: tuple[int, int], frame_rate: float
    ) -> None:
        super().__init__(path)
        self.model = model
        self.collector = TrackCollector(sequence, image_size, frame_rate)

    def on_frame(self, frame: Frame, tracked: Detections) -> None:
        super().on_frame(frame, tracked)
        self.collector.add(frame.number, tracked if frame.detections is None else frame.detections, tracked)

    def close(self) -> dict[str, Path]:
        tracks = self.collector.tracks()
        verdicts = self.model.predict(tracks) if tracks else np.zeros(0, np.int64)
        self.dropped = [t.track_id for t, v in zip(tracks, verdicts.tolist(), strict=True) if v == 0]
        return super().close()


class TracksJsonl(Sink):
    """`tracks.jsonl`: one line per reported box (frame, track id, box, score, quality), streamed as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._file = self._tmp.open("w", encoding="utf-8")

    def on_frame(self, frame: Frame, tracked: Detections) -> None:
        self._file.write(
            "".join(
                json.dumps(
                    {
                        "frame": frame.number,
                        "track_id": t,
                        "xyxy": [round(v, 2) for v in box],
                        "score": round(s, 4),
                        "quality": round(q, 4),
                    }
                )
                + "\n"
                for t, box, s, q in zip(
                    tracked.track_id.tolist(),
                    tracked.xyxy.tolist(),
                    tracked.score.tolist(),
                    tracked.quality.tolist(),
                    strict=True,
                )
            )
        )

    def close(self) -> dict[str, Path]:
        self._file.close()
        return {"tracks_jsonl": self._tmp.replace(self.path)}


class AnnotatedVideo(Sink):
    """The frames with each track's box and id drawn in its own stable colour (mp4v)."""

    def __init__(self, path: Path, size: tuple[int, int], frame_rate: float) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter.fourcc(*"mp4v"), frame_rate, size)
        if not self._writer.isOpened():
            raise OSError(f"{self._tmp}: OpenCV cannot write mp4v video here")

    def on_frame(self, frame: Frame, tracked: Detections) -> None:
        if frame.image is None:
            raise ValueError(f"frame {frame.index}: an annotated video needs the frames' images")
        self._writer.write(_annotate(frame.image, tracked))

    def close(self) -> dict[str, Path]:
        self._writer.release()
        return {"annotated_video": self._tmp.replace(self.path)}


class TrackletFiles(Sink):
    """`tracklets.jsonl` (one summary per tracklet, `Tracklet.summary`) and `crops/<track_id>.jpg` (each tracklet's
    best crop), written at close in order of track id."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tracklets: list[Tracklet] = []

    def on_tracklets(self, finished: Sequence[Tracklet]) -> None:
        self.tracklets.extend(finished)

    def close(self) -> dict[str, Path]:
        done = sorted(self.tracklets, key=lambda t: t.track_id)
        summaries = "".join(json.dumps(t.summary()) + "\n" for t in done)
        files = {"tracklets_jsonl": atomic_write_text(self.out / "tracklets.jsonl", summaries)}
        crops_dir = self.out / "crops"
        crops_dir.mkdir(exist_ok=True)
        for tracklet in (t for t in done if t.crops):
            ok, encoded = cv2.imencode(".jpg", tracklet.crops[0])
            if ok:
                atomic_write_bytes(crops_dir / f"{tracklet.track_id}.jpg", encoded.tobytes())
        files["crops"] = crops_dir
        return files


def _annotate(image: NDArray[np.uint8], tracked: Detections) -> NDArray[np.uint8]:
    """Boxes and ids, each id in its own stable colour."""
    canvas = image.copy()
    for track_id, (x1, y1, x2, y2) in zip(tracked.track_id.tolist(), tracked.xyxy.astype(int).tolist(), strict=True):
        colour = _colour(track_id)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(canvas, str(track_id), (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
    return canvas


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 47) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])
