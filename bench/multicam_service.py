"""Load of the multi-camera service on this machine: cameras x fps x people through Redis, latency to a committed id.

    .venv/bin/python bench/multicam_service.py [--copies 3] [--speed 5] [--frames 400] [--no-append]

Sites: `--copies` copies of WILDTRACK (7 calibrated views, ~20-25 people on the ground per frame, SIMULATED
detections), each its own site and stream; each camera an `trackid multicam edge` process replaying its recorded
detections at `--speed` x the set's 2 fps (5: 10 fps per camera). One `CentralLinker` (in this process) serves all
sites into a SQLite gallery, with redis-server (AOF on, appendfsync everysec) on localhost. Latency is measured per
camera message from the moment the edge spooled it to the commit of its frame by the linker (both clocks are this
machine's), so it includes the spool, the stream, waiting for the frame's other cameras, tracking and the commit.
The edges meet at a start gate once warm and then film in step; latency is reported over the whole run and
sustained (frames after the first 2 s: the first are the cold start of 21 processes waking at one instant on 2
cores, which a deployment, one edge per camera box, does not have).

Second table: the gallery's lookup latency (usearch HNSW, 100,000 128-d vectors, single-vector k=10 searches) idle
and while `rebuild_in_background` compacts the index after 30 % of it was removed, in one run, as p50/p99 and their
ratio: index maintenance must not block lookups.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from report import append_section
from trackid.identity.index import HnswIndex
from trackid.identity.stores import make_store
from trackid.pipelines.multicam.central import CentralLinker
from trackid.pipelines.multicam.replay import replay_cameras
from trackid.pipelines.multicam.site import load_site

REPO = Path(__file__).resolve().parent.parent
TARGET = {"cameras": 20, "fps": 10.0, "people": 20, "p99_s": 0.5}
# The first seconds are a cold start of the whole simulated site at one instant (21 processes waking together on 2
# cores); sustained latency is the rest. Both are reported.
WARM_UP_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=3, help="WILDTRACK copies (sites of 7 cameras each)")
    parser.add_argument("--speed", type=float, default=5.0, help="replay speed (x 2 fps)")
    parser.add_argument("--frames", type=int, default=400, help="frames replayed per camera (WILDTRACK has 400)")
    parser.add_argument("--index-size", type=int, default=100_000)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    load = _service_load(args.copies, args.speed, args.frames)
    lookups = _lookups_during_rebuild(args.index_size)
    table = load + "\n" + lookups
    print(table)
    if not args.no_append:
        append_section(
            "multicam_service.py",
            [
                f"{args.copies} WILDTRACK copies = {7 * args.copies} cameras, each an edge process at "
                f"{2 * args.speed:g} "
                f"fps ({args.frames} frames), one central linker, redis-server {_redis_version()} on localhost",
                "latency: per camera message, spooled at the edge -> its frame committed by the linker; the edges "
                "meet at a start gate once warm, then film in step; 'sustained' leaves out the frames of the first "
                f"{WARM_UP_S:g} s (a cold start of every process at one instant on this machine's 2 cores)",
                f"target (issue #18): >= {TARGET['cameras']} cameras x {TARGET['fps']:g} fps x {TARGET['people']} "
                f"people with p99 <= {TARGET['p99_s'] * 1000:.0f} ms",
            ],
            table,
        )
    return 0


def _service_load(copies: int, speed: float, frames: int) -> str:
    folder = Path(tempfile.mkdtemp(prefix="trackid-load-"))
    port = _free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        paths = _site_files(folder, copies, frames, f"redis://127.0.0.1:{port}/0")
        sites = {p: load_site(p) for p in paths}
        linker = CentralLinker(list(sites.values()), name="bench")
        summary: list[object] = []
        central = threading.Thread(target=lambda: summary.append(linker.run(until_done=True)))
        central.start()
        codes = replay_cameras(sites, speed=speed)
        central.join()
        store = make_store(folder / "gallery.db", create=False)
        people = [store.global_positions(s.site) for s in sites.values()]
        store.close()
    finally:
        redis.terminate()
        redis.wait()
    if any(codes.values()):
        raise SystemExit(f"edges failed: {codes}")
    frames_of, spooled, committed = np.array(linker.latencies).reshape(-1, 3).T
    latency = committed - spooled
    per_frame = np.mean([np.unique(p[:, 0], return_counts=True)[1].mean() for p in people])
    cameras, fps = 7 * copies, 2 * speed
    messages = int(sum(summary[0].applied.values()))  # type: ignore[attr-defined]
    if messages != cameras * (frames + 1):  # each camera's frames and its end, once
        raise SystemExit(f"the linker applied {messages} messages, expected {cameras * (frames + 1)}")
    late = int(sum(summary[0].late.values()))  # type: ignore[attr-defined]
    warm = frames_of > WARM_UP_S * fps
    shutil.rmtree(folder, ignore_errors=True)
    rows = []
    for name, kept in [("whole run", np.ones_like(warm)), (f"sustained (after the first {WARM_UP_S:g} s)", warm)]:
        part = latency[kept]
        rate = kept.sum() / np.ptp(committed[kept])  # messages committed per second over the span
        p50, p95, p99 = np.percentile(part, [50, 95, 99])
        met = (
            cameras >= TARGET["cameras"] and fps >= TARGET["fps"] and per_frame >= TARGET["people"] and late == 0
        ) and p99 <= TARGET["p99_s"]
        rows.append(
            f"| {name} | {cameras} | {fps:g} | {per_frame:.1f} | {len(part)} | {late} | {rate:.0f} | "
            f"{p50 * 1e3:.0f} / {p95 * 1e3:.0f} / {p99 * 1e3:.0f} / {part.max() * 1e3:.0f} | "
            f"{'**met**' if met else 'not met'} |\n"
        )
    return (
        "| over | cameras | fps per camera | people on the ground per frame (mean) | messages | late (dropped) | "
        "committed messages/s | latency p50 / p95 / p99 / max (ms) | target met |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "".join(rows)
    )


def _lookups_during_rebuild(size: int) -> str:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((size, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = HnswIndex(128)
    index.add(np.arange(size, dtype=np.int64), vectors)
    queries = vectors[rng.choice(size, 4000)] + 0.05 * rng.standard_normal((4000, 128)).astype(np.float32)

    def timed(n: int, stop: threading.Thread | None = None) -> np.ndarray:
        out = []
        for q in queries[:n]:
            t = time.perf_counter()
            index.search(q[None], 10)
            out.append(time.perf_counter() - t)
            if stop is not None and not stop.is_alive():
                break
        return np.array(out)

    idle = timed(2000)
    index.remove(np.arange(0, size, 3, dtype=np.int64))
    rebuild = index.rebuild_in_background()
    started = time.perf_counter()
    during = timed(4000, rebuild)
    rebuild.join()
    took = time.perf_counter() - started
    rows = [("idle", idle), ("during the rebuild", during)]
    body = f"| lookups (HNSW, {size:,} vectors, k=10) | n | p50 (ms) | p99 (ms) |\n|---|---|---|---|\n" + "".join(
        f"| {name} | {len(t)} | {np.median(t) * 1e3:.2f} | {np.percentile(t, 99) * 1e3:.2f} |\n" for name, t in rows
    )
    ratio = np.percentile(during, 99) / np.percentile(idle, 99)
    return (
        body
        + f"\nRebuild took {took:.1f} s; lookup p99 during it / idle: **{ratio:.2f}x** (no lookup waited for it).\n"
    )


def _site_files(folder: Path, copies: int, frames: int, url: str) -> list[Path]:
    demo = REPO / "demo" / "sites" / "wildtrack.yaml"
    base = yaml.safe_load(demo.read_text())
    for camera in base["cameras"]:
        rows = np.loadtxt((demo.parent / camera["detections"]).resolve(), delimiter=",", ndmin=2)
        cut = folder / "det" / f"{camera['id']}.txt"
        cut.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(cut, rows[rows[:, 0] <= frames], fmt="%.6g", delimiter=",")
        camera["detections"] = str(cut)
        camera["calibration"] = {
            k: (str((demo.parent / v).resolve()) if isinstance(v, str) else v) for k, v in camera["calibration"].items()
        }
    paths = []
    for i in range(copies):
        config = {
            **base,
            "site": f"wildtrack-{i + 1}",
            "identities": {"gallery": str(folder / "gallery.db")},
            "service": {"broker": {"url": url}, "spool_dir": str(folder / "spool")},
        }
        path = folder / f"wildtrack-{i + 1}.yaml"
        path.write_text(yaml.safe_dump(config))
        paths.append(path)
    return paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return out.split("v=")[1].split()[0] if "v=" in out else "?"


if __name__ == "__main__":
    sys.exit(main())
