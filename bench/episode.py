"""`trackid episode` on the ASSEMBLED test episode, scored against its exact labels, per profile.

    .venv/bin/python bench/episode.py [--profiles fast_cpu balanced] [--embedder dlib] [--no-append]

The episode is `episode_assembly.py`'s (YouTube Faces clips: cuts, two side-by-side pairs, a person back in other
footage, a clip repeated, a dissolve from one person into another without a cut; 640 x 240, 30 fps, 47.5 s). Per
profile, the whole pipeline runs into a fresh folder and:
- face recall: labelled faces of the processed frames matched by a tracked face at IoU >= 0.5;
- each track takes the person whose labelled faces it matches most (tracks of unlabelled faces, e.g. a player
  turned away behind the labelled one, are left out of the identity scores and counted);
- pairwise F over the tracks (scikit-learn's `pair_confusion_matrix`) and B-cubed F (precision and recall per track,
  averaged: not in scikit-learn, so written out here from Bagga & Baldwin's definition);
- mixed tracks: tracks whose matched faces belong to more than one person (an id switch inside a track), after
  cleanup (a track it split is scored as its parts); the label-free id_switch_rate and cleanup's splits beside it;
- the returning person (Alek_Wek, two different clips) in one identity, and no identity with two faces of a frame;
- screen time per person: the seconds of its identity (the identity holding most of the person's tracks) against
  the labelled seconds;
- speed: the video's duration / the pipeline's wall time (all stages, models loaded once per stage); and a 1-hour
  320 x 240 episode's (the first 10 s of the centre slot) and a 1-hour 720p episode's time (the same 10 s upscaled).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sklearn.metrics.cluster import pair_confusion_matrix

from episode_assembly import assemble
from report import append_section
from trackid.config import load_config
from trackid.geometry import iou_matrix
from trackid.pipelines.episode.run import run_episode
from trackid.sources.video import VideoSource


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["fast_cpu", "balanced", "high_accuracy"])
    parser.add_argument(
        "--embedder",
        choices=["auto", "dlib", "faceres", "faceres-aligned"],
        default="auto",
        help="episode.embedder (default: auto)",
    )
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    overrides = [f"episode.embedder={args.embedder}"]
    folder = Path(tempfile.mkdtemp(prefix="trackid-episode-"))
    info = assemble(folder / "episode")
    rows, times = [], []
    for profile in args.profiles:
        config, _ = load_config(profile=profile, overrides=overrides)
        out = folder / profile
        started = time.perf_counter()
        run_episode(folder / "episode" / "episode.avi", config, out)
        wall = time.perf_counter() - started
        scores = _score(out, folder / "episode", info)
        scores["f_before"] = _score(out, folder / "episode", info, clean=False)["pairwise_f"]
        rows.append((profile, scores, float(info["frames"]) / float(info["fps"]) / wall))  # type: ignore[arg-type]
        times.append(_screen_times(scores))
    source = folder / "episode" / "episode.avi"
    small = _centre_clip(source, folder / "small.avi", 300, 1, (320, 240))
    hd = _centre_clip(source, folder / "hd.avi", 300, 3, (1280, 720))
    hour, small_speed = [], []
    for profile in args.profiles:
        config, _ = load_config(profile=profile, overrides=overrides)
        for video, sink in ((small, small_speed), (hd, hour)):
            started = time.perf_counter()
            run_episode(video, config, folder / f"{video.stem}-{profile}")
            per_video_second = (time.perf_counter() - started) / (300 / 30.0)
            sink.append(
                f"{profile} {1 / per_video_second:.1f}x"
                if video is small
                else f"{profile} {per_video_second * 60:.0f} min"
            )
    shutil.rmtree(folder, ignore_errors=True)
    table = (
        "| profile | embedder | face recall @ IoU 0.5 | tracks (unlabelled) | tracks / min | short tracks | "
        "mixed tracks | id_switch_rate (label-free) | cleanup splits | identities | pairwise F (before cleanup) | "
        "B-cubed F | "
        "returning person one identity | two faces of a frame in one identity | worst screen-time error | "
        "x real time |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for profile, s, speed in rows:
        table += (
            f"| {profile} | {s['embedder']} | {s['recall']:.3f} | {s['tracks']} ({s['unlabelled']}) | "
            f"{s['tracks_per_minute']:.1f} | {s['short_track_fraction']:.2f} | {s['mixed']:.2f} | "
            f"{s['id_switch_rate']:.2f} | {s['splits']} | {s['identities']} | {s['pairwise_f']:.3f} "
            f"({s['f_before']:.3f}) | "
            f"{s['bcubed_f']:.3f} | {'yes' if s['returning_one'] else 'no'} | {s['two_faces']} | "
            f"{s['worst_screen_error']:.1%} | {speed:.1f} |\n"
        )
    table += "\n" + "\n".join(times)
    table += (
        "\n\nThe first 10 s of the episode's centre slot as a 320x240 video, x real time: "
        + ", ".join(small_speed)
        + ". A 1-hour 720p episode (the same 10 s upscaled to 960x720 in a 1280x720 frame, all stages, x 360): "
        + ", ".join(hour)
        + ".\n"
    )
    print(table)
    if not args.no_append:
        append_section(
            "episode.py",
            [
                f"ASSEMBLED episode from YouTube Faces clips: {info['frames']} frames at {info['fps']:g} fps, 640x240, "
                f"5 people, {len(info['segments'])} segments, the last a dissolve (bench/episode_assembly.py); "
                f"embedder {args.embedder}",
                "identity scores over the tracks that match labelled faces; B-cubed F from its definition",
            ],
            table,
        )
    return 0


def _centre_clip(video: Path, out: Path, frames: int, scale: int, frame_size: tuple[int, int]) -> Path:
    """The first `frames` of the episode's centre slot (its first clips, 320 x 240), `scale` times larger, centred in
    a `frame_size` frame: a 320 x 240 episode (scale 1) or a 720p stand-in with the same faces, larger (scale 3)."""
    width, height = frame_size
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frame_size)
    left = (width - 320 * scale) // 2
    for _, image in VideoSource(video, max_frames=frames):
        canvas = np.zeros((height, width, 3), np.uint8)
        slot = image[:, 160:480]
        canvas[:, left : left + 320 * scale] = (
            slot if scale == 1 else cv2.resize(slot, (320 * scale, 240 * scale), interpolation=cv2.INTER_CUBIC)
        )
        writer.write(canvas)
    writer.release()
    return out


def _score(out: Path, episode: Path, info: dict[str, Any], clean: bool = True) -> dict[str, Any]:
    """The scores of the run in `out`: of its clean identities (after cleanup), or of the cluster stage's."""
    gt = np.loadtxt(episode / "gt.txt", delimiter=",")
    people = info["people"]
    faces = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    metrics = json.loads((out / "track_metrics.json").read_text())
    identities = json.loads((out / ("identities_clean.json" if clean else "identities.json")).read_text())
    identities = identities["identities"]
    if clean:  # a track cleanup split: each face goes to the part holding its frame
        parts = [json.loads(line) for line in (out / "tracks_clean.jsonl").read_text().splitlines()]
        parts = [p for p in parts if p["parent_track_id"] is not None]
        for face in faces:
            for p in parts:
                if p["parent_track_id"] == face["track_id"] and p["first_frame"] <= face["frame"] <= p["last_frame"]:
                    face["track_id"] = p["track_id"]
                    break
    owner = {t: i["identity_id"] for i in identities for t in i["track_ids"]}
    by_frame: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for face in faces:
        by_frame[int(face["frame"])].append(face)
    matched, labelled = 0, 0
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for frame in sorted(by_frame) if by_frame else []:
        truth = gt[gt[:, 0] == frame]
        boxes = truth[:, 2:6].copy()
        boxes[:, 2:] += boxes[:, :2]
        found = by_frame[frame]
        if len(truth) and found:
            iou = iou_matrix(boxes, np.array([f["xyxy"] for f in found]))
            for g in range(len(truth)):
                best = int(np.argmax(iou[g]))
                if iou[g, best] >= 0.5:
                    matched += 1
                    votes[int(found[best]["track_id"])][int(truth[g, 1])] += 1
    processed = sorted({int(f) for f in gt[:, 0]} & set(range(1, int(info["frames"]) + 1, metrics["frame_stride"])))
    labelled = int(np.isin(gt[:, 0], processed).sum())
    tracks = sorted(owner)
    person = {t: votes[t].most_common(1)[0][0] for t in tracks if votes[t]}
    scored = [t for t in tracks if t in person]
    truth_labels = [person[t] for t in scored]
    predicted = [owner[t] for t in scored]
    (_, fp), (fn, tp) = pair_confusion_matrix(truth_labels, predicted)
    pairwise = 2 * tp / max(2 * tp + fp + fn, 1)
    bcubed = _bcubed_f(truth_labels, predicted)
    alek = next(int(k) for k, v in people.items() if v == "Alek_Wek")
    alek_ids = {owner[t] for t in scored if person[t] == alek}
    two = Counter((int(f["frame"]), owner.get(int(f["track_id"]))) for f in faces if int(f["track_id"]) in owner)
    fps = float(info["fps"])
    seconds_per_frame = metrics["frame_stride"] / fps
    truth_seconds = {
        p: len({int(r[0]) for r in gt if int(r[1]) == p and int(r[0]) in processed}) * seconds_per_frame
        for p in map(int, people)
    }
    screen: dict[int, tuple[float, float]] = {}
    for p in map(int, people):
        ids = Counter(owner[t] for t in scored if person[t] == p)
        if ids:
            main_id = ids.most_common(1)[0][0]
            mine = next(i for i in identities if i["identity_id"] == main_id)
            screen[p] = (mine["screen_time_s"], truth_seconds[p])
        else:
            screen[p] = (0.0, truth_seconds[p])
    errors = [abs(a - b) / b for a, b in screen.values() if b > 0]
    return {
        "embedder": str(np.load(out / "track_embeddings.npz")["embedder"]),
        "id_switch_rate": metrics.get("id_switch_rate", float("nan")),
        "splits": len(json.loads((out / "cleanup_report.json").read_text())["splits"]),
        "recall": matched / max(labelled, 1),
        "tracks": len(tracks),
        "unlabelled": len(tracks) - len(scored),
        "tracks_per_minute": (metrics["after_cleanup"] if clean else metrics)["tracks_per_minute"],
        "short_track_fraction": (metrics["after_cleanup"] if clean else metrics)["short_track_fraction"],
        "mixed": float(np.mean([len(votes[t]) > 1 for t in scored])) if scored else 0.0,
        "identities": len(identities),
        "pairwise_f": pairwise,
        "bcubed_f": bcubed,
        "returning_one": len(alek_ids) == 1,
        "two_faces": sum(1 for n in two.values() if n > 1),
        "worst_screen_error": max(errors, default=0.0),
        "screen": {people[str(p)]: v for p, v in screen.items()},
    }


def _bcubed_f(truth: list[int], predicted: list[int]) -> float:
    if not truth:
        return 0.0
    t, p = np.asarray(truth), np.asarray(predicted)
    same_cluster = p[:, None] == p[None, :]
    same_person = t[:, None] == t[None, :]
    both = (same_cluster & same_person).sum(axis=1)
    precision = float(np.mean(both / same_cluster.sum(axis=1)))
    recall = float(np.mean(both / same_person.sum(axis=1)))
    return 2 * precision * recall / (precision + recall)


def _screen_times(scores: dict[str, Any]) -> str:
    return "screen time (identity s / labelled s): " + ", ".join(
        f"{name} {a:.1f}/{b:.1f}" for name, (a, b) in scores["screen"].items()
    )


if __name__ == "__main__":
    sys.exit(main())
