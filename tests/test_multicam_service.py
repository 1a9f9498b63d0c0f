"""Fault tests of the multi-camera service with a real redis-server and real processes (nothing mocked).

Fifteen cameras (WILDTRACK's 7, two copies of EPFL Terrace's 4, shortened) replay their recorded detections through
`trackid multicam edge` processes into Redis; `trackid multicam central` links them into global identities in a
SQLite gallery. Each fault (the broker SIGKILLed for 60 s, the linker killed -9 with a standby taking over, an edge
killed -9 and restarted) must end with the positions, identities and message counts of the fault-free run.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from service_harness import RedisServer, central_command, edge_command, positions, write_sites
from trackid.sources.motchallenge import read_mot_file

FRAMES = {"wildtrack": 120, "terrace": 600}
SPEED = 3.0  # wildtrack: 120 frames at 6 fps = 20 s; terrace: 600 frames at 75 fps = 8 s
SITES = ["wildtrack", "terrace", "terrace-b"]


def _start_edges(site_files: list[Path], speed: float) -> dict[str, subprocess.Popen[bytes]]:
    import yaml

    edges = {}
    for path in site_files:
        config = yaml.safe_load(path.read_text())
        for camera in config["cameras"]:
            edges[f"{config['site']}/{camera['id']}"] = subprocess.Popen(
                edge_command(path, camera["id"], speed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
    return edges


def _expected_messages(site_files: list[Path]) -> dict[str, dict[str, int]]:
    """Per site, per camera: the number of messages its edge sends (one per frame 1..last, and the end)."""
    import yaml

    out: dict[str, dict[str, int]] = {}
    for path in site_files:
        config = yaml.safe_load(path.read_text())
        out[config["site"]] = {
            c["id"]: int(read_mot_file(Path(c["detections"])).frame.max()) + 1 for c in config["cameras"]
        }
    return out


def _service_run(
    folder: Path, data: Path, *, speed: float, fault: str | None = None, gallery: str | None = None
) -> dict[str, object]:
    """Run the 15-camera service once (with `fault`; `gallery` a store URL, default SQLite), and read back what
    it committed."""
    broker = RedisServer(folder / "redis")
    broker.start()
    gallery = gallery or str(folder / "gallery.db")
    site_files = write_sites(folder, data, redis_url=broker.url, gallery=gallery, frames=FRAMES)
    central = subprocess.Popen(central_command(site_files, "central-a"), stderr=subprocess.PIPE)
    edges = _start_edges(site_files, speed)
    report: dict[str, object] = {}
    try:
        if fault == "broker":
            time.sleep(4)
            broker.kill()
            time.sleep(60)
            report["edges_up_during_outage"] = [name for name, p in edges.items() if p.poll() is None]
            report["central_up_during_outage"] = central.poll() is None
            broker.start()
        elif fault == "second consumer":
            second = subprocess.Popen(central_command(site_files, "central-b"), stderr=subprocess.PIPE)
            report["second"] = second
        elif fault == "central":
            standby = subprocess.Popen(central_command(site_files, "central-b"), stderr=subprocess.PIPE)
            time.sleep(6)
            central.kill()  # SIGKILL: no lease released, entries left pending
            central.wait()
            report["killed_central_rc"] = central.returncode
            central = standby
        elif fault == "edge":
            client = broker.client()
            stream = "trackid:{wildtrack}:tracklets"
            client.xadd(stream, {"v": "1", "kind": "frame"})  # fields missing
            client.xadd(stream, {"garbage": "x"})
            client.xadd(stream, {**_valid_fields(), "camera": "nobody"})
            time.sleep(3)
            name = "wildtrack/WILDTRACK-C3"
            edges[name].kill()
            edges[name].wait()
            time.sleep(2)
            site, camera = name.split("/")
            edges[name] = subprocess.Popen(
                edge_command(folder / f"{site}.yaml", camera, speed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        for p in edges.values():
            p.wait(timeout=300)
        central.wait(timeout=300)
        report["edge_rcs"] = {name: p.returncode for name, p in edges.items()}
        report["edge_logs"] = {name: p.stderr.read().decode() for name, p in edges.items() if p.stderr is not None}
        assert central.stderr is not None
        report["central_rc"] = central.returncode
        report["central_log"] = central.stderr.read().decode()
        if "second" in report:
            second = report.pop("second")
            assert isinstance(second, subprocess.Popen) and second.stderr is not None
            second.wait(timeout=300)
            report["second_rc"], report["second_log"] = second.returncode, second.stderr.read().decode()
        report["expected"] = _expected_messages(site_files)
        report["committed"] = positions(gallery, SITES)
        report["dead"] = broker.client().xrange("trackid:{wildtrack}:dead")
    finally:
        for p in [*edges.values(), central]:
            if p.poll() is None:
                p.kill()
        broker.stop()
    return report


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, object]:
    return _service_run(tmp_path_factory.mktemp("fault-free"), data, speed=0)


def _assert_same_as(report: dict[str, object], reference: dict[str, object]) -> None:
    assert report["central_rc"] == 0, report["central_log"]
    assert all(rc == 0 for rc in report["edge_rcs"].values()), report["edge_rcs"]  # type: ignore[attr-defined]
    expected = report["expected"]
    committed, reference_committed = report["committed"], reference["committed"]
    for site in SITES:
        rows, offsets, applied = committed[site]  # type: ignore[index]
        ref_rows, _, _ = reference_committed[site]  # type: ignore[index]
        # 0 lost: every camera's every message applied; 0 applied twice: the count is exactly the messages sent
        assert offsets == expected[site], site  # type: ignore[index]
        assert applied == sum(expected[site].values()), site  # type: ignore[index]
        # the same global tracks, positions and identities as without the fault
        assert len(rows) > 100, site
        assert rows.shape == ref_rows.shape, site
        np.testing.assert_array_equal(rows[:, [0, 1, 3, 4, 5]], ref_rows[:, [0, 1, 3, 4, 5]], err_msg=site)
        # identities: the same rows share one; the store numbers them in commit order, which sites interleave
        pairs = np.unique(np.column_stack([rows[:, 2], ref_rows[:, 2]]), axis=0)
        assert len(pairs) == len(np.unique(rows[:, 2])) == len(np.unique(ref_rows[:, 2])), site


def test_fault_free_run_links_every_site(fault_free: dict[str, object]) -> None:
    _assert_same_as(fault_free, fault_free)
    for site in SITES:
        rows = fault_free["committed"][site][0]  # type: ignore[index]
        assert len(np.unique(rows[:, 2])) >= 2, site  # identities were created and given


def test_broker_killed_for_60_s_loses_and_duplicates_nothing(
    tmp_path: Path, data: Path, fault_free: dict[str, object]
) -> None:
    report = _service_run(tmp_path, data, speed=SPEED, fault="broker")
    assert len(report["edges_up_during_outage"]) == 15  # type: ignore[arg-type]
    assert report["central_up_during_outage"]
    _assert_same_as(report, fault_free)
    assert "lost" in report["central_log"] and "is back" in report["central_log"]
    assert report["edge_logs"] and all("is back" in log for log in report["edge_logs"].values())  # type: ignore[attr-defined]


def test_central_killed_a_standby_takes_over(tmp_path: Path, data: Path, fault_free: dict[str, object]) -> None:
    report = _service_run(tmp_path, data, speed=SPEED, fault="central")
    assert report["killed_central_rc"] == -9
    _assert_same_as(report, fault_free)
    assert "taken over" in report["central_log"]


def test_edge_killed_and_restarted_resumes_its_spool_and_bad_messages_are_dead_letters(
    tmp_path: Path, data: Path, fault_free: dict[str, object]
) -> None:
    report = _service_run(tmp_path, data, speed=SPEED, fault="edge")
    _assert_same_as(report, fault_free)  # the three malformed entries changed nothing
    reasons = [fields[b"reason"].decode() for _, fields in report["dead"]]  # type: ignore[attr-defined]
    assert len(reasons) == 3
    assert "field" in reasons[0] and "field v" in reasons[1] and "not a camera of site" in reasons[2]


def _valid_fields() -> dict[str, str]:
    from trackid.pipelines.multicam.messages import CameraMessage, encode

    return {**encode(CameraMessage("frame", "wildtrack", "x", 1, 1, 0.0, np.empty((0, 6)))), "seq": "1"}


def test_restart_keeps_identities(tmp_path: Path, data: Path) -> None:
    """Stop everything after frame 60, start again (the broker from its AOF, the linker from the store) and replay
    frames 61-120 into the same spools: the people on the ground at the cut keep their global ids."""
    broker = RedisServer(tmp_path / "redis")
    broker.start()
    gallery = tmp_path / "gallery.db"
    try:
        for first, last in ((1, 60), (61, 120)):
            sites = write_sites(
                tmp_path,
                data,
                redis_url=broker.url,
                gallery=gallery,
                frames={"wildtrack": last},
                first_frame=first,
                names=("wildtrack",),
            )
            edges = _start_edges(sites, 0)
            assert all(p.wait(timeout=120) == 0 for p in edges.values())
            central = subprocess.run(central_command(sites, "central"), capture_output=True, timeout=300)
            assert central.returncode == 0, central.stderr.decode()
            if first == 1:
                broker.stop()  # everything down
                broker.start()
        rows, offsets, applied = positions(gallery, ["wildtrack"])["wildtrack"]
    finally:
        broker.stop()
    assert set(rows[:, 0].astype(int)) >= {60, 61}
    before, after = set(rows[rows[:, 0] == 60, 2]), set(rows[rows[:, 0] == 61, 2])
    kept = len(before & after) / len(after)
    assert kept >= 0.9, (before, after)
    expected = dict.fromkeys(offsets, 122)  # 120 frames and two ends
    assert offsets == expected and applied == sum(expected.values())


def _wildtrack_20_frames(
    folder: Path, data: Path, broker: RedisServer, options: dict[str, object] | None = None
) -> list[Path]:
    """WILDTRACK's first 20 frames as the one site, on `broker` (with more broker `options`), gallery g.db."""
    kept = {"wildtrack": 20}
    return write_sites(
        folder, data, redis_url=broker.url, gallery=folder / "g.db", frames=kept, names=("wildtrack",), broker=options
    )


def test_wrong_password_is_a_clear_error_and_a_retry_loop(tmp_path: Path, data: Path) -> None:
    import os
    import signal

    broker = RedisServer(tmp_path / "redis", password="s3cret-right")
    broker.start()
    try:
        sites = _wildtrack_20_frames(tmp_path, data, broker)
        env = {**os.environ, "TEST_REDIS_PW": "s3cret-wrong"}
        edge = subprocess.Popen(edge_command(sites[0], "WILDTRACK-C1", 0), env=env, stderr=subprocess.PIPE)
        central = subprocess.Popen(central_command(sites, "c"), env=env, stderr=subprocess.PIPE)
        time.sleep(8)
        assert edge.poll() is None and central.poll() is None  # retrying, not crashed
        for p in (edge, central):
            p.send_signal(signal.SIGTERM)
        logs = [p.communicate(timeout=30)[1].decode() for p in (edge, central)]
        assert edge.returncode == 0 and central.returncode == 0, logs
    finally:
        broker.stop()
    for log in logs:
        assert "refused the credentials" in log and "$TEST_REDIS_PW" in log, log
        assert "s3cret" not in log  # the password itself is never logged
        assert "Traceback" not in log


def test_two_consumers_share_the_sites_and_process_nothing_twice(
    tmp_path: Path, data: Path, fault_free: dict[str, object], postgres_uri: str
) -> None:
    """Two linkers in one consumer group over a PostgreSQL gallery: the sites split between them, every message is
    applied once, and the result is the single linker's."""
    import re
    import uuid

    import psycopg

    name = f"service_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_uri.replace("/postgres?", f"/{name}?", 1)
    report = _service_run(tmp_path, data, speed=SPEED, fault="second consumer", gallery=url)
    assert report["second_rc"] == 0, report["second_log"]
    _assert_same_as(report, fault_free)
    taken = [set(re.findall(r"site (\S+): taken over", str(report[k]))) for k in ("central_log", "second_log")]
    assert taken[0] and taken[1], taken  # each consumer served a share of the sites


def test_tls_and_an_acl_user_with_json_logs(tmp_path: Path, data: Path) -> None:
    """TLS (a self-signed certificate the site names as its CA) and an ACL user, the default user off: every
    message arrives; the linker's JSON log carries camera_id / track_id / identity_id and never the password."""
    import json
    import os

    broker = RedisServer(tmp_path / "redis", tls_dir=tmp_path / "tls", user=("trackid-site", "acl-pw-123"))
    broker.start()
    try:
        tls = {"username": "trackid-site", "tls_ca_file": str(tmp_path / "tls" / "cert.pem")}
        sites = _wildtrack_20_frames(tmp_path, data, broker, tls)
        env = {**os.environ, "TEST_REDIS_PW": "acl-pw-123"}
        edges: dict[str, subprocess.Popen[bytes]] = {}
        edge_log = tmp_path / "edge.jsonl"
        for v in range(1, 8):
            command = edge_command(sites[0], f"WILDTRACK-C{v}", 0) + (["--log-file", str(edge_log)] if v == 1 else [])
            edges[str(v)] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        log_file = tmp_path / "central.jsonl"
        central = subprocess.run(
            central_command(sites, "tls", "--log-file", str(log_file)), env=env, capture_output=True, timeout=300
        )
        assert central.returncode == 0, central.stderr.decode()
        assert all(p.wait(timeout=120) == 0 for p in edges.values())
        rows, offsets, applied = positions(tmp_path / "g.db", ["wildtrack"])["wildtrack"]
    finally:
        broker.stop()
    assert offsets == {f"WILDTRACK-C{v}": 21 for v in range(1, 8)} and applied == 7 * 21
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    edge_records = [json.loads(line) for line in edge_log.read_text().splitlines()]
    assert edge_records and all(r.get("camera_id") == "WILDTRACK-C1" for r in edge_records)
    assert "acl-pw-123" not in log_file.read_text() + edge_log.read_text()
    linked = [r for r in records if "identity_id" in r]
    assert linked and all("track_id" in r for r in linked)
    assert {r["identity_id"] for r in linked} == set(rows[:, 2].astype(int).tolist())
