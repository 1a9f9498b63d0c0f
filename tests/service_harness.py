"""A real redis-server and a multi-camera site set for the service tests: started, killed and restarted for real.

`RedisServer` runs Debian's `redis-server` on a free port with AOF on (`appendfsync everysec`, the production
setting), in a folder of its own, so `kill()` (SIGKILL) and `start()` again replay the AOF as a crashed broker
would. `write_sites` writes site files for WILDTRACK and two copies of EPFL Terrace (15 cameras) over shortened
copies of their recorded detections, so a replay lasts seconds, not minutes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis
import yaml

from trackid.identity.stores import make_store
from trackid.pipelines.multicam.central import ledger_name
from trackid.sources.motchallenge import read_mot_file

__all__ = ["RedisServer", "central_command", "edge_command", "positions", "require_redis_server", "write_sites"]

REPO = Path(__file__).resolve().parent.parent


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs Debian's redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server on a free port (AOF on, fsync every second), optionally with a password, or TLS and an
    ACL user (`tls_dir` gets a self-signed certificate made with openssl; the default user is then off)."""

    def __init__(
        self,
        folder: Path,
        *,
        password: str | None = None,
        tls_dir: Path | None = None,
        user: tuple[str, str] | None = None,
    ) -> None:
        self.binary = require_redis_server()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.password = password
        self.user = user
        self.tls_dir = tls_dir
        if tls_dir is not None:
            _self_signed(tls_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls_dir is not None else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--bind", "127.0.0.1", "--dir", str(self.folder)]
        if self.tls_dir is None:
            command += ["--port", str(self.port)]
        else:
            command += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            command += [
                "--tls-cert-file",
                str(self.tls_dir / "cert.pem"),
                "--tls-key-file",
                str(self.tls_dir / "key.pem"),
            ]
            command += ["--tls-ca-cert-file", str(self.tls_dir / "cert.pem")]
        command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        if self.password:
            command += ["--requirepass", self.password]
        if self.user is not None:
            name, secret = self.user
            command += ["--user", name, "on", f">{secret}", "~*", "&*", "+@all", "--user", "default", "off"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.ResponseError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        options: dict[str, object] = {"password": self.password}
        if self.user is not None:
            options = {"username": self.user[0], "password": self.user[1]}
        if self.tls_dir is not None:
            options["ssl_ca_certs"] = str(self.tls_dir / "cert.pem")
        return redis.Redis.from_url(self.url, **options)  # type: ignore[arg-type]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def _self_signed(folder: Path) -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is not installed (.ci/run installs it)")
        pytest.skip("openssl is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    command += ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
    subprocess.run(command, check=True, capture_output=True)


def write_sites(
    folder: Path,
    data: Path,
    *,
    redis_url: str,
    gallery: str | Path,
    frames: dict[str, int],
    first_frame: int = 1,
    names: tuple[str, ...] = ("wildtrack", "terrace", "terrace-b"),
    broker: dict[str, object] | None = None,
) -> list[Path]:
    """Site files (`names` of wildtrack, terrace, terrace-b) in `folder`, each camera's detections cut to frames
    `first_frame`..`frames[kind]` (frame numbers kept)."""
    sites = []
    layouts = {
        "wildtrack": (2.0, 1.0, _wildtrack_cameras(data)),
        "terrace": (25.0, 50.83, _terrace_cameras(data)),
        "terrace-b": (25.0, 50.83, _terrace_cameras(data)),
    }
    for name, (fps, unit, cameras) in layouts.items():
        if name not in names:
            continue
        kind = "wildtrack" if name == "wildtrack" else "terrace"
        for camera in cameras:
            rows = read_mot_file(camera.pop("source"))
            keep = (rows.frame >= first_frame) & (rows.frame <= frames[kind])
            det = folder / name / f"{camera['id']}.txt"
            det.parent.mkdir(parents=True, exist_ok=True)
            table = np.column_stack([rows.frame[keep], -np.ones(keep.sum()), rows.xywh[keep], rows.score[keep]])
            np.savetxt(det, table, fmt="%d,%d,%.6f,%.6f,%.6f,%.6f,%.6f")
            camera["detections"] = str(det)
        config = {
            "site": name,
            "fps": fps,
            "unit_per_metre": unit,
            "cameras": cameras,
            "identities": {"gallery": str(gallery), "window_s": 3.0},
            "service": {
                "broker": {
                    "url": redis_url,
                    "backoff_max_s": 1.0,
                    "resend_window_s": 5.0,
                    "password_env": "TEST_REDIS_PW",
                    **(broker or {}),
                },
                "spool_dir": str(folder / "spool"),
                "camera_timeout_s": 30.0,
                "lease_ttl_s": 3.0,
            },
        }
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        sites.append(path)
    return sites


def _wildtrack_cameras(data: Path) -> list[dict[str, object]]:
    root = data / "multicam" / "wildtrack"
    names = ["CVLab1", "CVLab2", "CVLab3", "CVLab4", "IDIAP1", "IDIAP2", "IDIAP3"]
    return [
        {
            "id": f"WILDTRACK-C{v + 1}",
            "calibration": {
                "intrinsics": str(root / "cameras" / "intrinsic_zero" / f"intr_{n}.xml"),
                "extrinsics": str(root / "cameras" / "extrinsic" / f"extr_{n}.xml"),
                "unit": 0.01,
            },
            "image_size": [1920, 1080],
            "source": root / "det" / f"WILDTRACK-C{v + 1}" / "det" / "det.txt",
        }
        for v, n in enumerate(names)
    ]


def _terrace_cameras(data: Path) -> list[dict[str, object]]:
    root = data / "multicam" / "epfl_terrace"
    return [
        {
            "id": f"terrace1-c{v}",
            "calibration": {"homography": str(root / "cameras" / f"terrace1-c{v}" / "Homography.txt")},
            "image_size": [360, 288],
            "source": root / "det" / f"terrace1-c{v}" / "det" / "det.txt",
        }
        for v in range(4)
    ]


def edge_command(site: Path, camera: str, speed: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trackid",
        "multicam",
        "edge",
        "-c",
        str(site),
        "--camera",
        camera,
        "--speed",
        str(speed),
    ]


def central_command(sites: list[Path], name: str, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "trackid", "--log-level", "INFO", "multicam", "central", "--name", name]
    command += ["--until-done"]
    for site in sites:
        command += ["-c", str(site)]
    return command + list(extra)


def positions(gallery: Path, sites: list[str]) -> dict[str, tuple[np.ndarray, dict[str, int], int]]:
    """Per site: its committed positions (frame, track, identity, time, x, y), cameras' last applied numbers, and
    messages applied (from the linker's state)."""
    import pickle

    store = make_store(gallery, create=False)
    try:
        out = {}
        for site in sites:
            _, blob = store.linker_state(ledger_name(site))
            state = pickle.loads(blob) if blob else None
            out[site] = (
                store.global_positions(site),
                store.stream_offsets(ledger_name(site)),
                0 if state is None else state.messages,
            )
        return out
    finally:
        store.close()
