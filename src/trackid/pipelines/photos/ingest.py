"""`photos ingest`: photo folders into the gallery, one sighting per individual per burst, resumably.

Data flow: scan (hash, integrity, EXIF time and camera) -> bursts -> each burst's individuals as tracklets (decode,
detect or take the whole image, link across the burst) -> embed every crop with the tuned ensemble, minus the
camera's mean -> one pooled vector per tracklet -> the gallery decides against the tuned, calibrated threshold
(attribute gates when labels give them) -> the store.

Photos, not bursts, are what is stored once: every sighting records the content hashes of the photos it was
seen in, and carries an idempotency key made of a photo's content (the hash of the photo its individual first
appears in, and the individual's rank among those first appearing there). Before grouping, the photos some stored
sighting already holds are set aside, so re-ingesting with another `burst_gap_s`, or with a late photo whose time
falls inside a stored burst, stores only what is new, never a photo twice. Each burst is written in one
transaction with its decisions, so a re-run after a crash sets aside exactly the bursts written and continues with
the rest in the same order: it ends in the same store as an uninterrupted run. Stores written before photo hashes
were recorded are read through the photo paths and burst keys they hold. Files that cannot be used are skipped
with a reason; cameras `tune` never saw are warned of (log, console, manifest); nothing else is lost.
"""

from __future__ import annotations

import json
import logging
import time as clock
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackid.artifacts import atomic_write_text
from trackid.config import GalleryConfig, PhotosConfig
from trackid.identity.stores import GalleryStore
from trackid.pipelines.photos.bursts import PhotoCropper, burst_tracklets
from trackid.pipelines.photos.cameras import CameraRules, HeldBurst, Mode
from trackid.pipelines.photos.labels import Labels, gate_attributes
from trackid.pipelines.photos.tuned import Tuned
from trackid.sources.photos import Photo, SkippedFile, count_reasons, group_bursts, scan_photos
from trackid.types import Tracklet

__all__ = ["IngestReport", "ingest"]

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What an ingest found, wrote and left out (`ingest_report.json`)."""

    photos_found: int = 0
    bursts: int = 0
    bursts_already_stored: int = 0
    photos_already_stored: int = 0
    sightings_written: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    time_sources: Counter[str] = field(default_factory=Counter)
    camera_sources: Counter[str] = field(default_factory=Counter)
    skipped: list[SkippedFile] = field(default_factory=list)
    without_exif: list[Path] = field(default_factory=list)
    """Photos timed by their file and named by their folder for want of EXIF (kept, not skipped)."""
    uncentred_cameras: list[str] = field(default_factory=list)
    """Cameras `tune` never saw: adapted from their own photos (`cameras`), or uncentred with adaptation off."""
    cameras: dict[str, Any] = field(default_factory=dict)
    """Adapted, unadapted and drifted cameras, and what their rules did (`CameraRules`' report)."""
    warnings: list[str] = field(default_factory=list)
    """What about the input makes the result weaker than it looks (also logged)."""
    seconds_per_photo: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "photos_found": self.photos_found,
            "bursts": self.bursts,
            "bursts_already_stored": self.bursts_already_stored,
            "photos_already_stored": self.photos_already_stored,
            "sightings_written": self.sightings_written,
            "decisions": dict(self.decisions),
            "time_sources": dict(self.time_sources),
            "camera_sources": dict(self.camera_sources),
            "uncentred_cameras": self.uncentred_cameras,
            "cameras": self.cameras,
            "warnings": self.warnings,
            "skipped_by_reason": dict(count_reasons(s.reason for s in self.skipped)),
            "seconds_per_photo": {
                f"p{q}": float(np.percentile(self.seconds_per_photo, q)) if self.seconds_per_photo else None
                for q in (50, 99, 100)
            },
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "without_exif": {
                "count": len(self.without_exif),
                "fallback": "capture time = file modification time (camera = folder unless EXIF names a serial)",
                "paths": [str(p) for p in self.without_exif],
            },
        }


def ingest(
    folders: Sequence[Path],
    *,
    site: str,
    config: PhotosConfig,
    gallery_config: GalleryConfig,
    tuned: Tuned,
    labels: Labels | None = None,
    out: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_photos: int = 32,
) -> IngestReport:
    """Ingest photo folders into the configured store; see the module docstring. `progress(done, total)` counts
    photos; `batch_photos` photos' crops are embedded at once. Writes `ingest_report.json` into `out` when given."""
    photos, skipped = scan_photos(folders, config.extensions)
    bursts = group_bursts(photos, config.burst_gap_s, config.bursts_from_file_times)
    report = IngestReport(photos_found=len(photos), bursts=len(bursts), skipped=skipped)
    report.time_sources.update(p.time_source for p in photos)
    report.without_exif = [p.path for p in photos if p.time_source == "file"]
    report.camera_sources.update(p.camera_source for p in photos)
    report.uncentred_cameras = tuned.unknown_cameras([p.camera for p in photos])
    embedder = tuned.make_embedder()
    cropper = PhotoCropper(config)
    label_of = labels or Labels()
    with gallery_config.open_store() as store:
        gallery = tuned.gallery(store, embedder, gallery_config)
        rules = CameraRules(store, gallery, tuned, embedder, config)
        for camera in report.uncentred_cameras:
            _warn_unseen(report, camera, sum(p.camera == camera for p in photos), rules.state(camera), config)
        stored = _stored_photos(store, photos, bursts)
        report.photos_already_stored = len(stored)
        report.bursts_already_stored = sum(all(p.sha256 in stored for p in b) for b in bursts)
        todo = group_bursts(
            [p for p in photos if p.sha256 not in stored], config.burst_gap_s, config.bursts_from_file_times
        )
        total = sum(len(b) for b in todo)
        done = 0

        def write(burst: HeldBurst, mode: Mode) -> None:
            decided = rules.decide(
                burst,
                mode,
                site=site,
                # photos' crops are not quality-scored: a sighting's quality is its detector's confidence
                quality=[float(t.scores.mean()) for t in burst.tracklets],
                sources=[
                    {**_sighting_source(t, burst.photos), "attributes": burst.attributes} for t in burst.tracklets
                ],
                keys=_keys(burst.tracklets, burst.photos),
            )
            report.sightings_written += decided.sightings
            report.decisions.update(decided.decisions)

        for chunk in _chunks(todo, batch_photos):
            start = clock.perf_counter()
            found = [burst_tracklets(burst, cropper, report.skipped) for burst in chunk]
            crops = [crop for tracklets in found for t in tracklets for crop in t.crops]
            vectors = embedder.embed(crops) if crops else np.empty((0, embedder.dim), np.float32)
            per_photo = (clock.perf_counter() - start) / max(1, sum(len(b) for b in chunk))
            cursor = 0
            for burst, tracklets in zip(chunk, found, strict=True):
                tick = clock.perf_counter()
                if tracklets:
                    own = []
                    for t in tracklets:
                        own.append(vectors[cursor : cursor + len(t.crops)])
                        cursor += len(t.crops)
                    embedded = HeldBurst(list(burst), tracklets, own, gate_attributes(label_of(burst[0].path)))
                    for ready, mode in rules.route(embedded):
                        write(ready, mode)
                share = per_photo + (clock.perf_counter() - tick) / len(burst)
                report.seconds_per_photo += [share] * len(burst)
                done += len(burst)
                if progress is not None:
                    progress(done, total)
        with store.transaction():  # the held bursts with their cameras' running sums, or neither
            for waiting in rules.finish():
                write(waiting, "awaiting")
            rules.save_warming()
    report.cameras = rules.report.to_json(rules.adaptation)
    report.warnings += rules.warnings
    if out is not None:
        atomic_write_text(out / "ingest_report.json", json.dumps(report.to_json(), indent=2) + "\n")
    return report


def _warn_unseen(report: IngestReport, camera: str, count: int, state: str, config: PhotosConfig) -> None:
    """A camera `tune` never saw: adapted by an earlier ingest (no warning), warming up, or uncentred (adaptation
    off)."""
    if state == "adapted":
        return
    head = f"camera {camera!r} ({count} photo{'s' if count != 1 else ''}) was not seen by `photos tune`: "
    if state == "warming":
        body = (
            f"its camera mean is learnt from its first {config.adaptation_warmup} crops (photos.adaptation_warmup) "
            "and its photos are held back until then"
        )
    else:
        body = (
            "its photos are matched without camera centring, so its light and background make everyone it "
            "photographs look alike"
        )
    tail = "; tune with photos of it (cameras are named by their folder under the root given, or EXIF serial)"
    report.warnings.append(head + body + tail)
    log.warning(report.warnings[-1], extra={"camera_id": camera})


def _keys(tracklets: Sequence[Tracklet], burst: Sequence[Photo]) -> list[str]:
    """Each tracklet's idempotency key, from photo content only: the photo it first appears in and its rank among
    the tracklets that first appear there (the detector's order). No grouping of bursts enters it."""
    ranks: Counter[str] = Counter()
    keys = []
    for tracklet in tracklets:
        first = burst[int(tracklet.frames[0]) - 1].sha256
        keys.append(f"photo-sha256:{first}/individual-{ranks[first]}")
        ranks[first] += 1
    return keys


def _stored_photos(store: GalleryStore, photos: Sequence[Photo], bursts: Sequence[Sequence[Photo]]) -> set[str]:
    """The content hashes of `photos` that some stored sighting holds. Sightings record their photos' hashes;
    those of stores written before they did are known by their photo paths and by their bursts' keys."""
    stored: set[str] = set()
    by_path = {str(p.path): p.sha256 for p in photos}
    for _, source in store.sources():  # sources only: the vectors of a large store stay on disk
        stored.update(str(h) for h in source.get("photo_sha256") or ())
        stored.update(by_path[str(path)] for path in source.get("photos") or () if str(path) in by_path)
    legacy = {f"photo-sha256:{b[0].sha256}#0": b for b in bursts}
    for key in store.stored_source_keys(list(legacy)):
        stored.update(p.sha256 for p in legacy[key])
    return stored & {p.sha256 for p in photos}


def _sighting_source(tracklet: Tracklet, burst: Sequence[Photo]) -> dict[str, Any]:
    """Where the store finds the sighting again (`reembed` re-reads it): the photo of its best crop and the box
    in it (the photo's frame for a whole-image individual); every photo it was seen in, by path and content hash
    (what a later ingest sets aside); how time and camera were known."""
    best_frame = tracklet.crop_frames[0]
    best = burst[best_frame - 1]
    box = tracklet.boxes[int(np.searchsorted(tracklet.frames, best_frame))]
    return {
        "image": str(best.path),
        "box": [float(v) for v in box],
        "photos": [str(burst[f - 1].path) for f in tracklet.frames.tolist()],
        "photo_sha256": [burst[f - 1].sha256 for f in tracklet.frames.tolist()],
        "sha256": best.sha256,
        "time_source": best.time_source,
        "camera_source": best.camera_source,
    }


def _chunks(bursts: list[list[Photo]], photos_per_chunk: int) -> Iterator[list[list[Photo]]]:
    chunk: list[list[Photo]] = []
    size = 0
    for burst in bursts:
        chunk.append(burst)
        size += len(burst)
        if size >= photos_per_chunk:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
