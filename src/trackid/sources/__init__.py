"""Where frames and detections come from: MOTChallenge files today; video, photos and streams later."""

from trackid.sources.motchallenge import (
    MotFormatError,
    MotRows,
    SeqInfo,
    detections_by_frame,
    read_deepsort_detections,
    read_mot_file,
    read_seqinfo,
    write_mot_results,
)

__all__ = [
    "MotFormatError",
    "MotRows",
    "SeqInfo",
    "detections_by_frame",
    "read_deepsort_detections",
    "read_mot_file",
    "read_seqinfo",
    "write_mot_results",
]
