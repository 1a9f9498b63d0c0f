"""Wrappers over the field's evaluators, so our numbers mean what the literature's numbers mean."""

from trackid.eval.mot import METRICS, MotScores, evaluate_mot

__all__ = ["METRICS", "MotScores", "evaluate_mot"]
