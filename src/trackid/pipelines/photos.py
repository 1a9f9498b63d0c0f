"""Photo collections -> one profile per individual (e.g. deer on trail cameras): ingest, tune, validate, monitor.

Data flow of `ingest`: scan (walk the folders, hash every file, read EXIF capture time and camera, cheap integrity
checks) -> bursts (one camera, photos close in capture time: one sighting) -> decode, detect (or the whole image)
-> embed with an ensemble, minus the camera's mean (`CameraCentring`) -> one vector per individual per burst -> the
gallery decides against the tuned, calibrated threshold (attribute gates when labels give them) -> the store.

Resuming: every sighting carries an idempotency key (the burst's first photo's content hash and the individual's
index), and each burst is written in one transaction with its decisions. A re-run after a crash asks the store
which bursts it holds and continues with the rest in the same order, so it ends in the same store as an
uninterrupted run. Files that cannot be used are skipped with a reason; nothing else is lost.

`tune` chooses the ensemble weights and the decision threshold on labelled photos (half the individuals) and
measures them on the other half; `validate` scores a store against labels; `monitor` lists assignments a person
should look at.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import time as clock
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.config import EmbedderConfig, GalleryConfig, PhotosConfig, PhotoTargets
from trackid.detect import Detector
from trackid.embed import Embedder, make_embedder
from trackid.embed.crops import crop_boxes, l2_normalise
from trackid.embed.ensemble import EnsembleEmbedder
from trackid.eval.reid import evaluate_reid
from trackid.geometry import iou_matrix
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.gallery import Gallery
from trackid.identity.report import write_calibration_report
from trackid.identity.stores import GalleryStore, Sighting
from trackid.images import read_image
from trackid.pipelines.video import build_detector

__all__ = [
    "CameraCentring",
    "IngestReport",
    "Labels",
    "Photo",
    "SkippedFile",
    "Tuned",
    "group_bursts",
    "ingest",
    "monitor",
    "scan_photos",
    "tune",
    "validate",
]

EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL, EXIF_BODY_SERIAL = 36867, 42033
TIFF_DATETIME, TIFF_MAKE, TIFF_MODEL = 306, 271, 272
BURST_LINK_IOU = 0.3
"""Detections in consecutive photos of a burst with at least this IoU are the same individual."""


@dataclass(frozen=True, slots=True)
class Photo:
    """One usable-looking file; `time_source` is "exif" or "file", `camera_source` is "exif" or "folder"."""

    path: Path
    sha256: str
    time: float
    time_source: str
    camera: str
    camera_source: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: Path
    reason: str


# -- scanning ---------------------------------------------------------------------------------------------------


def scan_photos(folders: Sequence[Path], config: PhotosConfig) -> tuple[list[Photo], list[SkippedFile]]:
    """Every file under `folders` as a `Photo` or a `SkippedFile` with the reason; exact duplicates (same content)
    are skipped, naming the file they duplicate. Decoding is left to the ingest (it is the expensive part)."""
    extensions = {e.lower() for e in config.extensions}
    photos: list[Photo] = []
    skipped: list[SkippedFile] = []
    first_with: dict[str, Path] = {}
    for root in folders:
        if not root.is_dir():
            raise FileNotFoundError(f"photo folder not found: {root}")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix.lower() not in extensions:
                skipped.append(SkippedFile(path, f"unsupported format ({path.suffix or 'no extension'})"))
                continue
            data = path.read_bytes()
            problem = _integrity_problem(data, path.suffix.lower())
            if problem:
                skipped.append(SkippedFile(path, problem))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in first_with:
                skipped.append(SkippedFile(path, f"duplicate of {first_with[digest]}"))
                continue
            first_with[digest] = path
            taken, camera = _exif(data)
            photos.append(
                Photo(
                    path=path,
                    sha256=digest,
                    time=taken if taken is not None else path.stat().st_mtime,
                    time_source="exif" if taken is not None else "file",
                    camera=camera if camera else (Path(root.name) / path.parent.relative_to(root)).as_posix(),
                    camera_source="exif" if camera else "folder",
                )
            )
    return photos, skipped


def _integrity_problem(data: bytes, suffix: str) -> str | None:
    """Zero-byte and truncated files, which OpenCV would decode to a grey-padded image without a word."""
    if not data:
        return "zero-byte file"
    if suffix in (".jpg", ".jpeg"):
        if not data.startswith(b"\xff\xd8"):
            return "not a JPEG file (no start-of-image marker)"
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return "truncated JPEG (no end-of-image marker)"
    if suffix == ".png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "not a PNG file (bad signature)"
        if b"IEND" not in data[-16:]:
            return "truncated PNG (no IEND chunk)"
    return None


def _exif(data: bytes) -> tuple[float | None, str | None]:
    """Capture time (EXIF DateTimeOriginal, else DateTime; camera-local time read as UTC) and a camera identity
    from the file's EXIF, or None where it has none. The identity needs the body serial number: a team's cameras
    are often one make and model, and merging them would join bursts of different cameras."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None
    sub = exif.get_ifd(EXIF_IFD)
    taken: float | None = None
    stamp = sub.get(EXIF_DATETIME_ORIGINAL) or exif.get(TIFF_DATETIME)
    if isinstance(stamp, str):
        try:
            taken = datetime.strptime(stamp.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
        except ValueError:
            taken = None
    serial = str(sub.get(EXIF_BODY_SERIAL) or "").strip("\x00 ")
    if not serial:
        return taken, None
    parts = [str(v).strip("\x00 ") for v in (exif.get(TIFF_MAKE), exif.get(TIFF_MODEL)) if v]
    return taken, " ".join([*parts, f"#{serial}"])


def group_bursts(photos: Sequence[Photo], gap_s: float, from_file_times: bool = False) -> list[list[Photo]]:
    """Photos of one camera taken within `gap_s` of the previous one, in time order; photos timed only by their
    file are single-photo bursts unless `from_file_times`. Bursts are ordered by time, camera, path."""
    by_camera: dict[str, list[Photo]] = defaultdict(list)
    for photo in photos:
        by_camera[photo.camera].append(photo)
    bursts: list[list[Photo]] = []
    for camera_photos in by_camera.values():
        current: list[Photo] = []
        for photo in sorted(camera_photos, key=lambda p: (p.time, str(p.path))):
            groupable = from_file_times or photo.time_source == "exif"
            same_clock = current and groupable and current[-1].time_source == photo.time_source
            if same_clock and photo.time - current[-1].time <= gap_s:
                current.append(photo)
                continue
            if current:
                bursts.append(current)
            current = [photo]
        if current:
            bursts.append(current)
    return sorted(bursts, key=lambda b: (b[0].time, b[0].camera, str(b[0].path)))


# -- labels -----------------------------------------------------------------------------------------------------


class Labels:
    """Who is in which photo (and attributes such as sex or species), from a CSV and/or a file-name pattern.

    CSV: a header row with `image` and `individual` columns, more columns = attributes; `image` is a path
    (relative to the CSV's folder, or absolute) or a bare file name. Pattern: a regex with a named group
    `individual` searched in the file name, e.g. `^(?P<individual>\\d{4})` for VIPeR.
    """

    def __init__(self, csv_path: Path | None = None, pattern: str | None = None) -> None:
        self._by_path: dict[Path, dict[str, str]] = {}
        self._by_name: dict[str, dict[str, str]] = {}
        self._pattern = re.compile(pattern) if pattern else None
        if self._pattern is not None and "individual" not in self._pattern.groupindex:
            raise ValueError(f"label pattern {pattern!r} needs a named group (?P<individual>...)")
        if csv_path is not None:
            self._read_csv(csv_path)

    def _read_csv(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"labels file not found: {path}")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"image", "individual"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: missing column(s) {sorted(missing)}; header is {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                image = (row.pop("image") or "").strip()
                if not image or not (row.get("individual") or "").strip():
                    raise ValueError(f"{path}:{line}: empty image or individual")
                values = {k: v.strip() for k, v in row.items() if k and v is not None and v.strip()}
                if "/" in image or "\\" in image:
                    self._by_path[(path.parent / image).resolve()] = values
                else:
                    self._by_name[image] = values

    def __call__(self, photo: Path) -> dict[str, str]:
        """The photo's labels ({} when it has none): `individual` plus attributes."""
        found = self._by_path.get(photo.resolve()) or self._by_name.get(photo.name)
        if found is not None:
            return dict(found)
        if self._pattern is not None:
            match = self._pattern.search(photo.name)
            if match:
                return {"individual": match.group("individual")}
        return {}


def _attributes(labels: dict[str, str]) -> dict[str, str]:
    """The labels usable as gates at ingest: everything but who it is."""
    return {k: v for k, v in labels.items() if k != "individual"}


# -- tuned settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraCentring:
    """Each camera's mean member embedding, subtracted before matching.

    A camera's light, colour cast and background shift everything it photographs the same way, so two individuals
    under one camera look more alike than one individual under two. Removing each camera's mean per member (then
    re-normalising) takes that shared part out. On the full sets, rank-1 / mAP: VIPeR 8.5 / 13.9 % -> 11.7 / 18.0 %,
    PRID 2011 16.5 / 25.1 % -> 23.5 / 34.4 %. The means come from the tuning photos. A camera `tune` never saw is
    left as it is, and the ingest report names it.
    """

    means: dict[str, NDArray[np.float32]]
    """Camera -> the members' unit-vector means, concatenated in the ensemble's layout."""

    @classmethod
    def fit(
        cls, member_vectors: Sequence[NDArray[np.float32]], cameras: NDArray[Any], rows: NDArray[np.bool_]
    ) -> CameraCentring:
        stacked = np.concatenate(member_vectors, axis=1)
        return cls({str(c): stacked[rows & (cameras == c)].mean(axis=0) for c in np.unique(cameras[rows])})

    @property
    def digest(self) -> str:
        """Names the centred vector space in the model version, so it never mixes with another."""
        h = hashlib.sha256()
        for camera in sorted(self.means):
            h.update(camera.encode() + b"\0" + np.asarray(self.means[camera], "<f4").tobytes())
        return h.hexdigest()[:10]

    def members(
        self, member_vectors: Sequence[NDArray[np.float32]], cameras: Sequence[str]
    ) -> list[NDArray[np.float32]]:
        """Each member's unit vectors with their camera's mean removed and re-normalised."""
        bounds = np.cumsum([0, *(v.shape[1] for v in member_vectors)])
        means = np.stack([self.means.get(str(c), np.zeros(bounds[-1], np.float32)) for c in cameras])
        return [
            l2_normalise(v - means[:, lo:hi]).astype(np.float32)
            for v, lo, hi in zip(member_vectors, bounds[:-1], bounds[1:], strict=True)
        ]

    def ensemble(self, embedder: Embedder, vectors: NDArray[np.float32], cameras: Sequence[str]) -> NDArray[np.float32]:
        """Centre an ensemble's (or single embedder's) output: split into members, centre, re-weight, re-join."""
        dims, weights = _layout(embedder)
        bounds = np.cumsum([0, *dims])
        parts = [
            vectors[:, lo:hi] / np.sqrt(w) if w > 0 else vectors[:, lo:hi]
            for lo, hi, w in zip(bounds[:-1], bounds[1:], weights, strict=True)
        ]
        centred = self.members(parts, cameras)
        joined = np.concatenate([c * np.sqrt(w) for c, w in zip(centred, weights, strict=True)], axis=1)
        return l2_normalise(joined).astype(np.float32)

    def to_json(self) -> dict[str, list[float]]:
        return {camera: [float(v) for v in mean] for camera, mean in sorted(self.means.items())}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[float]]) -> CameraCentring:
        return cls({str(camera): np.asarray(mean, np.float32) for camera, mean in data.items()})


def _layout(embedder: Embedder) -> tuple[list[int], list[float]]:
    """Member dimensions and weights of an ensemble; one member of weight 1 otherwise."""
    if isinstance(embedder, EnsembleEmbedder):
        return list(embedder.dims), [float(w) for w in embedder.weights]
    return [embedder.dim], [1.0]


@dataclass
class Tuned:
    """What `tune` chose, with the evidence: the ensemble, its calibration and the probability threshold."""

    embedder: EmbedderConfig
    calibrator: MatchCalibrator
    threshold: float
    target_false_positive_rate: float
    evidence: dict[str, Any] = field(default_factory=dict)
    centring: CameraCentring | None = None

    def save(self, folder: Path) -> Path:
        payload = {
            "embedder": self.embedder.model_dump(),
            "calibrator": json.loads(self.calibrator.to_json()),
            "threshold": self.threshold,
            "target_false_positive_rate": self.target_false_positive_rate,
            "camera_means": None if self.centring is None else self.centring.to_json(),
            "evidence": self.evidence,
        }
        return atomic_write_text(folder / "tuned.json", json.dumps(payload) + "\n")

    def make_embedder(self) -> Embedder:
        return make_embedder(self.embedder.name, **self.embedder.params)

    def model_version(self, embedder: Embedder) -> str:
        """The embedder's version, plus the camera centring when there is one (its vectors are another space)."""
        return embedder.version if self.centring is None else f"{embedder.version}+centred-{self.centring.digest}"

    def adjust(self, embedder: Embedder, vectors: NDArray[np.float32], cameras: Sequence[str]) -> NDArray[np.float32]:
        """What ingest and reembed do to fresh embeddings before they meet the gallery."""
        return vectors if self.centring is None else self.centring.ensemble(embedder, vectors, cameras)

    def gallery(self, store: GalleryStore, embedder: Embedder, config: GalleryConfig) -> Gallery:
        """The gallery deciding with these settings (the embedder's model, calibration, threshold) in `store`."""
        return Gallery(
            store,
            model_id=embedder.model_id,
            model_version=self.model_version(embedder),
            calibrator=self.calibrator,
            threshold=self.threshold,
            log_retention=config.log_retention,
        )

    @classmethod
    def load(cls, folder_or_file: Path) -> Tuned:
        path = folder_or_file / "tuned.json" if folder_or_file.is_dir() else folder_or_file
        if not path.is_file():
            raise FileNotFoundError(f"tuned settings not found: {path} (run `trackid photos tune` first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                embedder=EmbedderConfig.model_validate(data["embedder"]),
                calibrator=MatchCalibrator.from_json(json.dumps(data["calibrator"])),
                threshold=float(data["threshold"]),
                target_false_positive_rate=float(data["target_false_positive_rate"]),
                evidence=data.get("evidence", {}),
                centring=None if data.get("camera_means") is None else CameraCentring.from_json(data["camera_means"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a tuned.json written by `trackid photos tune` ({exc})") from None


# -- crops ------------------------------------------------------------------------------------------------------


class _Cropper:
    """Decoded photo -> (box or None for the whole image, crop, score) per individual found."""

    def __init__(self, config: PhotosConfig) -> None:
        self.detector: Detector | None = build_detector(config.detector) if config.detector is not None else None
        self.min_score = config.detector.min_score if config.detector is not None else 0.0
        self.fallback = config.whole_image_fallback

    def __call__(self, image: NDArray[np.uint8]) -> list[tuple[list[float] | None, NDArray[np.uint8], float]]:
        if self.detector is None:
            return [(None, image, 1.0)]
        found = self.detector.detect(image)
        keep = found.score >= self.min_score
        boxes, scores = found.xyxy[keep], found.score[keep]
        crops = crop_boxes(image, boxes)
        out: list[tuple[list[float] | None, NDArray[np.uint8], float]] = [
            ([float(v) for v in box], crop, float(score))
            for box, crop, score in zip(boxes, crops, scores, strict=True)
            if crop.size
        ]
        if not out and self.fallback:
            return [(None, image, 1.0)]
        return out


# -- ingest -----------------------------------------------------------------------------------------------------


@dataclass
class IngestReport:
    photos_found: int = 0
    bursts: int = 0
    bursts_already_stored: int = 0
    sightings_written: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    time_sources: Counter[str] = field(default_factory=Counter)
    camera_sources: Counter[str] = field(default_factory=Counter)
    skipped: list[SkippedFile] = field(default_factory=list)
    without_exif: list[Path] = field(default_factory=list)
    """Photos timed by their file and named by their folder for want of EXIF (kept, not skipped)."""
    uncentred_cameras: list[str] = field(default_factory=list)
    """Cameras `tune` never saw: their photos are matched without camera centring."""
    seconds_per_photo: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        reasons = Counter(
            s.reason.split(" of ")[0] if s.reason.startswith("duplicate") else s.reason for s in self.skipped
        )
        return {
            "photos_found": self.photos_found,
            "bursts": self.bursts,
            "bursts_already_stored": self.bursts_already_stored,
            "sightings_written": self.sightings_written,
            "decisions": dict(self.decisions),
            "time_sources": dict(self.time_sources),
            "camera_sources": dict(self.camera_sources),
            "uncentred_cameras": self.uncentred_cameras,
            "skipped_by_reason": dict(reasons),
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
    photos. Writes `ingest_report.json` into `out` when given."""
    photos, skipped = scan_photos(folders, config)
    bursts = group_bursts(photos, config.burst_gap_s, config.bursts_from_file_times)
    report = IngestReport(photos_found=len(photos), bursts=len(bursts), skipped=skipped)
    report.time_sources.update(p.time_source for p in photos)
    report.without_exif = [p.path for p in photos if p.time_source == "file"]
    report.camera_sources.update(p.camera_source for p in photos)
    if tuned.centring is not None:
        report.uncentred_cameras = sorted({p.camera for p in photos} - set(tuned.centring.means))
    embedder = tuned.make_embedder()
    cropper = _Cropper(config)
    label_of = labels or Labels()
    with gallery_config.open_store() as store:
        gallery = tuned.gallery(store, embedder, gallery_config)
        stored = store.stored_source_keys([_key(b, 0) for b in bursts])
        todo = [b for b in bursts if _key(b, 0) not in stored]
        report.bursts_already_stored = len(bursts) - len(todo)
        total = sum(len(b) for b in todo)
        done = 0
        for chunk in _chunks(todo, batch_photos):
            start = clock.perf_counter()
            prepared = [_prepare(burst, cropper, report) for burst in chunk]
            crops = [crop for individuals in prepared for ind in individuals for crop in ind["crops"]]
            cameras = [b[0].camera for b, inds in zip(chunk, prepared, strict=True) for i in inds for _ in i["crops"]]
            vectors = embedder.embed(crops) if crops else np.empty((0, embedder.dim), np.float32)
            if crops:
                vectors = tuned.adjust(embedder, vectors, cameras)
            per_photo = (clock.perf_counter() - start) / max(1, sum(len(b) for b in chunk))
            cursor = 0
            for burst, individuals in zip(chunk, prepared, strict=True):
                tick = clock.perf_counter()
                if individuals:
                    rows = []
                    for ind in individuals:
                        rows.append(l2_normalise(vectors[cursor : cursor + len(ind["crops"])].sum(axis=0)[None])[0])
                        cursor += len(ind["crops"])
                    attributes = _attributes(label_of(burst[0].path))
                    decided = gallery.identify_vectors(
                        np.stack(rows),
                        time=burst[0].time,
                        quality=[ind["quality"] for ind in individuals],
                        site=site,
                        camera=burst[0].camera,
                        attributes=attributes or None,
                        sources=[{**ind["source"], "attributes": attributes} for ind in individuals],
                        source_keys=[_key(burst, k) for k in range(len(individuals))],
                    )
                    report.sightings_written += len(decided)
                    report.decisions.update(r.match.decision for r in decided)
                share = per_photo + (clock.perf_counter() - tick) / len(burst)
                report.seconds_per_photo += [share] * len(burst)
                done += len(burst)
                if progress is not None:
                    progress(done, total)
    if out is not None:
        atomic_write_text(out / "ingest_report.json", json.dumps(report.to_json(), indent=2) + "\n")
    return report


def _key(burst: Sequence[Photo], individual: int) -> str:
    return f"photo-sha256:{burst[0].sha256}#{individual}"


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


def _prepare(burst: list[Photo], cropper: _Cropper, report: IngestReport) -> list[dict[str, Any]]:
    """The burst's individuals: detections linked across its photos by IoU, each with its crops and a source."""
    found: list[tuple[Photo, list[tuple[list[float] | None, NDArray[np.uint8], float]]]] = []
    for photo in burst:
        try:
            image = read_image(photo.path)
        except (OSError, ValueError) as exc:
            report.skipped.append(SkippedFile(photo.path, str(exc).removeprefix(f"{photo.path}: ")))
            continue
        individuals = cropper(image)
        if not individuals:
            report.skipped.append(SkippedFile(photo.path, "no individual detected"))
            continue
        found.append((photo, individuals))
    chains: list[list[tuple[int, int]]] = []
    previous: list[int] = []
    for p, (_, individuals) in enumerate(found):
        current = [-1] * len(individuals)
        if p and previous:
            before = np.array([_box_or_frame(b) for b, _, _ in found[p - 1][1]])
            now = np.array([_box_or_frame(b) for b, _, _ in individuals])
            overlap = iou_matrix(before, now)
            for i, j in zip(*linear_sum_assignment(-overlap), strict=True):
                if overlap[i, j] >= BURST_LINK_IOU:
                    current[j] = previous[i]
                    chains[previous[i]].append((p, j))
        for j in range(len(individuals)):
            if current[j] < 0:
                current[j] = len(chains)
                chains.append([(p, j)])
        previous = current
    out = []
    for chain in chains:
        members = [(found[p][0], *found[p][1][j]) for p, j in chain]
        best = max(members, key=lambda m: m[2].shape[0] * m[2].shape[1])
        out.append(
            {
                "crops": [m[2] for m in members],
                "quality": float(np.mean([m[3] for m in members])),
                "source": {
                    "image": str(best[0].path),
                    "box": best[1],
                    "photos": [str(m[0].path) for m in members],
                    "sha256": best[0].sha256,
                    "time_source": best[0].time_source,
                    "camera_source": best[0].camera_source,
                },
            }
        )
    return out


def _box_or_frame(box: list[float] | None) -> list[float]:
    """Whole-image individuals link to each other (IoU 1)."""
    return box if box is not None else [0.0, 0.0, 1.0, 1.0]


# -- tune -------------------------------------------------------------------------------------------------------


def tune(
    folders: Sequence[Path],
    labels: Labels,
    *,
    config: PhotosConfig,
    out: Path,
    seed: int = 0,
    grid_step: float = 0.1,
    progress: Callable[[str], None] | None = None,
) -> Tuned:
    """Choose the ensemble weights (mAP on half the individuals) and the threshold for the target false-positive
    rate of decisions (calibrated and replayed on the same half), then measure both on the other half; write
    `tuned.json` and the report."""
    photos, _ = scan_photos(folders, config)
    photos = [p for p in photos if labels(p.path).get("individual")]
    if len(photos) < 4:
        raise ValueError(f"tuning needs labelled photos; found {len(photos)} with an individual label in {folders}")
    ids = np.array([labels(p.path)["individual"] for p in photos])
    cams = np.array([p.camera for p in photos])
    ensemble = make_embedder(config.embedder.name, **config.embedder.params)
    members: list[Embedder] = ensemble.members if isinstance(ensemble, EnsembleEmbedder) else [ensemble]
    cropper = _Cropper(config)
    crops = []
    for photo in photos:
        individuals = cropper(read_image(photo.path))
        if not individuals:
            raise ValueError(f"{photo.path}: no individual detected (tuning needs one per labelled photo)")
        crops.append(max(individuals, key=lambda i: i[2])[1])
    member_vectors = []
    for member in members:
        if progress is not None:
            progress(f"embedding {len(crops)} photos with {member.model_id}")
        member_vectors.append(l2_normalise(member.embed(crops)))
    people = np.unique(ids)
    rng = np.random.default_rng(seed)
    tune_people = set(rng.permutation(people)[: len(people) // 2].tolist())
    part = np.array([i in tune_people for i in ids])
    # the camera means come from the tuning half only, so the held-out half is scored as new photos would be
    centring = CameraCentring.fit(member_vectors, cams, part) if config.camera_centring else None
    if centring is not None:
        member_vectors = centring.members(member_vectors, cams.tolist())
    sims = np.stack([v @ v.T for v in member_vectors]).astype(np.float64)
    # The grid is laid out in standardised units: a member whose similarities spread little (colour histograms)
    # would otherwise need a weight near 1 to count at all, which a coarse grid never tries.
    spread = np.array([_pairs(s, ids, cams, part)[0].std() for s in sims])
    scored = []
    for shares in _weight_grid(len(members), grid_step):
        weights = tuple(float(w) for w in np.asarray(shares) / np.maximum(spread, 1e-9))
        weights = tuple(w / sum(weights) for w in weights)
        scored.append((_retrieval(np.tensordot(weights, sims, axes=1), ids, cams, part), weights))
    (best_scores, best_weights) = max(scored, key=lambda x: (x[0]["mAP"], x[0]["rank1"]))
    fused = np.tensordot(best_weights, sims, axes=1)
    tune_s, tune_same = _pairs(fused, ids, cams, part)
    calibrator = MatchCalibrator().fit(tune_s, tune_same)
    # The threshold is set on decisions, not pairs: a photo is compared with every profile and takes the best,
    # so a pairwise false-match rate of 1 % becomes a false match for most newcomers once there are hundreds of
    # profiles. Replaying the ingest (each photo against the photos before it) measures what a user sees.
    order = sorted(range(len(photos)), key=lambda i: (photos[i].time, photos[i].camera, str(photos[i].path)))
    tune_decisions = _replay(fused, ids, np.array(order), part, calibrator)
    threshold = _decision_threshold(*tune_decisions[:2], config.target_false_positive_rate)
    held_decisions = _replay(fused, ids, np.array(order), ~part, calibrator)
    held_s, held_same = _pairs(fused, ids, cams, ~part)
    accept = calibrator.predict_proba(held_s) >= threshold
    ensemble_scores = _retrieval(fused, ids, cams, ~part)
    member_scores = {
        f"{m.model_id} {m.version}": _retrieval(s, ids, cams, ~part) for m, s in zip(members, sims, strict=True)
    }
    held_out = {
        "individuals": int(len(people) - len(tune_people)),
        "individual_labels": sorted(str(p) for p in people if p not in tune_people),
        "photos": int((~part).sum()),
        "ensemble": ensemble_scores,
        "members": member_scores,
        "ensemble_gain_over_best_member": {
            metric: ensemble_scores[metric] - max(r[metric] for r in member_scores.values())
            for metric in ("rank1", "mAP")
        },
        "decisions": _decision_rates(*held_decisions, threshold),
        "trade_off": [
            {"target": target, **_decision_rates(*held_decisions, _decision_threshold(*tune_decisions[:2], target))}
            for target in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
        ],
        "pairs": {
            "same": int(held_same.sum()),
            "different": int((~held_same).sum()),
            "false_match_rate": float(accept[~held_same].mean()) if (~held_same).any() else None,
            "recall": float(accept[held_same].mean()) if held_same.any() else None,
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    write_calibration_report(
        out / "report",
        held_s,
        held_same,
        calibrator,
        target_false_match_rate=config.target_false_positive_rate,
        title="Photo re-identification: held-out individuals",
    )
    params = dict(config.embedder.params)
    if isinstance(ensemble, EnsembleEmbedder):
        params["weights"] = [round(float(w), 6) for w in best_weights]
    tuned = Tuned(
        embedder=EmbedderConfig(name=config.embedder.name, params=params),
        calibrator=calibrator,
        threshold=float(threshold),
        target_false_positive_rate=config.target_false_positive_rate,
        centring=centring,
        evidence={
            "camera_centring": centring is not None,
            "photos": len(photos),
            "individuals": len(people),
            "cameras": sorted(set(cams.tolist())),
            "seed": seed,
            "tuning_half": best_scores,
            "grid": [{"weights": [round(float(w), 6) for w in wts], **sc} for sc, wts in scored],
            "held_out": held_out,
            "report": "report/report.html",
        },
    )
    tuned.save(out)
    return tuned


def _weight_grid(members: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector on the simplex with the given step (members' shares of the fused similarity)."""
    n = round(1 / step)
    return [tuple(c / n for c in combo) for combo in product(range(n + 1), repeat=members) if sum(combo) == n]


def _retrieval(
    sim: NDArray[np.float64], ids: NDArray[Any], cams: NDArray[Any], rows: NDArray[np.bool_]
) -> dict[str, float]:
    """Rank-1, rank-5 and mAP (%) of each photo of the subset searched among the others. With several cameras a
    photo is searched among the other cameras' photos only (the field's cross-camera protocol: re-identifying
    someone under the camera that just saw them is not the task)."""
    idx = np.flatnonzero(rows)
    sub = sim[np.ix_(idx, idx)].astype(np.float64)
    cam = cams[idx]
    excluded = cam[:, None] == cam[None, :] if len(set(cam.tolist())) > 1 else np.eye(len(idx), dtype=bool)
    sub = np.where(excluded, -1e9, sub)  # ranked last: they cannot take a rank before any real candidate
    scores = evaluate_reid(sub, ids[idx], ids[idx], cam, cam)
    return {"rank1": 100 * scores.rank(1), "rank5": 100 * scores.rank(5), "mAP": 100 * scores.mean_ap}


def _replay(
    sim: NDArray[np.float64],
    ids: NDArray[Any],
    order: NDArray[np.intp],
    rows: NDArray[np.bool_],
    calibrator: MatchCalibrator,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Each photo of the subset, in ingest order, against the photos before it: the calibrated probability of its
    best candidate, whether that candidate is someone else, and whether its individual had been seen before."""
    idx = order[rows[order]]
    sub = sim[np.ix_(idx, idx)]
    earlier = np.tril(np.ones(sub.shape, dtype=bool), k=-1)
    best = np.argmax(np.where(earlier, sub, -np.inf)[1:], axis=1)  # the first photo has nothing to compare with
    queries = np.arange(1, len(idx))
    who = ids[idx]
    known = np.array([who[q] in set(who[:q].tolist()) for q in queries.tolist()], dtype=bool)
    probability = calibrator.predict_proba(sub[queries, best])
    return probability, who[best] != who[queries], known


def _decision_threshold(probability: NDArray[np.float64], wrong: NDArray[np.bool_], target: float) -> float:
    """Lowest probability threshold at which the share of decisions that take someone else's profile is <= target."""
    for t in np.unique(probability):
        if float(np.mean(wrong & (probability >= t))) <= target:
            return float(t)
    return float(np.nextafter(probability.max(initial=0.0), 1.0))  # nothing can be accepted at this target


def _decision_rates(
    probability: NDArray[np.float64], wrong: NDArray[np.bool_], known: NDArray[np.bool_], threshold: float
) -> dict[str, float | int]:
    accept = probability >= threshold
    return {
        "photos": int(len(probability) + 1),
        "false_match_rate": float(np.mean(accept & wrong)),
        "match_rate": float(np.mean(accept)),
        "correct_match_rate_of_known": float(np.mean(accept[known] & ~wrong[known])) if known.any() else 0.0,
        "known_individuals_share": float(np.mean(known)),
    }


def _pairs(
    sim: NDArray[np.float64], ids: NDArray[Any], cams: NDArray[Any], rows: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Similarities and same-individual labels of the subset's cross-camera pairs (all pairs with one camera)."""
    idx = np.flatnonzero(rows)
    a, b = np.triu_indices(len(idx), k=1)
    a, b = idx[a], idx[b]
    if len(set(cams[idx].tolist())) > 1:
        cross = cams[a] != cams[b]
        a, b = a[cross], b[cross]
    return sim[a, b].astype(np.float64), ids[a] == ids[b]


# -- validate ---------------------------------------------------------------------------------------------------


def validate(store: GalleryStore, labels: Labels, targets: PhotoTargets, out: Path) -> dict[str, Any]:
    """Score the store's decisions against labels: assignment rate and accuracy, accuracy of individuals with >= 5
    sightings, false-match rate (decisions that took another individual's profile, of all decisions; also as a
    share of the matches), similarity distributions; PASS/FAIL per target."""
    sightings = [s for s in store.sightings() if s.source and "image" in s.source]
    label_of = {s.id: labels(Path(str(s.source["image"]))).get("individual") for s in sightings if s.source}
    labelled = [s for s in sightings if label_of.get(s.id)]
    if not labelled:
        raise ValueError("no stored sighting has a labelled source image: check --labels / --label-pattern")
    decision: dict[int, tuple[str, float]] = {}
    for record in store.similarity_log():
        if record.query is not None:
            decision[record.query] = (record.decision, record.similarity)  # the latest decision counts
    by_identity: dict[int, Counter[str]] = defaultdict(Counter)
    for s in labelled:
        if s.identity_id is not None:
            by_identity[s.identity_id][str(label_of[s.id])] += 1
    owner = {i: c.most_common(1)[0][0] for i, c in by_identity.items()}
    seen: set[str] = set()
    outcome: Counter[str] = Counter()
    similarity: dict[str, list[float]] = defaultdict(list)
    for s in sorted(labelled, key=lambda s: s.id):
        who = str(label_of[s.id])
        kind, sim = decision.get(s.id, ("unlogged", float("nan")))
        if kind == "match":
            verdict = "match_correct" if owner.get(s.identity_id or -1) == who else "match_wrong"
        elif s.identity_id is None:
            verdict = "unassigned"
        else:
            verdict = "new_but_known" if who in seen else "new_correct"
        outcome[verdict] += 1
        if np.isfinite(sim) and sim > -1:
            similarity[verdict].append(sim)
        seen.add(who)
    total = sum(outcome.values())
    matches = outcome["match_correct"] + outcome["match_wrong"]
    counts = Counter(str(label_of[s.id]) for s in labelled)
    frequent = {who for who, n in counts.items() if n >= 5}
    in_main = 0
    for who in frequent:
        per_identity = Counter(s.identity_id for s in labelled if label_of[s.id] == who)
        in_main += per_identity.most_common(1)[0][1]
    assignment_rate = matches / total
    false_match_rate = outcome["match_wrong"] / total
    accuracy_5plus = in_main / sum(counts[w] for w in frequent) if frequent else None
    metrics = {
        "sightings": total,
        "individuals": len(counts),
        "assignment_rate": assignment_rate,
        "assignment_accuracy": (outcome["match_correct"] + outcome["new_correct"]) / total,
        "false_match_rate": false_match_rate,
        "wrong_share_of_matches": outcome["match_wrong"] / matches if matches else 0.0,
        "accuracy_5plus": accuracy_5plus,
        "individuals_5plus": len(frequent),
        "outcomes": dict(outcome),
    }
    checks = {
        "false_match_rate": false_match_rate <= targets.max_false_match_rate,
        "assignment_rate": assignment_rate >= targets.min_assignment_rate,
        "accuracy_5plus": None if accuracy_5plus is None else accuracy_5plus >= targets.min_accuracy_5plus,
    }
    result = {
        "metrics": metrics,
        "targets": targets.model_dump(),
        "checks": {k: (None if v is None else ("PASS" if v else "FAIL")) for k, v in checks.items()},
        "verdict": "PASS" if all(v is not False for v in checks.values()) else "FAIL",
        "files": ["validate.json", "validate.html", "similarities.png"],
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "similarities.png", _histogram(similarity))
    atomic_write_text(out / "validate.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "validate.html", _validate_html(result))
    return result


def _histogram(similarity: Mapping[str, list[float]]) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    values = [v for vs in similarity.values() for v in vs]
    low, high = min(values, default=0.0), max(values, default=1.0)
    if high - low < 1e-6:  # one value (or none): give the bins a width
        low, high = low - 0.01, high + 0.01
    bins = np.linspace(low, high, 40).tolist()
    for verdict, vs in sorted(similarity.items()):
        if vs:
            ax.hist(vs, bins=bins, alpha=0.5, density=True, label=f"{verdict} ({len(vs)})")
    ax.set_xlabel("similarity to the best candidate profile")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _validate_html(result: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in result["metrics"].items()
    )
    checks = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in result["checks"].items()
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>Photo validation</title>"
        f"<h1>Photo validation: {html.escape(result['verdict'])}</h1>"
        f"<table border=1><tr><th>metric</th><th>value</th></tr>{rows}</table>"
        f"<h2>Targets</h2><pre>{html.escape(json.dumps(result['targets'], indent=2))}</pre>"
        f"<table border=1><tr><th>check</th><th>result</th></tr>{checks}</table>"
        "<h2>Similarity to the best candidate, by outcome</h2><img src='similarities.png'>\n"
    )


# -- monitor ----------------------------------------------------------------------------------------------------


def monitor(store: GalleryStore, min_travel_s: float, out: Path) -> dict[str, Any]:
    """Assignments a person should look at: one individual at two sites closer in time than `min_travel_s`, and
    sightings whose attributes (e.g. sex) contradict each other within one profile."""
    findings: list[dict[str, Any]] = []
    for identity in store.identities():
        sightings = store.sightings(identity.id)
        findings += _travel_findings(identity.id, sightings, min_travel_s)
        findings += _attribute_findings(identity.id, identity.attributes, sightings)
    result = {"identities_checked": len(store.identities()), "findings": findings, "min_travel_s": min_travel_s}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "monitor.json", json.dumps(result, indent=2) + "\n")
    items = "".join(f"<li>{html.escape(f['message'])}</li>" for f in findings) or "<li>nothing suspicious</li>"
    atomic_write_text(
        out / "monitor.html",
        "<!doctype html><meta charset='utf-8'><title>Assignments to review</title>"
        f"<h1>Assignments to review ({len(findings)})</h1><ul>{items}</ul>\n",
    )
    return result


def _travel_findings(identity_id: int, sightings: list[Sighting], min_travel_s: float) -> list[dict[str, Any]]:
    out = []
    for a, b in pairwise(sightings):
        if a.site and b.site and a.site != b.site and b.time - a.time < min_travel_s:
            out.append(
                {
                    "kind": "implausible_travel",
                    "identity": identity_id,
                    "sightings": [a.id, b.id],
                    "message": f"identity {identity_id}: at {a.site} and {b.site} {b.time - a.time:.0f} s apart "
                    f"(sightings {a.id}, {b.id}; minimum travel time {min_travel_s:.0f} s)",
                }
            )
    return out


def _attribute_findings(identity_id: int, known: Mapping[str, Any], sightings: list[Sighting]) -> list[dict[str, Any]]:
    values: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for s in sightings:
        for key, value in ((s.source or {}).get("attributes") or {}).items():
            values[key][str(value)].append(s.id)
    out = []
    for key, seen in values.items():
        expected = known.get(key)
        if len(seen) > 1 or (expected is not None and set(seen) != {str(expected)}):
            detail = ", ".join(f"{v} in sightings {ids[:5]}" for v, ids in seen.items())
            out.append(
                {
                    "kind": "attribute_conflict",
                    "identity": identity_id,
                    "attribute": key,
                    "message": f"identity {identity_id}: {key} = {expected if expected is not None else '?'} but "
                    f"{detail}",
                }
            )
    return out
