"""Test episodes ASSEMBLED from the YouTube Faces clips, with exact labels: there is no labelled TV episode here.

    .venv/bin/python bench/episode_assembly.py --out runs/episodes/assembled [--max-frames-per-clip N]

The clips (5 people, 6 clips, one labelled face box in every frame; `datasets.ytf_clips`) are scaled to 320 x 240
(all are 4:3) and laid out on a 640 x 240 canvas at the clips' 30 fps, in segments joined by hard cuts:
1. each clip of the first five once, alone (centred): cuts between people;
2. two clips side by side (two faces on screen at once, so two people in one frame), twice, as long as the shorter;
3. Alek_Wek's second clip (the person of segment 1's fifth clip, seen again in other footage), then the first clip
   repeated (a person who comes back, in the same footage);
4. a dissolve without a cut: the fourth clip cross-fades into the third over `DISSOLVE` frames in the same place,
   so a face track can run from one person into the other (an identity switch for cleanup to find). Faces are
   labelled with the clip that dominates the blend.

Writes `episode.avi` (MJPG: decodable front to back by any OpenCV), `gt.txt` (MOTChallenge ground truth: frame,
person id, x, y, w, h, 1, 1, 1; person ids 1.. in `episode.json`), and `episode.json` (fps, size, people, and each
segment's frames and clips). The same command always writes the same episode.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from datasets import YtfClip, ytf_clips  # bench/ is on sys.path when a script here runs

FPS = 30.0
DISSOLVE = 15  # frames of a cross-fade
SLOT = (320, 240)  # width, height of one clip on the canvas
CANVAS = (2 * SLOT[0], SLOT[1])


@dataclass(frozen=True)
class Placed:
    """A clip in a segment: which one and where its slot's left edge is on the canvas."""

    clip: YtfClip
    x: int
    then: YtfClip | None = None  # dissolves into this clip halfway through the segment


def layout(clips: list[YtfClip]) -> list[list[Placed]]:
    """The segments (see the module docstring), each a list of clips shown together."""
    by_name = {c.name: c for c in clips}
    first = [c for c in clips if c.name != "Alek_Wek4"][:5]
    centre = (CANVAS[0] - SLOT[0]) // 2
    segments = [[Placed(c, centre)] for c in first]
    segments.append([Placed(first[0], 0), Placed(first[3], SLOT[0])])
    segments.append([Placed(first[1], 0), Placed(first[2], SLOT[0])])
    segments.append([Placed(by_name["Alek_Wek4"], centre)])
    segments.append([Placed(first[0], centre)])
    segments.append([Placed(first[3], centre, then=first[2])])
    return segments


def assemble(out: Path, *, max_frames_per_clip: int | None = None, root: Path | None = None) -> dict[str, object]:
    """Write the episode into `out`; returns what `episode.json` holds."""
    clips = ytf_clips() if root is None else ytf_clips(root)
    people = sorted({c.person for c in clips})
    out.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out / "episode.part.avi"), cv2.VideoWriter_fourcc(*"MJPG"), FPS, CANVAS)
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write MJPG AVI into {out}")
    rows: list[tuple[float, ...]] = []
    segments = []
    frame = 0
    for segment in layout(clips):
        length = min(min(len(p.clip.frames), len(p.then.frames) if p.then else 10**9) for p in segment)
        if max_frames_per_clip is not None:
            length = min(length, max_frames_per_clip)
        segments.append(
            {
                "first_frame": frame + 1,
                "last_frame": frame + length,
                "clips": [
                    {"clip": p.clip.name, "person": p.clip.person, "x": p.x}
                    | ({"then_clip": p.then.name, "then_person": p.then.person} if p.then else {})
                    for p in segment
                ],
            }
        )
        for k in range(length):
            canvas = np.zeros((CANVAS[1], CANVAS[0], 3), np.uint8)
            frame += 1
            for placed in segment:
                image, box = _scaled(placed.clip, k)
                person = placed.clip.person
                if placed.then is not None:
                    alpha = float(np.clip((k - (length - DISSOLVE) / 2) / DISSOLVE, 0.0, 1.0))
                    if alpha > 0:
                        other, other_box = _scaled(placed.then, k)
                        image = cv2.addWeighted(image, 1 - alpha, other, alpha, 0.0)
                        if alpha >= 0.5:
                            box, person = other_box, placed.then.person
                canvas[:, placed.x : placed.x + SLOT[0]] = image
                x, y, w, h = box
                rows.append((frame, people.index(person) + 1, x + placed.x, y, w, h, 1, 1, 1))
            writer.write(canvas)
    writer.release()
    (out / "episode.part.avi").replace(out / "episode.avi")
    table = np.array(rows)
    np.savetxt(out / "gt.txt", table, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%d", "%d", "%d"], delimiter=",")
    info: dict[str, object] = {
        "assembled": "from YouTube Faces clips (../shared/data/faces/ytf_subset) by bench/episode_assembly.py",
        "fps": FPS,
        "size": list(CANVAS),
        "frames": frame,
        "people": {str(i + 1): name for i, name in enumerate(people)},
        "segments": segments,
    }
    (out / "episode.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _scaled(clip: YtfClip, k: int) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """Frame k of `clip` at the slot's size, and its face box scaled alike and clamped to the slot."""
    image = cv2.imread(str(clip.frames[k]))
    if image is None:
        raise SystemExit(f"cannot read {clip.frames[k]} of clip {clip.name}")
    sx, sy = SLOT[0] / image.shape[1], SLOT[1] / image.shape[0]
    x, y, w, h = clip.boxes[k] * np.array([sx, sy, sx, sy])
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, SLOT[0] - 1.0), min(y + h, SLOT[1] - 1.0)
    resized = cv2.resize(image, SLOT, interpolation=cv2.INTER_AREA)
    return resized, np.array([x0, y0, x1 - x0, y1 - y0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/episodes/assembled"))
    parser.add_argument("--max-frames-per-clip", type=int, default=None, help="shorter segments (tests)")
    args = parser.parse_args(argv)
    info = assemble(args.out, max_frames_per_clip=args.max_frames_per_clip)
    print(
        f"{args.out / 'episode.avi'}: {info['frames']} frames at {FPS:g} fps, {len(info['segments'])} segments "  # type: ignore[arg-type]
        f"(ASSEMBLED from YouTube Faces clips); labels in gt.txt, layout in episode.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
