"""`python -m trackid.service.openapi`: the job API's OpenAPI schema on stdout (`make openapi` checks it in)."""

from __future__ import annotations

import json
import tempfile

from trackid.service.app import create_app
from trackid.service.settings import ServiceSettings


def schema() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:  # the app opens its store; the schema does not depend on it
        return create_app(ServiceSettings(data_dir=folder)).openapi()


if __name__ == "__main__":
    print(json.dumps(schema(), indent=2, sort_keys=True))
