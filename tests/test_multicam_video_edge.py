"""An edge worker on a video: frames -> the site's detector -> the camera's tracker -> the stream (real redis-server).

The clip is the first frames of the demo video (PETS09-S2L1); the detector is the shipped default. The published
boxes must be the detector's own (above the camera's min_score), with tracklet ids that persist across frames.
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from service_harness import REPO, RedisServer
from trackid.config import ConfigError, DetectorConfig
from trackid.pipelines.multicam.edge import EdgeWorker
from trackid.pipelines.multicam.messages import decode
from trackid.pipelines.multicam.site import load_site
from trackid.pipelines.video import build_detector
from trackid.sources.video import VideoSource

FRAMES = 12


def _clip(path: Path, codec: str = "mp4v") -> Path:
    source = VideoSource(REPO / "demo" / "pets09_s2l1_clip.mp4", max_frames=FRAMES)
    size = (source.info.width, source.info.height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 7.0, size)
    for _, image in source:
        writer.write(image)
    writer.release()
    return path


def test_edge_tracks_a_video_through_the_detector(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        np.savetxt(tmp_path / "H.txt", np.diag([0.01, 0.01, 1.0]))
        site = {
            "site": "pets",
            "fps": 7.0,
            "min_score": 0.4,
            "cameras": [
                {
                    "id": "view1",
                    "calibration": {"homography": "H.txt"},
                    "source": _clip(tmp_path / "clip.mp4").name,
                    "image_size": [768, 576],
                }
            ],
            "service": {"broker": {"url": server.url, "resend_window_s": 0.2}},
        }
        (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
        worker = EdgeWorker(load_site(tmp_path / "site.yaml"), speed=0, metrics_port=_free_port())
        summary = worker.run()
        assert summary.frames == FRAMES and summary.published == FRAMES + 1
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics.port}/metrics", timeout=10) as reply:
            scraped = reply.read().decode()  # Prometheus text
        assert f'trackid_published_total{{camera="view1"}} {FRAMES + 1}.0' in scraped
        assert f'trackid_frames_total{{camera="view1"}} {FRAMES}.0' in scraped
        assert 'trackid_spool_depth{camera="view1"} 0.0' in scraped

        entries = server.client().xrange("trackid:{pets}:tracklets")
        messages = [decode(fields) for _, fields in entries]
        assert [m.kind for m in messages] == ["frame"] * FRAMES + ["end"]
        detector = build_detector(DetectorConfig())
        first = next(iter(VideoSource(tmp_path / "clip.mp4")))[1]
        found = detector.detect(first)
        kept = found.score >= 0.4
        assert kept.sum() >= 3, "the demo's first frame has several people"
        np.testing.assert_allclose(messages[0].boxes[:, 4], found.score[kept])
        np.testing.assert_allclose(messages[0].boxes[:, :2], found.xyxy[kept, :2])
        ids = np.concatenate([m.boxes[:, 5] for m in messages[:-1]])
        tracked, counts = np.unique(ids[ids >= 0], return_counts=True)
        assert len(tracked) >= 3 and (counts >= FRAMES // 2).sum() >= 3, "people keep their tracklet ids"
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_camera_needs_detections_or_a_source(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "H.txt", np.eye(3))
    site = {"site": "s", "fps": 5, "cameras": [{"id": "c", "calibration": {"homography": "H.txt"}}]}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    with pytest.raises(ConfigError, match="give its recorded `detections` or a `source`"):
        load_site(tmp_path / "site.yaml")


def test_a_stream_url_is_kept_as_it_is(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "H.txt", np.eye(3))
    camera = {"id": "c", "calibration": {"homography": "H.txt"}, "source": "rtsp://cam-1.local:554/stream"}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump({"site": "s", "fps": 5, "cameras": [camera]}))
    assert load_site(tmp_path / "site.yaml").cameras[0].source == "rtsp://cam-1.local:554/stream"


def test_video_source_reads_a_stream_url(tmp_path: Path) -> None:
    """A URL goes to OpenCV as it is (FFmpeg's http reader here; rtsp:// takes the same path): the frames of the
    clip served over HTTP are the file's."""
    import functools
    import http.server
    import threading

    clip = _clip(tmp_path / "clip.avi", "MJPG")  # a container readable front to back, as streams are
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        streamed = [image for _, image in VideoSource(url)]
    finally:
        server.shutdown()
    local = [image for _, image in VideoSource(clip)]
    assert len(streamed) == len(local) == FRAMES
    np.testing.assert_array_equal(streamed[0], local[0])


def test_an_unreachable_stream_is_a_clear_error() -> None:
    import re

    from trackid.sources.video import VideoError

    with pytest.raises(VideoError, match=re.escape("rtsp://127.0.0.1:9/none: cannot open the stream")):
        VideoSource("rtsp://127.0.0.1:9/none")
