"""Property-based fuzzing of every endpoint of the job API from its own OpenAPI schema (schemathesis): over 1,000
generated requests, valid and invalid, none answered with a server error or a leaked traceback. Also: the
checked-in schema (docs/openapi.json) is the app's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.openapi import from_asgi

from trackid.identity.stores import make_store
from trackid.service.app import create_app
from trackid.service.auth import hash_token
from trackid.service.review import COOKIE
from trackid.service.settings import ServiceSettings

REPO = Path(__file__).resolve().parent.parent
TOKEN = "fuzz-token-0123456789"
PER_OPERATION = 120  # per generation mode (valid requests, invalid ones)
MIN_REQUESTS = 1000


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "inputs"
    (root / "seq" / "det").mkdir(parents=True)
    (root / "seq" / "det" / "det.txt").write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    store = make_store(root / "g.db", index_kind="exact")  # a small gallery for the review endpoints
    rng = np.random.default_rng(0)
    for k in range(3):
        identity = store.create_identity(label=f"p{k}").id
        for _ in range(3):
            store.add_sighting(rng.normal(size=8), model_id="m", model_version="1", time=0.0, identity_id=identity)
    store.close()
    settings = ServiceSettings(data_dir=tmp_path / "s", roots=[root], token_hashes=[hash_token(TOKEN)])
    return create_app(settings.model_copy(update={"gallery": str(root / "g.db")}))


def test_the_checked_in_openapi_schema_is_the_apps(app) -> None:  # type: ignore[no-untyped-def]
    checked_in = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert checked_in == json.loads(json.dumps(app.openapi())), "regenerate it: make openapi"


def test_no_generated_request_gets_a_server_error_or_a_traceback(app) -> None:  # type: ignore[no-untyped-def]
    schema = from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    sent: list[tuple[str, int]] = []
    for operation, mode in ((o, m) for o in operations for m in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
            if len(sent) % 7 == 0:  # some without the token: refused, never a 5xx
                headers.pop("Authorization")
            cookies = {COOKIE: TOKEN} if "Authorization" in headers else {}  # the review page's sign-in
            response = case.call(headers=headers, cookies=cookies)
            sent.append((f"{case.method} {case.path}", response.status_code))
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
            assert "Traceback" not in response.text and 'File "' not in response.text

        try:
            fuzz()
        except Unsatisfiable:  # an operation with nothing to get wrong (GET /health) has no invalid requests
            assert mode == GenerationMode.NEGATIVE, operation
    by_operation: dict[str, int] = {}
    for name, _ in sent:
        by_operation[name] = by_operation.get(name, 0) + 1
    print(f"{len(sent)} requests: {by_operation}")
    assert len(sent) >= MIN_REQUESTS, by_operation
    assert all(count >= 20 for name, count in by_operation.items() if name != "GET /health"), by_operation
    codes = {code for _, code in sent}
    assert codes >= {200, 400, 401, 404, 422}, codes
