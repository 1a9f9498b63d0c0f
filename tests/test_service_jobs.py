"""Jobs run for real: `trackid serve` and its worker processes over a SQLite store (or a Redis queue), driven through
HTTP. The artifacts equal the CLI's, a killed server and worker leave the job interrupted and `resume` completes it,
two workers sharing one queue run each job once, a cancel stops the job's process, and the event stream follows
the job to its end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service_harness import RedisServer
from trackid.artifacts import file_sha256
from trackid.service.auth import hash_token

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "demo" / "pets09_s2l1_clip.mp4"
VIDEO_JOB = {"type": "track", "video": str(CLIP), "profile": "fast_cpu"}
"""A job that lasts several heartbeats (detection runs at tens of frames a second; MOT detections alone are tracked
within one), for the tests that must catch a job while it runs."""
TOKEN = "jobs-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEQUENCES = ["MOT17-02-FRCNN", "MOT17-05-FRCNN", "MOT17-09-FRCNN"]  # 1,962 frames: ~10 s of tracking


class Service:
    """`trackid serve` on a free port in its own process group (so kill() takes its workers too, as kill -9 of a
    service's processes would)."""

    def __init__(
        self, folder: Path, roots: list[Path], workers: int = 1, queue: str | None = None, store: str | None = None
    ) -> None:
        self.folder = folder
        self.config = folder / "service.yaml"
        settings: dict[str, Any] = {"data_dir": str(folder / "data"), "roots": [str(r) for r in roots]}
        settings |= {"token_hashes": [hash_token(TOKEN)], "heartbeat_s": 0.3, "stale_s": 2.0}
        if queue is not None:
            settings["queue"] = queue
        if store is not None:
            settings["store"] = store
        folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(settings))
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = [sys.executable, "-m", "trackid", "serve", "--config", str(self.config), "--port", str(self.port)]
        log = (self.folder / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [*command, "--workers", str(self.workers)], stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, (self.folder / "serve.log").read_text()
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=30)

    def kill(self) -> None:
        """SIGKILL to the server and its workers at once (their jobs' processes die with their workers)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)


@pytest.fixture
def sequences(data: Path, tmp_path: Path) -> Path:
    """Three MOT17 sequences as one MOTChallenge folder (<seq>/det/det.txt, <seq>/seqinfo.ini), linked."""
    folder = tmp_path / "mot"
    for seq in SEQUENCES:
        (folder / seq / "det").mkdir(parents=True)
        (folder / seq / "det" / "det.txt").symlink_to(data / "mot17" / "det_frcnn" / seq / "det" / "det.txt")
        (folder / seq / "seqinfo.ini").symlink_to(data / "mot17" / "gt" / "MOT17-train" / seq / "seqinfo.ini")
    return folder


@pytest.fixture
def service(tmp_path: Path, data: Path, sequences: Path) -> Iterator[Service]:
    running = Service(tmp_path / "service", [data, sequences, CLIP.parent])
    running.start()
    yield running
    running.stop()


def _wait(client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}: {job}"
        time.sleep(0.2)


def _results(client: httpx.Client, job_id: str) -> dict[str, str]:
    """The job's artifacts' hashes, without the manifest and log (they carry times and process ids)."""
    listed = client.get(f"/jobs/{job_id}/artifacts").json()
    return {a["name"]: a["sha256"] for a in listed if a["name"] not in ("manifest.json", "log.jsonl")}


def _cli_results(argv: list[str], out: Path) -> dict[str, str]:
    subprocess.run([sys.executable, "-m", "trackid", *argv, "--out", str(out)], check=True, capture_output=True)
    names = [p for p in sorted(out.rglob("*")) if p.is_file() and p.name not in ("manifest.json", "log.jsonl")]
    return {p.relative_to(out).as_posix(): file_sha256(p) for p in names}


def test_a_job_writes_what_the_cli_writes_and_reports_its_progress(
    service: Service, sequences: Path, tmp_path: Path
) -> None:
    with service.client() as client:
        submitted = client.post("/jobs", json={"type": "mot", "detections": str(sequences), "profile": "fast_cpu"})
        assert submitted.status_code == 202
        job = _wait(client, submitted.json()["id"], ("complete", "failed"))
        assert job["state"] == "complete", job
        assert job["metrics"]["sequences"] == 3 and job["metrics"]["run_status"] == "complete"
        assert job["phase"] in SEQUENCES and job["done"] == job["total"] == 1962
        results = _results(client, job["id"])
    cli = _cli_results(["track", "--detections", str(sequences), "--profile", "fast_cpu"], tmp_path / "cli")
    assert results == cli and sorted(results) == [f"{s}.txt" for s in SEQUENCES]


def test_a_killed_server_and_worker_leave_the_job_interrupted_and_resume_completes_it(
    service: Service, tmp_path: Path
) -> None:
    with service.client() as client:
        job_id = client.post("/jobs", json=VIDEO_JOB).json()["id"]
        deadline = time.monotonic() + 60
        while (job := client.get(f"/jobs/{job_id}").json())["state"] != "running" or not job["done"]:
            assert time.monotonic() < deadline and job["state"] in ("queued", "running"), job
            time.sleep(0.1)
    service.kill()  # mid-job
    assert job["done"] < job["total"]
    service.start()
    with service.client() as client:
        interrupted = _wait(client, job_id, ("interrupted",), timeout=30)
        assert "resume it" in interrupted["error"]
        assert client.post(f"/jobs/{job_id}/resume").status_code == 202
        job = _wait(client, job_id, ("complete", "failed"))
        assert job["state"] == "complete" and job["attempts"] == 2, job
        results = _results(client, job_id)
    assert results == _cli_results(["track", str(CLIP), "--profile", "fast_cpu"], tmp_path / "cli")


@pytest.mark.parametrize("queue", ["sqlite store", "redis queue", "redis queue, postgresql store"])
def test_two_workers_sharing_one_queue_run_each_job_once(
    data: Path, sequences: Path, tmp_path: Path, queue: str, request: pytest.FixtureRequest
) -> None:
    """Two workers: claiming from one SQLite store, or reading one Redis stream (as workers on two machines would,
    then with the job state in PostgreSQL, which every machine can reach)."""
    broker, store = None, None
    if "redis" in queue:
        broker = RedisServer(tmp_path / "redis")
        broker.start()
    if "postgresql" in queue:
        import psycopg

        admin = request.getfixturevalue("postgres_uri")
        name = f"jobs_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        store = admin.replace("/postgres?", f"/{name}?", 1)
    service = Service(
        tmp_path / "service", [data, sequences], workers=2, queue=broker.url if broker else None, store=store
    )
    service.start()
    try:
        with service.client() as client:
            seqs = [sequences / s / "det" / "det.txt" for s in SEQUENCES] * 2
            ids = [client.post("/jobs", json={"type": "mot", "detections": str(d)}).json()["id"] for d in seqs]
            jobs = [_wait(client, i, ("complete", "failed")) for i in ids]
        assert [j["state"] for j in jobs] == ["complete"] * 6 and [j["attempts"] for j in jobs] == [1] * 6
        runners = []
        for job_id in ids:
            attempts = [
                line
                for line in (service.folder / "data" / "jobs" / job_id / "output.log").read_text().splitlines()
                if line.startswith("--- attempt")
            ]
            assert len(attempts) == 1, attempts  # run once, by one worker
            runners.append(attempts[0].split(" by ")[1].split(":")[1])
        assert len(set(runners)) == 2  # both workers took jobs
    finally:
        service.stop()
        if broker is not None:
            broker.stop()


def test_a_cancelled_job_stops_its_process_and_can_be_resumed(service: Service) -> None:
    with service.client() as client:
        job_id = client.post("/jobs", json=VIDEO_JOB).json()["id"]
        _wait(client, job_id, ("running",))
        time.sleep(0.5)
        assert client.delete(f"/jobs/{job_id}").status_code == 202
        job = _wait(client, job_id, ("cancelled",), timeout=30)
        assert "resume" in job["error"]
        command = f"--out {service.folder / 'data' / 'jobs' / job_id / 'run'}"
        alive = subprocess.run(["pgrep", "-f", command], capture_output=True, text=True).stdout.strip()
        assert alive == "", f"the job's process still runs: {alive}"
        assert client.post(f"/jobs/{job_id}/resume").status_code == 202
        assert _wait(client, job_id, ("complete", "failed"))["state"] == "complete"


def test_the_event_stream_follows_a_job_to_its_end(service: Service) -> None:
    with service.client() as client:
        job_id = client.post("/jobs", json=VIDEO_JOB).json()["id"]
        events = []
        with client.stream("GET", f"/jobs/{job_id}/events", timeout=120) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
    states = [e["state"] for kind, e in events if kind == "job"]
    assert events[-1][0] == "end" and states[-1] == "complete" and "running" in states
    done = [e["done"] for kind, e in events if kind == "job" and e["done"] is not None]
    assert done == sorted(done) and len(set(done)) >= 3  # progress moved on as it ran


def test_a_failing_command_fails_the_job_with_its_own_error_line(service: Service, tmp_path: Path) -> None:
    bad = tmp_path / "mot" / "broken.txt"
    bad.write_text("not,a,mot,file\n")
    with service.client() as client:
        job_id = client.post("/jobs", json={"type": "mot", "detections": str(bad)}).json()["id"]
        job = _wait(client, job_id, ("complete", "failed"))
    assert job["state"] == "failed" and job["error"].startswith("error: ") and "broken.txt" in job["error"]
    assert "Traceback" not in job["error"]


def test_an_uploaded_file_runs_as_a_job(service: Service, data: Path) -> None:
    det = data / "mot17" / "det_frcnn" / "MOT17-09-FRCNN" / "det" / "det.txt"
    seqinfo = data / "mot17" / "gt" / "MOT17-train" / "MOT17-09-FRCNN" / "seqinfo.ini"
    with service.client() as client:
        uploaded = client.put("/uploads/det.txt", content=det.read_bytes())
        assert uploaded.status_code == 201
        request = {"type": "mot", "detections": uploaded.json()["path"], "seqinfo": str(seqinfo)}
        job = _wait(client, client.post("/jobs", json=request).json()["id"], ("complete", "failed"))
    assert job["state"] == "complete" and job["done"] == 525, job
