"""Issue #14's guard: restructuring the flow (tracklets, a shared stage loop, run folders, the CLI package) must not
change what `trackid track --detections` writes. The hashes were recorded before that work began (2026-12-02, at
commit 87c663a, tracker defaults of issue #12). A change that is meant to alter tracking re-records them and says so:

    trackid track --detections ../shared/data/mot15/det_frcnn --seqinfo ../shared/data/mot15/gt/MOT15-train --out o
    sha256sum o/*.txt
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trackid.cli import app

RESULT_SHA256 = {
    "mot15/ADL-Rundle-6": "6c9ab21ed06237b2d7f8c751f610faa71fefea8b04f2a262d3cf31cc5dcb6396",
    "mot15/ADL-Rundle-8": "cd3ddecb1bb670062da0ed2a269f21909e1f3c1fb089ea53f2410fc0659881ff",
    "mot15/ETH-Bahnhof": "f8c85db2dd7c923e7f8f16c009c61cbd1e7e4c7e32bac2b3a1bfe8d234b1597f",
    "mot15/ETH-Pedcross2": "b45223ecd3681f3fc04b0eae441f4504df9406f0495701e7ba7ab176b9844688",
    "mot15/ETH-Sunnyday": "2d003cdadf174f3bed2f9adcb4bec1bfb8faf856f6dac482490e7b9cc8040c9a",
    "mot15/KITTI-13": "0e12a11d5276881a3e0631be0679f7927c6feda846070a231d91f0cb8598732b",
    "mot15/KITTI-17": "91bb0e95748f025bd66b76b55afa6694e17d547b128ef43d4ccc7ec6950505ab",
    "mot15/PETS09-S2L1": "c64b60b97aa853d1423c1292c39d50bd2c1a268380d8ddbe45f9886ded327bd9",
    "mot15/TUD-Campus": "c43b069f8eb916f2ba484e045eee120f24ce11c625489b3d1b9f20f83b809c6d",
    "mot15/TUD-Stadtmitte": "ece1d446aac90df373e6f631ee3c67c553335942051019e1a8be41518155089f",
    "mot15/Venice-2": "ed8333e4ce526b28e481d370977eed10b7bed4e7b987f99ddc13e36327adcee9",
    "mot17/MOT17-02-FRCNN": "c556e8c285dc9b385546f0dd169f051674faf87aca4f73d2306f57f76c77569e",
    "mot17/MOT17-04-FRCNN": "d36c7b916524eba43261bece2d2a39a2f67da3778350625620316da981c4bea0",
    "mot17/MOT17-05-FRCNN": "50f7ef96f5d06f17d450d21165aee92bf3180819bbb60bfedae7fa9e8e4ddbab",
    "mot17/MOT17-09-FRCNN": "57945c712db81735efdae7a8b5c5099aa6e620dd859fa471d2f45afec4ed11fa",
    "mot17/MOT17-10-FRCNN": "a9214debe8285c8d07a2333565b126f2e378446daade8bccbb8f997e23c629e5",
    "mot17/MOT17-11-FRCNN": "6d3d22158178c4e7ec4fd58915f7c96791d0bdbe1e186ab2febaf10a677a90d9",
    "mot17/MOT17-13-FRCNN": "c8dec4dfdf09b64d49feb5bef4f04b66dfeff99c2be172e3f2e98ed3adecafbf",
}


@pytest.mark.parametrize("dataset", ["mot15", "mot17"])
def test_mot_file_tracking_writes_the_same_bytes(data: Path, tmp_path: Path, dataset: str) -> None:
    out = tmp_path / dataset
    args = ["track", "--detections", str(data / dataset / "det_frcnn"), "--seqinfo"]
    result = CliRunner().invoke(app, [*args, str(next((data / dataset / "gt").glob("*-train"))), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = {f"{dataset}/{p.stem}": hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.txt"))}
    expected = {k: v for k, v in RESULT_SHA256.items() if k.startswith(dataset)}
    assert written == expected
