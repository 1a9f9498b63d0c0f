"""Stage 5 of an episode: `report.html`, a contact sheet of each identity's best faces and a timeline of who is on
screen when, for a person to check the identities at a glance.

Writes `report.html` (the metrics, one row per identity: its faces, screen time, cohesion and flags),
`contact_sheet.jpg` (a row per identity: its sharpest accepted faces, 64 x 64) and `timeline.png` (a lane per
identity, a bar per track). Plain HTML, no scripts (`trackid.reports.html`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.reports.html import heading, image, page, table
from trackid.reports.plots import figure_png
from trackid.sources.video import VideoSource

__all__ = ["FACES_PER_IDENTITY", "write_report"]

FACES_PER_IDENTITY = 8
TILE = 64


def write_report(video: Path, out: Path) -> dict[str, Path]:
    """Run stage 5 on the run folder `out` (stages 1-4 done): the clean identities and tracks."""
    identities = json.loads((out / "identities_clean.json").read_text())
    metrics = json.loads((out / "track_metrics.json").read_text())
    tracks = [json.loads(line) for line in (out / "tracks_clean.jsonl").read_text().splitlines()]
    faces = [json.loads(line) for name in ("faces.jsonl", "faces_clean.jsonl") for line in _lines(out / name)]
    owner = {t: i["identity_id"] for i in identities["identities"] for t in i["track_ids"]}
    best: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for face in sorted((f for f in faces if f["accepted"]), key=lambda f: -f["blur"]):
        identity = owner.get(int(face["track_id"]))
        if identity is not None and len(best[identity]) < FACES_PER_IDENTITY:
            best[identity].append(face)
    order = [i["identity_id"] for i in identities["identities"]]
    files = {
        "contact_sheet": atomic_write_bytes(out / "contact_sheet.jpg", _contact_sheet(video, order, best)),
        "timeline": atomic_write_bytes(out / "timeline.png", _timeline(order, owner, tracks)),
    }
    clean = metrics.get("after_cleanup", {})
    keys = ["tracks", "identities", "tracks_per_minute", "short_track_fraction", "id_switch_rate"]
    keys += ["singleton_fraction", "largest_cluster_fraction", "shots", "duration_s"]
    summary = table(
        ["metric", "before cleanup", "after"],
        [[k, str(metrics.get(k, "")), str(clean.get(k, metrics.get(k, "")))] for k in keys],
    )
    rows = [
        [
            str(i["identity_id"]),
            str(len(i["track_ids"])),
            str(i["faces"]),
            f"{i['screen_time_s']:.1f}",
            f"{i['cohesion_score']:.3f}",
            ", ".join(flag for flag in ("outlier", "low_cohesion") if i[flag]) or "-",
        ]
        for i in identities["identities"]
    ]
    threshold = identities["threshold"]
    document = page(
        f"episode {video.name}",
        heading(f"Faces in {video.name}"),
        summary,
        heading(
            f"Identities (threshold {threshold['threshold']:.4f}, {threshold['source']}"
            + (f": {threshold['reason']}" if threshold["reason"] else "")
            + ")",
            2,
        ),
        table(["identity", "tracks", "faces", "screen time (s)", "cohesion", "flags"], rows),
        heading("Best faces (a row per identity, in the table's order)", 2),
        image("contact_sheet.jpg"),
        heading("Who is on screen when", 2),
        image("timeline.png"),
    )
    files["report"] = atomic_write_text(out / "report.html", document)
    return files


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _contact_sheet(video: Path, order: list[int], best: dict[int, list[dict[str, Any]]]) -> bytes:
    wanted: dict[int, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
    for row, identity in enumerate(order):
        for column, face in enumerate(best.get(identity, [])):
            wanted[int(face["frame"])].append((row, column, face))
    sheet = np.full((max(len(order), 1) * TILE, FACES_PER_IDENTITY * TILE, 3), 255, np.uint8)
    last = max(wanted, default=0)
    for index, frame in VideoSource(video, max_frames=last) if last else ():
        for row, column, face in wanted.get(index + 1, []):
            x1, y1, x2, y2 = (round(v) for v in face["xyxy"])
            crop = frame[y1:y2, x1:x2]
            if crop.size:
                tile = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_AREA)
                sheet[row * TILE : (row + 1) * TILE, column * TILE : (column + 1) * TILE] = tile
    ok, encoded = cv2.imencode(".jpg", sheet)
    if not ok:
        raise ValueError("could not encode the contact sheet")
    return bytes(encoded.tobytes())


def _timeline(order: list[int], owner: dict[int, int], tracks: list[dict[str, Any]]) -> bytes:
    fig = Figure(figsize=(10, 0.4 * max(len(order), 1) + 1.2))
    ax = fig.subplots()
    lane = {identity: k for k, identity in enumerate(order)}
    for track in tracks:
        identity = owner.get(int(track["track_id"]))
        if identity is None:
            continue
        ax.broken_barh([(track["start_s"], max(track["end_s"] - track["start_s"], 0.05))], (lane[identity] - 0.4, 0.8))
    ax.set_yticks(range(len(order)), [str(i) for i in order])
    ax.set_ylim(-0.6, max(len(order), 1) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_ylabel("identity")
    return figure_png(fig)
