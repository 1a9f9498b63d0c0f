"""A small transformer over a track's per-frame features: persistent or transient, and which frames said so.

Why a sequence model beside the boosted trees: summary statistics lose the order of events (a track that starts
well and degrades, a size jump in one frame), which attention over the frames keeps, and the attention says which
frames the decision rested on (`frame_importance`).

Shape: the per-frame features (`FRAME_FEATURES`, standardised by the training set's mean and spread) of at most
`max_frames` frames spread evenly over the track, a learnt summary token in front, `layers` encoder layers of
`heads`-head self-attention written out as matrix products (so the ONNX export is plain MatMul/Softmax and the
attention maps are outputs), and a logistic output on the summary token. torch is needed to train only
(`pip install torch==2.13.0`); the fitted network is exported to ONNX and every prediction, during fitting's
validation too, runs in onnxruntime, as it will on a user's machine from the file shipped in the package.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import ArrayLike, NDArray

from trackid.multiview.persistence.features import frame_feature_names, frame_features
from trackid.multiview.persistence.models import check_labels
from trackid.multiview.persistence.tracks import TrackRecord

__all__ = ["SHIPPED", "TransformerPersistence", "batch_frames", "seen_rows"]

SHIPPED = Path(__file__).with_name("persistence.onnx")
"""The network fitted on every labelled track of `bench/persistence.py` (MOT15 FRCNN and ACF, MOT17 FRCNN, PETS09
NanoDet: 1,283 tracks), which rebuilds it: `bench/persistence.py --save-transformer <this path>`."""


def seen_rows(length: int, max_frames: int) -> NDArray[np.int64]:
    """Which of a track's `length` frames the network sees: all of them, or `max_frames` spread evenly."""
    if length <= max_frames:
        return np.arange(length)
    return np.linspace(0, length - 1, max_frames).round().astype(np.int64)


def batch_frames(
    tracks: Sequence[TrackRecord], max_frames: int, appearance: bool = False
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(features (n, max_frames, F), mask (n, max_frames): 1 where a frame is real): each track's frames, at most
    `max_frames` of them spread evenly over it, padded at the end."""
    x = np.zeros((len(tracks), max_frames, len(frame_feature_names(appearance))), np.float32)
    mask = np.zeros((len(tracks), max_frames), np.float32)
    for i, track in enumerate(tracks):
        per_frame = frame_features(track, appearance)[seen_rows(len(track), max_frames)]
        x[i, : len(per_frame)] = per_frame
        mask[i, : len(per_frame)] = 1.0
    return x, mask


class TransformerPersistence:
    """Self-attention over a track's frames (see the module).

    Args:
        max_frames: frames a track is seen through (spread evenly); more sees finer detail of long tracks at
            quadratic cost.
        width, heads, layers: the network's size; larger fits the training sequences closer with few hundred tracks.
        epochs, learning_rate, weight_decay: training (Adam on class-balanced log loss).
        appearance: also read the appearance-consistency features (`features.APPEARANCE_FEATURES`); off by
            default, see `features`. A loaded model's own input width says whether it does.
        model_path: a fitted model's ONNX file to predict with instead of fitting (`SHIPPED`: ours).
        random_state: seeds the initial weights and batch order.
    """

    importance_method = "attention rollout"

    def __init__(
        self,
        max_frames: int = 32,
        width: int = 32,
        heads: int = 4,
        layers: int = 2,
        epochs: int = 30,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-3,
        appearance: bool = False,
        model_path: str | Path | None = None,
        random_state: int = 0,
    ) -> None:
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
        self.max_frames = max_frames
        self.width = width
        self.heads = heads
        self.layers = layers
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.appearance = appearance
        self.model_path = model_path
        self.random_state = random_state
        if model_path is not None:
            self.load(model_path)

    def fit(self, tracks: Sequence[TrackRecord], labels: ArrayLike) -> TransformerPersistence:
        y = check_labels(labels, len(tracks))
        x, mask = batch_frames(tracks, self.max_frames, self.appearance)
        return self._open(_train(self, x, mask, y.astype(np.float32)))

    def load(self, path: str | Path) -> TransformerPersistence:
        self._open(Path(path).read_bytes())
        shape = self._session.get_inputs()[0].shape  # (tracks, frames, features)
        self.max_frames = int(shape[1])
        self.appearance = int(shape[2]) == len(frame_feature_names(appearance=True))
        return self

    def _open(self, model: bytes) -> TransformerPersistence:
        self.onnx_ = model
        self._session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        return self

    def save(self, path: str | Path) -> Path:
        from trackid.artifacts import atomic_write_bytes

        return atomic_write_bytes(Path(path), self.onnx_)

    def predict_proba(self, tracks: Sequence[TrackRecord]) -> NDArray[np.float64]:
        p = self._run(tracks)[0]
        return np.stack([1 - p, p], axis=1).reshape(-1, 2)

    def predict(self, tracks: Sequence[TrackRecord]) -> NDArray[np.int64]:
        return (self.predict_proba(tracks)[:, 1] >= 0.5).astype(np.int64)

    def frame_importance(self, track: TrackRecord) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """(frames seen, their importance summing to 1): attention rollout (Abnar & Zuidema 2020) from the summary
        token through every layer, residual connections counted as identity."""
        _, attention = self._run([track])
        picked = seen_rows(len(track), self.max_frames)
        n = len(picked)
        rollout = np.eye(attention.shape[-1])
        for layer in attention[0]:  # (heads, T + 1, T + 1)
            mixed = 0.5 * layer.mean(axis=0) + 0.5 * np.eye(layer.shape[-1])
            rollout = mixed / mixed.sum(axis=1, keepdims=True) @ rollout
        weight = rollout[0, 1 : n + 1]
        return track.frames[picked], weight / max(float(weight.sum()), 1e-12)

    def _run(self, tracks: Sequence[TrackRecord]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if not tracks:
            return np.zeros(0), np.zeros((0, self.layers, self.heads, 1, 1))
        x, mask = batch_frames(tracks, self.max_frames, self.appearance)
        p, attention = self._session.run(None, {"frames": x, "mask": mask})
        return np.asarray(p, np.float64).ravel(), np.asarray(attention, np.float64)


def _train(
    spec: TransformerPersistence, x: NDArray[np.float32], mask: NDArray[np.float32], y: NDArray[np.float32]
) -> bytes:
    """Fit the network in torch and return its ONNX export."""
    try:
        torch: Any = importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError("training the transformer needs torch: pip install torch==2.13.0") from exc
    torch.manual_seed(spec.random_state)
    real = mask.astype(bool)
    mean = x[real].mean(axis=0)
    scale = x[real].std(axis=0) + 1e-6
    net = _network(torch, spec, mean, scale)
    optimiser = torch.optim.Adam(net.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    weight = torch.tensor(np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())), dtype=torch.float32)
    xs, ms, ys = torch.tensor(x), torch.tensor(mask), torch.tensor(y)
    rng = np.random.default_rng(spec.random_state)
    net.train()
    for _ in range(spec.epochs):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // 64)):
            p, _ = net(xs[batch], ms[batch])
            loss = torch.nn.functional.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), ys[batch], weight=weight[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
    buffer = io.BytesIO()
    example = (xs[:2], ms[:2])
    torch.onnx.export(
        net,
        example,
        buffer,
        input_names=["frames", "mask"],
        output_names=["persistent", "attention"],
        dynamic_axes={
            "frames": {0: "tracks"},
            "mask": {0: "tracks"},
            "persistent": {0: "tracks"},
            "attention": {0: "tracks"},
        },
        opset_version=17,
        dynamo=False,
    )
    return buffer.getvalue()


def _network(torch: Any, spec: TransformerPersistence, mean: NDArray[np.float32], scale: NDArray[np.float32]) -> Any:
    """The network, built from the torch module given (imported only to train)."""
    nn = torch.nn

    class Layer(nn.Module):  # type: ignore[name-defined]  # nn is the torch module given, typed Any
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(spec.width, 3 * spec.width)
            self.out = nn.Linear(spec.width, spec.width)
            self.norm1, self.norm2 = nn.LayerNorm(spec.width), nn.LayerNorm(spec.width)
            self.ff = nn.Sequential(
                nn.Linear(spec.width, 2 * spec.width), nn.GELU(), nn.Linear(2 * spec.width, spec.width)
            )

        def forward(self, h: Any, bias: Any) -> tuple[Any, Any]:
            b, t, _ = h.shape
            q, k, v = self.qkv(self.norm1(h)).reshape(b, t, 3, spec.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            attention = torch.softmax(q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5) + bias, dim=-1)
            h = h + self.out((attention @ v).transpose(1, 2).reshape(b, t, -1))
            return h + self.ff(self.norm2(h)), attention

    class Net(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean))
            self.register_buffer("scale", torch.tensor(scale))
            self.embed = nn.Linear(len(frame_feature_names(spec.appearance)), spec.width)
            self.token = nn.Parameter(torch.zeros(1, 1, spec.width))
            self.blocks = nn.ModuleList([Layer() for _ in range(spec.layers)])
            self.head = nn.Sequential(nn.LayerNorm(spec.width), nn.Linear(spec.width, 1))

        def forward(self, frames: Any, mask: Any) -> tuple[Any, Any]:
            h = self.embed((frames - self.mean) / self.scale) * mask.unsqueeze(-1)
            h = torch.cat([self.token.expand(h.shape[0], -1, -1), h], dim=1)
            seen = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
            bias = ((1.0 - seen) * -1e4)[:, None, None, :]
            maps = []
            for block in self.blocks:
                h, attention = block(h, bias)
                maps.append(attention)
            p = torch.sigmoid(self.head(h[:, 0]).squeeze(-1))
            return p, torch.stack(maps, dim=1)

    return Net()
