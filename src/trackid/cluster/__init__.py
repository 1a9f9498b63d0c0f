"""Grouping tracks into identities: constrained agglomerative clustering and its data-chosen threshold."""

from trackid.cluster.constrained import ConstrainedClusters, cluster_with_constraints, cosine_distances
from trackid.cluster.threshold import ThresholdChoice, half_track_distances, threshold_from_pairs

__all__ = [
    "ConstrainedClusters",
    "ThresholdChoice",
    "cluster_with_constraints",
    "cosine_distances",
    "half_track_distances",
    "threshold_from_pairs",
]
