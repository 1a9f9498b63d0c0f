"""HTML pages and PNG plots that commands write into their run folders, shared so each report looks alike.

Writers return text or bytes and never touch the disk: the caller writes them through its run folder (atomically).
"""

from trackid.reports.html import bullet_list, heading, image, page, preformatted, table
from trackid.reports.plots import histograms_png

__all__ = ["bullet_list", "heading", "histograms_png", "image", "page", "preformatted", "table"]
