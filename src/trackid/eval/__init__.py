"""Wrappers over the field's evaluators, so our numbers mean what the literature's numbers mean."""

from trackid.eval.mot import METRICS, MotScores, evaluate_mot
from trackid.eval.multicam import MulticamScores, evaluate_multicam
from trackid.eval.reid import ReidScores, evaluate_reid

__all__ = ["METRICS", "MotScores", "MulticamScores", "ReidScores", "evaluate_mot", "evaluate_multicam", "evaluate_reid"]
