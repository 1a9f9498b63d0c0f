"""What an edge worker sends the central linker: one message per camera frame, numbered per camera.

A Redis Stream entry is a flat map of strings. Ours:

- `v`: the schema version (`SCHEMA`);
- `kind`: `frame` (one frame's tracklet update), `gap` (messages `first`..`seq` were dropped by the edge's spool
  cap and will never come), or `end` (the camera's source is finished);
- `site`, `camera`: where it comes from;
- `seq`: the camera's message number, 1, 2, 3, ... without holes; (`camera`, `seq`) is the idempotency key;
- `frame`: the frame number (1-based; time = frame / the site's fps);
- `spooled`: wall-clock time (s) the edge spooled it, where the publish -> commit latency starts;
- `boxes`: JSON rows [x, y, w, h, score, track] of the detections kept (pixels; track: the camera tracker's id, -1
  where it has none);
- `first`: `gap` only, the first dropped number.

`decode` checks every field and raises `MessageError` with the reason, which the linker puts into its dead-letter
stream beside the raw entry, so a malformed message is looked at, not retried forever.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["KINDS", "SCHEMA", "CameraMessage", "MessageError", "decode", "encode"]

SCHEMA = "1"
KINDS = ("frame", "gap", "end")


class MessageError(ValueError):
    """A stream entry that is not a valid camera message; the text says which field and why."""


@dataclass(frozen=True)
class CameraMessage:
    """One decoded message; `boxes` is (k, 6) x, y, w, h, score, track (empty unless `kind` is frame)."""

    kind: str
    site: str
    camera: str
    seq: int
    frame: int
    spooled: float
    boxes: NDArray[np.float64]
    first: int = 0

    @property
    def key(self) -> str:
        """The stable message id."""
        return f"{self.camera}:{self.seq}"


def encode(message: CameraMessage) -> dict[str, str]:
    fields = {
        "v": SCHEMA,
        "kind": message.kind,
        "site": message.site,
        "camera": message.camera,
        "seq": str(message.seq),
        "frame": str(message.frame),
        "spooled": repr(float(message.spooled)),
        "boxes": json.dumps(message.boxes.tolist(), allow_nan=False),  # shortest exact repr: no rounding
    }
    if message.kind == "gap":
        fields["first"] = str(message.first)
    return fields


def decode(fields: dict[Any, Any]) -> CameraMessage:
    """The message of a stream entry (keys and values as bytes or str).

    Raises:
        MessageError: a field is missing or malformed (named in the message).
    """
    text = {_text(k): _text(v) for k, v in fields.items()}
    if text.get("v") != SCHEMA:
        raise MessageError(f"field v must be {SCHEMA!r} (the message schema), got {text.get('v')!r}")
    kind = _field(text, "kind")
    if kind not in KINDS:
        raise MessageError(f"field kind must be one of {', '.join(KINDS)}, got {kind!r}")
    seq, frame = _integer(text, "seq", 1), _integer(text, "frame", 0)
    spooled = _number(text, "spooled")
    try:
        boxes = np.asarray(json.loads(_field(text, "boxes")), np.float64)
    except (ValueError, TypeError) as error:
        raise MessageError(f"field boxes must be a JSON list of [x, y, w, h, score, track] rows: {error}") from None
    boxes = boxes.reshape(-1, 6) if boxes.size == 0 or (boxes.ndim == 2 and boxes.shape[1] == 6) else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 6:
        raise MessageError(f"field boxes must hold rows of 6 numbers, got shape {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise MessageError("field boxes holds a non-finite number")
    if (boxes[:, 2:4] <= 0).any():
        raise MessageError("field boxes holds a box without positive width and height")
    first = _integer(text, "first", 1) if kind == "gap" else 0
    if kind == "gap" and first > seq:
        raise MessageError(f"field first ({first}) must not exceed seq ({seq})")
    return CameraMessage(kind, _field(text, "site"), _field(text, "camera"), seq, frame, spooled, boxes, first)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _field(text: dict[str, str], name: str) -> str:
    value = text.get(name)
    if not value:
        raise MessageError(f"field {name} is missing or empty")
    return value


def _integer(text: dict[str, str], name: str, least: int) -> int:
    value = _field(text, name)
    try:
        number = int(value)
    except ValueError:
        raise MessageError(f"field {name} must be an integer, got {value[:40]!r}") from None
    if number < least:
        raise MessageError(f"field {name} must be >= {least}, got {number}")
    return number


def _number(text: dict[str, str], name: str) -> float:
    value = _field(text, name)
    try:
        number = float(value)
    except ValueError:
        raise MessageError(f"field {name} must be a number, got {value[:40]!r}") from None
    if not math.isfinite(number):
        raise MessageError(f"field {name} must be finite, got {value!r}")
    return number
