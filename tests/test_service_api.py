"""The job API in-process (the real app over a real SQLite or PostgreSQL job store): tokens, input roots, limits,
clean errors, and the store's job states. Jobs that run are in test_service_jobs.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trackid.service.app import create_app
from trackid.service.auth import hash_token, token_matches
from trackid.service.settings import ServiceSettings
from trackid.service.store import JobStore

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "inputs"
    (root / "seq" / "det").mkdir(parents=True)
    (root / "seq" / "det" / "det.txt").write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    return root


@pytest.fixture
def client(tmp_path: Path, roots: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(data_dir=tmp_path / "service", roots=[roots], token_hashes=[hash_token(TOKEN)])
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _mot(path: str) -> dict[str, object]:
    return {"type": "mot", "detections": path}


def test_a_job_is_accepted_with_a_location_and_shown_queued(client: TestClient, roots: Path) -> None:
    response = client.post("/jobs", json=_mot(str(roots / "seq" / "det" / "det.txt")), headers=AUTH)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}" and job["state"] == "queued"
    shown = client.get(response.headers["location"], headers=AUTH).json()
    assert shown["request"]["detections"] == str(roots / "seq" / "det" / "det.txt")
    assert [j["id"] for j in client.get("/jobs", headers=AUTH).json()] == [job["id"]]
    assert client.get("/jobs?state=running", headers=AUTH).json() == []


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", TOKEN])
def test_requests_without_a_valid_token_are_refused(client: TestClient, roots: Path, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, url in (("get", "/jobs"), ("get", "/jobs/x"), ("delete", "/jobs/x"), ("get", "/jobs/x/artifacts")):
        response = client.request(method, url, headers=headers)
        assert response.status_code == 401, (method, url, response.text)
    response = client.post("/jobs", json=_mot(str(roots / "seq" / "det" / "det.txt")), headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.get("/health").status_code == 200  # the one open route


def test_tokens_are_compared_by_hash_and_kept_only_as_hashes() -> None:
    hashes = [hash_token("a" * 20), hash_token("b" * 20)]
    assert token_matches(f"Bearer {'b' * 20}", hashes) and not token_matches(f"Bearer {'c' * 20}", hashes)
    assert not token_matches(f"Bearer {'a' * 20}", [])
    with pytest.raises(ValueError, match="not a token hash"):
        ServiceSettings(token_hashes=["plain-token"])


@pytest.mark.parametrize(
    "path, reason",
    [
        ("{root}/../outside.txt", "'..' is not allowed"),
        ("{root}/seq/../seq/det/det.txt", "'..' is not allowed"),
        ("../etc/passwd", "'..' is not allowed"),
        ("/etc/passwd", "outside the service's input roots"),
        ("{root}/link/passwd", "outside the service's input roots"),
        ("{root}/missing.txt", "does not exist"),
        ("{root}/nul\x00byte", "NUL byte"),
    ],
)
def test_inputs_outside_the_roots_are_refused_by_field(client: TestClient, roots: Path, path: str, reason: str) -> None:
    (roots / "link").symlink_to("/etc")
    response = client.post("/jobs", json=_mot(path.format(root=roots)), headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("detections: ") and reason in response.json()["detail"]
    assert client.get("/jobs", headers=AUTH).json() == []  # nothing queued


def test_a_relative_input_is_read_from_the_first_root(client: TestClient) -> None:
    assert client.post("/jobs", json=_mot("seq/det/det.txt"), headers=AUTH).status_code == 202


def test_a_site_file_cannot_reach_outside_the_roots(client: TestClient, roots: Path) -> None:
    site = roots / "site.yaml"
    site.write_text(
        "site: s\nfps: 2\ncameras:\n"
        "  - {id: c1, calibration: {homography: /etc/hostname}, detections: seq/det/det.txt}\n"
        "  - {id: c2, calibration: {homography: /etc/hostname}, detections: seq/det/det.txt}\n"
    )
    response = client.post("/jobs", json={"type": "multicam", "site": str(site)}, headers=AUTH)
    assert response.status_code == 400 and "outside the service's input roots" in response.json()["detail"]


def test_bodies_over_the_limit_are_refused_before_they_are_read(tmp_path: Path, roots: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path / "s", roots=[roots], token_hashes=[hash_token(TOKEN)],
                               max_request_bytes=1000)  # fmt: skip
    with TestClient(create_app(settings)) as small:
        body = json.dumps({**_mot(str(roots / "seq" / "det" / "det.txt")), "params": ["a=" + "x" * 2000]})
        response = small.post("/jobs", content=body, headers={**AUTH, "content-type": "application/json"})
        assert response.status_code == 413 and "1000-byte limit" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "nope"},
        {"type": "mot"},
        {"type": "mot", "detections": "seq/det/det.txt", "unknown": 1},
        {"type": "mot", "detections": "seq/det/det.txt", "overrides": ["no equals sign"]},
        {"type": "track", "video": "seq/det/det.txt", "profile": "turbo"},
        [1, 2, 3],
    ],
)
def test_invalid_requests_get_422_naming_the_field_and_no_traceback(client: TestClient, body: object) -> None:
    response = client.post("/jobs", json=body, headers=AUTH)
    assert response.status_code == 422
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_an_unexpected_error_answers_500_with_an_id_and_no_traceback(tmp_path: Path, roots: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path / "s", roots=[roots], token_hashes=[hash_token(TOKEN)])
    app = create_app(settings)
    app.state.store.recent = None  # a defect in the handler's path: calling it raises TypeError
    with TestClient(app, raise_server_exceptions=False) as broken:
        response = broken.get("/jobs", headers=AUTH)
    assert response.status_code == 500 and "internal error (id " in response.json()["detail"]
    assert "Traceback" not in response.text and "TypeError" not in response.text


def test_cors_is_closed_unless_origins_are_configured(client: TestClient, tmp_path: Path, roots: Path) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in client.options("/jobs", headers=preflight).headers
    settings = ServiceSettings(data_dir=tmp_path / "c", roots=[roots], token_hashes=[hash_token(TOKEN)],
                               cors_origins=["https://review.example"])  # fmt: skip
    with TestClient(create_app(settings)) as open_client:
        allowed = open_client.options("/jobs", headers={**preflight, "Origin": "https://review.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://review.example"
        refused = open_client.options("/jobs", headers=preflight)
        assert "access-control-allow-origin" not in refused.headers


def test_unknown_jobs_and_artifacts_are_404_and_artifact_paths_cannot_climb(client: TestClient, roots: Path) -> None:
    assert client.get("/jobs/none", headers=AUTH).status_code == 404
    job = client.post("/jobs", json=_mot("seq/det/det.txt"), headers=AUTH).json()
    run = Path(client.app.state.settings.jobs_dir) / job["id"] / "run"  # type: ignore[attr-defined]
    run.mkdir(parents=True)
    (run / "result.txt").write_text("1,1,1,1,1,1,1,-1,-1,-1\n")
    listed = client.get(f"/jobs/{job['id']}/artifacts", headers=AUTH).json()
    assert [a["name"] for a in listed] == ["result.txt"] and len(listed[0]["sha256"]) == 64
    assert client.get(listed[0]["url"], headers=AUTH).text.startswith("1,1,")
    for name in ("../../jobs.sqlite", "..%2F..%2Fjobs.sqlite", "%2E%2E/%2E%2E/jobs.sqlite", "/etc/passwd"):
        assert client.get(f"/jobs/{job['id']}/artifacts/{name}", headers=AUTH).status_code == 404, name


def test_cancel_and_resume_follow_the_job_states(client: TestClient) -> None:
    job = client.post("/jobs", json=_mot("seq/det/det.txt"), headers=AUTH).json()
    assert client.post(f"/jobs/{job['id']}/resume", headers=AUTH).status_code == 409  # queued: nothing to resume
    cancelled = client.delete(f"/jobs/{job['id']}", headers=AUTH)
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
    assert client.delete(f"/jobs/{job['id']}", headers=AUTH).status_code == 409
    resumed = client.post(f"/jobs/{job['id']}/resume", headers=AUTH)
    assert resumed.status_code == 202 and resumed.json()["state"] == "queued"


@pytest.fixture(params=["sqlite", "postgres"])
def job_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        store = JobStore(str(tmp_path / "jobs.sqlite"))
    else:
        import psycopg

        admin = request.getfixturevalue("postgres_uri")
        name = f"jobs_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        store = JobStore(admin.replace("/postgres?", f"/{name}?", 1))
    yield store
    store.close()


def test_a_job_is_claimed_once_and_a_silent_worker_leaves_it_interrupted(job_store: JobStore) -> None:
    first = job_store.create("mot", {"type": "mot"}, "/tmp/run-a")
    second = job_store.create("mot", {"type": "mot"}, "/tmp/run-b")
    taken = job_store.claim("w1")
    assert taken is not None and taken.id == first.id and taken.state == "running" and taken.attempts == 1
    assert job_store.claim("w2", first.id) is None  # already running: nobody else gets it
    assert job_store.claim("w2") is not None and job_store.claim("w3") is None  # the second, then none
    assert job_store.progress(first.id, "w1", "tracking", 5, 10)
    assert not job_store.progress(first.id, "w2", "tracking", 6, 10)  # not w2's job
    assert job_store.interrupt_stale(60.0) == 0
    assert job_store.interrupt_stale(-1.0) == 2  # every heartbeat is older than "now + 1 s"
    job = job_store.get(first.id)
    assert job is not None and job.state == "interrupted" and (job.phase, job.done, job.total) == ("tracking", 5, 10)
    assert not job_store.finish(first.id, "w1", "complete", {})  # a late worker cannot end an interrupted job
    assert job_store.resume(first.id) and job_store.claim("w4", first.id).attempts == 2  # type: ignore[union-attr]
    assert job_store.finish(first.id, "w4", "complete", {"points": 3})
    done = job_store.get(first.id)
    assert done is not None and done.state == "complete" and done.metrics == {"points": 3}
    assert second.id != first.id and not job_store.resume(first.id)  # complete: not resumable


def test_an_upload_is_stored_whole_and_can_be_named_in_a_job(client: TestClient) -> None:
    body = b"1,-1,10,10,20,40,0.9,-1,-1,-1\n" * 100
    response = client.put("/uploads/det.txt", content=body, headers=AUTH)
    assert response.status_code == 201, response.text
    stored = Path(response.json()["path"])
    assert stored.read_bytes() == body and response.json()["bytes"] == len(body)
    assert [p.name for p in stored.parent.iterdir()] == ["det.txt"]  # no temporary file left
    job = client.post("/jobs", json=_mot(str(stored)), headers=AUTH)
    assert job.status_code == 202 and job.json()["request"]["detections"] == str(stored)


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b.txt", "a%2Fb.txt", "x" * 300, "sp ace.txt"])
def test_upload_names_must_be_plain_file_names(client: TestClient, name: str) -> None:
    response = client.put(f"/uploads/{name}", content=b"x", headers=AUTH)
    assert response.status_code in (404, 405, 422), (name, response.status_code)


def test_uploads_have_their_own_limit_and_need_the_token(tmp_path: Path, roots: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path / "s", roots=[roots], token_hashes=[hash_token(TOKEN)],
                               max_request_bytes=100, max_upload_bytes=1000)  # fmt: skip
    with TestClient(create_app(settings)) as small:
        assert small.put("/uploads/a.txt", content=b"x" * 500, headers=AUTH).status_code == 201  # over 100: fine
        assert small.put("/uploads/b.txt", content=b"x" * 1001, headers=AUTH).status_code == 413

        def chunks():  # no Content-Length: counted as it streams
            for _ in range(20):
                yield b"x" * 100

        assert small.put("/uploads/c.txt", content=chunks(), headers=AUTH).status_code == 413
        assert small.put("/uploads/d.txt", content=b"x").status_code == 401
    names = sorted(p.name for p in (tmp_path / "s" / "uploads").rglob("*") if p.is_file())
    assert names == ["a.txt"]  # the refused ones left nothing behind


@pytest.mark.parametrize(
    "text, message",
    [
        ("token_hashes: [plain]\n", "token_hashes: not a token hash"),
        ("bogus: 1\n", "bogus: Extra inputs are not permitted"),
        ("stale_s: .inf\n", "stale_s is inf"),
        ("- a list\n", "expected a mapping at the top level"),
    ],
)
def test_a_bad_service_file_is_refused_in_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    from typer.testing import CliRunner

    from trackid.cli import app

    config = tmp_path / "service.yaml"
    config.write_text(text)
    for command in ("serve", "worker"):
        result = CliRunner().invoke(app, [command, "--config", str(config)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output and "errors.pydantic.dev" not in result.output
