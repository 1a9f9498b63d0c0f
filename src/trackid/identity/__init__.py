"""The identity gallery: vector index, stores, calibrated matching, similarity log and corrections."""
