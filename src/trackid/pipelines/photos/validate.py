"""`photos validate`: a store's decisions scored against labels, with a PASS/FAIL per target.

The scoring is `trackid.eval.photos`; this module reads the store (sightings with a labelled source image, the
latest logged decision of each) and writes `validate.json`, `validate.html` and `similarities.png`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.config import PhotoTargets
from trackid.eval.photos import Assignment, evaluate_assignments
from trackid.identity.stores import GalleryStore
from trackid.pipelines.photos.labels import Labels
from trackid.reports import heading, histograms_png, image, page, preformatted, table

__all__ = ["validate"]


def validate(store: GalleryStore, labels: Labels, targets: PhotoTargets, out: Path) -> dict[str, Any]:
    """Score the store's decisions against labels: assignment rate and accuracy, accuracy of individuals with >= 5
    sightings, false-match rate (decisions that took another individual's profile, of all decisions; also as a
    share of the matches), similarity distributions; PASS/FAIL per target."""
    assignments = []
    for s in store.sightings():
        if s.source and "image" in s.source:
            who = labels(Path(str(s.source["image"]))).get("individual")
            if who:
                assignments.append(Assignment(s.id, s.identity_id, str(who)))
    if not assignments:
        raise ValueError("no stored sighting has a labelled source image: check --labels / --label-pattern")
    decisions: dict[int, tuple[str, float]] = {}
    for record in store.similarity_log():
        if record.query is not None:
            decisions[record.query] = (record.decision, record.similarity)  # the latest decision counts
    scores = evaluate_assignments(assignments, decisions)
    checks = {
        "false_match_rate": scores.false_match_rate <= targets.max_false_match_rate,
        "assignment_rate": scores.assignment_rate >= targets.min_assignment_rate,
        "accuracy_5plus": None
        if scores.accuracy_5plus is None
        else scores.accuracy_5plus >= targets.min_accuracy_5plus,
    }
    result = {
        "metrics": scores.metrics(),
        "targets": targets.model_dump(),
        "checks": {k: (None if v is None else ("PASS" if v else "FAIL")) for k, v in checks.items()},
        "verdict": "PASS" if all(v is not False for v in checks.values()) else "FAIL",
        "files": ["validate.json", "validate.html", "similarities.png"],
    }
    out.mkdir(parents=True, exist_ok=True)
    plot = histograms_png(scores.similarity, xlabel="similarity to the best candidate profile")
    atomic_write_bytes(out / "similarities.png", plot)
    atomic_write_text(out / "validate.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "validate.html", _html(result))
    return result


def _html(result: dict[str, Any]) -> str:
    return page(
        "Photo validation",
        heading(f"Photo validation: {result['verdict']}"),
        table(["metric", "value"], [(k, json.dumps(v)) for k, v in result["metrics"].items()]),
        heading("Targets", 2),
        preformatted(json.dumps(result["targets"], indent=2)),
        table(["check", "result"], [(k, str(v)) for k, v in result["checks"].items()]),
        heading("Similarity to the best candidate, by outcome", 2),
        image("similarities.png"),
    )
