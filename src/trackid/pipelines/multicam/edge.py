"""`trackid multicam edge`: one camera's worker — its detections tracked into tracklet updates, spooled, published.

The worker runs two loops:
- the camera loop (the calling thread): source -> detector -> this camera's tracker (`CameraTracklets`) -> one
  message per frame (`messages.CameraMessage`, the boxes kept by the camera's `min_score` with their tracklet ids)
  -> the spool. The source is the camera's recorded detections (no detector then), a video file or a stream URL
  (`source:`, detected by the site's `detector:`). Recorded detections and video files are replayed at `speed`
  times real time (0: as fast as possible), a stream at its own pace; the site's `fps` gives the frames' times;
- the sender (a thread): spool -> Redis Stream of the site, in order, pipelined. On a lost broker it never exits:
  it logs the loss once, retries with `broker.Backoff`, and once Redis answers again sends the last
  `resend_window_s` again (the linker drops what it had) and then the backlog.

A restart continues where the spool stopped: the tracker is run again over the frames already spooled (a recorded
source is deterministic, so it is in the very state it was), and the first new message follows the last spooled
one. When the source is finished the worker spools an `end` message (a later segment of the recording, given to the
same spool, continues after it, and the linker takes the camera back), waits until everything is sent, lingers one
resend window (a broker killed right then may lose what it acknowledged last) and returns.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
from numpy.typing import NDArray

from trackid.config import ConfigError
from trackid.detect import Detector
from trackid.geometry import xyxy_to_xywh
from trackid.multiview.site_tracking import CameraTracklets, frame_rows
from trackid.pipelines.multicam.broker import Backoff, connect, stream_key
from trackid.pipelines.multicam.messages import CameraMessage, encode
from trackid.pipelines.multicam.metrics import ServiceMetrics
from trackid.pipelines.multicam.replay import gate_name, wait_at_gate
from trackid.pipelines.multicam.run import camera_detections
from trackid.pipelines.multicam.site import CameraConfig, SiteConfig
from trackid.pipelines.multicam.spool import Spool, SpoolFullError
from trackid.pipelines.video import build_detector
from trackid.sources.motchallenge import MotRows
from trackid.sources.video import VideoSource, is_stream_url

__all__ = ["EdgeSummary", "EdgeWorker", "spool_path"]

log = logging.getLogger(__name__)
SEND_BATCH = 500
"""Messages per pipelined round trip to Redis."""


@dataclass(frozen=True)
class EdgeSummary:
    """What one run of the worker did."""

    camera: str
    frames: int
    resumed_after: int
    published: int
    reconnects: int
    dropped: int


def spool_path(site: SiteConfig, camera_id: str) -> Path:
    return site.service.spool_dir / site.site / f"{camera_id}.db"


class EdgeWorker:
    """One camera of `site` (`camera_id`; may be omitted when the site file lists one camera).

    Args:
        speed: replay speed of recorded detections (1: real time at the site's fps; 0: as fast as possible).
        start_gate: simulated cameras' start gate (`trackid.pipelines.multicam.replay`): once warm, wait there for
            the common time of frame 1; None: start at once.
        metrics_port: serve `/metrics` on this port (0: none).
        stop: set it to stop both loops (the spool keeps everything; a restart continues).
    """

    def __init__(
        self,
        site: SiteConfig,
        camera_id: str | None = None,
        *,
        speed: float = 1.0,
        metrics_port: int = 0,
        stop: threading.Event | None = None,
        start_gate: Path | None = None,
    ) -> None:
        self.site = site
        self.start_gate = start_gate
        self.camera = _camera(site, camera_id)
        if not speed >= 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = float(speed)
        self.stop = stop or threading.Event()
        self.metrics = ServiceMetrics(metrics_port, camera=self.camera.id)
        service = site.service
        self.spool = Spool(
            spool_path(site, self.camera.id),
            max_messages=service.spool_max_messages,
            policy=service.spool_policy or "block",
            camera_id=self.camera.id,
        )
        self.log = logging.LoggerAdapter(log, {"camera_id": self.camera.id})  # JSON logs carry camera_id
        self._source_done = threading.Event()
        self._wake = threading.Event()  # set when a message is spooled (or the source ends): the sender sends it now
        self._published = 0
        self._reconnects = 0

    def run(self) -> EdgeSummary:
        """Track and publish until the source ends and everything is sent, or `stop` is set."""
        resumed = self.spool.last_frame()
        frames = self._frames(resumed)  # opens the source first: a bad one fails before anything runs
        sender = threading.Thread(target=self._send_loop, name=f"send-{self.camera.id}", daemon=True)
        sender.start()
        self.log.info(
            "camera %s: publishing to %s on %s",
            self.camera.id,
            stream_key(self.site.service.broker, self.site.site),
            self.site.service.broker.masked_url(),
        )
        if resumed:
            self.log.info("camera %s: spool holds frames up to %d; continuing after it", self.camera.id, resumed)
        done = 0
        try:
            done = self._camera_loop(frames, resumed)
        finally:
            self._source_done.set()
            self._wake.set()
            sender.join()
            self.spool.close()
        return EdgeSummary(self.camera.id, done, resumed, self._published, self._reconnects, self.spool.dropped)

    def _frames(self, resumed: int) -> Iterator[_Seen]:
        """The camera's frames as (number, xywh, score): replayed detections, or a video's frames detected here."""
        if self.camera.source is None:
            return _recorded(camera_detections(self.camera))
        source = VideoSource(self.camera.source)
        if abs(source.info.frame_rate - self.site.fps) > 0.01 * self.site.fps:
            self.log.warning(
                "camera %s: %s runs at %.3g fps, the site's fps is %.3g; frame times follow the site's",
                self.camera.id,
                source.name,
                source.info.frame_rate,
                self.site.fps,
            )
        # a stream does not replay what was spooled before a restart: its frames are numbered on after them
        offset = resumed if source.url is not None else 0
        return _detected(source, build_detector(self.site.detector), offset)

    def _camera_loop(self, frames: Iterator[_Seen], resumed: int) -> int:
        fps = self.site.fps
        min_score = self.site.min_score_of(self.camera)
        tracklets = CameraTracklets(fps)
        live = self.camera.source is not None and is_stream_url(self.camera.source)
        began, first_live = time.time(), resumed + 1
        first = next(frames, None)
        if self.start_gate is not None:
            if first is not None:  # compiled paths warm before the clock starts: new tracks, then matched ones
                warm = CameraTracklets(fps)
                for f in range(1, 4):
                    warm.update(f, first[1], first[2])
            start_at = wait_at_gate(self.start_gate, gate_name(self.site.site, self.camera.id), self.stop)
            if start_at is None:
                return 0
            began, first_live = start_at, 1
        done = last = 0
        for f, xywh, score in itertools.chain([first] if first is not None else [], frames):
            if self.stop.is_set():
                return done
            last = f
            ids = tracklets.update(f, xywh, score)
            if f <= resumed:
                continue  # fast-forward: the tracker catches up with what the spool already holds
            if self.speed > 0 and not live:  # a live stream comes at its own pace
                due = began + (f - first_live) / (fps * self.speed)
                self.stop.wait(max(0.0, due - time.time()))
            kept = score >= min_score
            boxes = np.column_stack([xywh[kept], score[kept], ids[kept]]).reshape(-1, 6)
            self._spool(f, CameraMessage("frame", self.site.site, self.camera.id, 0, f, time.time(), boxes))
            self.metrics["frames"].inc()
            done += 1
        if self.stop.is_set():
            return done
        if first is None:
            self.log.warning("camera %s: the source gave no frames", self.camera.id)
        finished = resumed >= last and self.spool.last_kind() == "end"
        if not finished:
            end = CameraMessage("end", self.site.site, self.camera.id, 0, max(last, resumed), time.time(), _NO_BOXES)
            self._spool(max(last, resumed), end)
        return done

    def _spool(self, frame: int, message: CameraMessage) -> None:
        fields = encode(message)
        while not self.stop.is_set():
            try:
                self.spool.append(frame, fields)
                self._wake.set()
                break
            except SpoolFullError:
                self.stop.wait(0.05)  # `block`: the source waits for the sender
        self.metrics["spool_depth"].set(self.spool.unsent())

    def _send_loop(self) -> None:
        broker = self.site.service.broker
        client = connect(broker, name=f"trackid-edge-{self.camera.id}")
        with contextlib.suppress(redis.RedisError):
            client.ping()  # connect now, not at the first frame (a failure is the loop's to handle)
        stream = stream_key(broker, self.site.site)
        backoff = Backoff(broker)
        lost_at: float | None = None  # wall time of the last good send before the current loss
        last_good = time.time()
        finished_at: float | None = None
        pruned_at = 0.0
        while not self.stop.is_set():
            try:
                if lost_at is not None:
                    client.ping()
                    resent = self.spool.resend_since(lost_at - broker.resend_window_s)
                    self.log.warning(
                        "camera %s: broker %s is back after %.1f s; sending again the %d messages of the last %.0f s",
                        self.camera.id,
                        broker.masked_url(),
                        time.time() - lost_at,
                        resent,
                        broker.resend_window_s,
                    )
                    lost_at = None
                    backoff.reset()
                    self._reconnects += 1
                    self.metrics["reconnects"].inc()
                    finished_at = None
                batch = self.spool.pending(SEND_BATCH)
                if batch:
                    pipe = client.pipeline(transaction=False)
                    for _, fields in batch:
                        pipe.xadd(stream, fields)  # type: ignore[arg-type]
                    pipe.execute()
                    last_good = time.time()
                    self.spool.mark_sent([seq for seq, _ in batch], last_good)
                    self._published += len(batch)
                    self.metrics["published"].inc(len(batch))
                    self.metrics["broker_up"].set(1)
                    self.metrics["spool_depth"].set(self.spool.unsent())
                    if last_good - pruned_at > 1.0:  # a write (and fsync) of its own: once a second is plenty
                        self.spool.prune(last_good - 3 * broker.resend_window_s)
                        pruned_at = last_good
                    continue
                if self._source_done.is_set():
                    # everything is sent: linger one resend window, in case the broker loses its last writes
                    finished_at = finished_at or time.time()
                    if time.time() - finished_at >= broker.resend_window_s:
                        return
                    client.ping()
                self._wake.wait(0.1)  # the stop event is seen within 0.1 s
                self._wake.clear()
            except redis.AuthenticationError as error:
                wait = broker.backoff_max_s
                if lost_at is None:
                    lost_at = last_good
                    self.log.error(
                        "camera %s: broker %s refused the credentials (user %s, password from %s): %s; retrying "
                        "every %.0f s",
                        self.camera.id,
                        broker.masked_url(),
                        broker.username or "default",
                        broker.password_file or f"${broker.password_env}",
                        error,
                        wait,
                    )
                self.metrics["broker_up"].set(0)
                self.stop.wait(wait)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as error:
                wait = backoff.next()
                if lost_at is None:
                    lost_at = last_good
                    self.log.warning(
                        "camera %s: broker %s lost (%s); spooling and retrying (backoff up to %.0f s)",
                        self.camera.id,
                        broker.masked_url(),
                        error,
                        broker.backoff_max_s,
                    )
                self.metrics["broker_up"].set(0)
                self.stop.wait(wait)


_NO_BOXES = np.empty((0, 6))
_Seen = tuple[int, NDArray[np.float64], NDArray[np.float64]]  # frame number, xywh boxes, scores


def _recorded(detections: MotRows) -> Iterator[_Seen]:
    """Every frame of a detections file, 1 to its last (frames without a row are empty)."""
    for f, rows in frame_rows(detections):
        yield f, detections.xywh[rows], detections.score[rows]


def _detected(source: VideoSource, detector: Detector, offset: int) -> Iterator[_Seen]:
    """A video's frames through `detector`, numbered from `offset` + 1."""
    for index, image in source:
        found = detector.detect(image)
        yield offset + index + 1, xyxy_to_xywh(found.xyxy), found.score


def _camera(site: SiteConfig, camera_id: str | None) -> CameraConfig:
    if camera_id is None:
        if len(site.cameras) != 1:
            ids = ", ".join(c.id for c in site.cameras)
            raise ConfigError(f"site {site.site!r} has {len(site.cameras)} cameras ({ids}): say which with --camera")
        return site.cameras[0]
    for camera in site.cameras:
        if camera.id == camera_id:
            return camera
    raise ConfigError(
        f"site {site.site!r} has no camera {camera_id!r} (cameras: {', '.join(c.id for c in site.cameras)})"
    )
