"""Several overlapping cameras of one site: recorded per-camera detections -> global ids on the ground plane and in
every view (issue #17). `site` reads and checks a site file, `run` writes a run folder from it."""

from trackid.pipelines.multicam.run import MulticamRun, load_views, run_site
from trackid.pipelines.multicam.site import CalibrationConfig, CameraConfig, SiteConfig, load_site

__all__ = ["CalibrationConfig", "CameraConfig", "MulticamRun", "SiteConfig", "load_site", "load_views", "run_site"]
