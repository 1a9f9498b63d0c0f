"""Photo collections -> one profile per individual (e.g. deer on trail cameras): tune, ingest, validate, monitor.

`tune` chooses the ensemble weights and the decision threshold on labelled photos (half the individuals) and
measures them on the other half (`Tuned`, one `tuned.json`); `ingest` turns photo folders into sightings and
profiles, resumably (bursts become tracklets, see `bursts`); `validate` scores a store against labels; `monitor`
lists assignments a person should look at. Photos, bursts and EXIF are `trackid.sources.photos`; the camera centring
is `trackid.embed.centring`; the validation metrics are `trackid.eval.photos`.
"""

from trackid.pipelines.photos.ingest import IngestReport, ingest
from trackid.pipelines.photos.labels import Labels
from trackid.pipelines.photos.monitor import monitor
from trackid.pipelines.photos.tune import tune
from trackid.pipelines.photos.tuned import Tuned
from trackid.pipelines.photos.validate import validate

__all__ = ["IngestReport", "Labels", "Tuned", "ingest", "monitor", "tune", "validate"]
