"""The review page: a person looks at the gallery's least certain identities and fixes them (merge, split off,
relabel, undo), each fix a gallery correction, shown exactly before it is made (`review_plans`).

Server-rendered HTML and one small script (`static/review.js`), no build chain. A browser cannot send a bearer
header on navigation, so `/review/login` takes the token once and sets it as an HttpOnly, SameSite=Strict cookie
(other sites' pages cannot send it); the JSON API itself only takes the header. The gallery is the service's
`gallery` setting (a SQLite path or a postgresql:// URL), opened for each request and closed after it.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import cv2
import numpy as np
from fastapi import APIRouter, Cookie, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from trackid.embed.crops import crop_boxes
from trackid.identity.stores import make_store
from trackid.identity.stores.base import GalleryStore, StoreLockedError
from trackid.images import read_image
from trackid.service.auth import token_matches
from trackid.service.review_plans import IdentityCard, Plan, PlanChanged, apply_plan, cards, plan
from trackid.service.settings import ServiceSettings

__all__ = ["COOKIE", "review_router"]

COOKIE = "trackid_token"
STATIC = Path(__file__).with_name("static")
SIGHTINGS_SHOWN = 12
CROP_SIDE = 160


class PlanRequest(BaseModel):
    action: Literal["merge", "split", "relabel", "undo"]
    identity_id: int | None = Field(None, ge=0, le=2**62)
    other_identity_id: int | None = Field(None, ge=0, le=2**62)
    sighting_ids: list[Annotated[int, Field(ge=0, le=2**62)]] = Field([], max_length=10_000)
    label: str | None = Field(None, max_length=200)


class ShownPlan(PlanRequest):
    summary: str = Field(max_length=20_000)
    fingerprint: str = Field(pattern="^[0-9a-f]{16}$")


class Applied(BaseModel):
    summary: str
    correction_id: int
    kind: str


class _Gallery:
    """Opens the gallery for one request at a time: an embedded (SQLite) store admits one process, so the page
    holds it only while it reads or writes, and an ingest or a CLI command can use it in between."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()

    @contextmanager
    def store(self) -> Iterator[GalleryStore]:
        if self.settings.gallery is None:
            raise HTTPException(404, "this service has no gallery configured (the `gallery` setting)")
        with self.lock:
            try:
                store = make_store(self.settings.gallery, create=False)
            except StoreLockedError as exc:
                raise HTTPException(503, f"the gallery is in use by another process, try again ({exc})") from None
            try:
                yield store
            finally:
                store.close()


def review_router(settings: ServiceSettings) -> APIRouter:
    router = APIRouter(tags=["review"])
    gallery = _Gallery(settings)

    def signed_in(trackid_token: Annotated[str | None, Cookie()] = None) -> None:
        if not token_matches(f"Bearer {trackid_token}" if trackid_token else None, settings.token_hashes):
            raise HTTPException(401, "sign in at /review/login")

    guarded = [Depends(signed_in)]

    @router.get("/review/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        return HTMLResponse(_login_page())

    @router.post("/review/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        token = (parse_qs((await request.body()).decode("utf-8", "replace")).get("token") or [""])[0].strip()
        if not token_matches(f"Bearer {token}", settings.token_hashes):
            return HTMLResponse(_login_page("That token is not accepted."), status_code=401)
        response = RedirectResponse("/review", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @router.get("/review", include_in_schema=False)
    def review(request: Request) -> Response:
        if not token_matches(f"Bearer {request.cookies.get(COOKIE)}", settings.token_hashes):
            return RedirectResponse("/review/login", status_code=303)
        with gallery.store() as store:
            shown = cards(store, min_travel_s=settings.review_min_travel_s)
        return HTMLResponse(_review_page(shown, settings.gallery or ""))

    @router.get("/review/review.js", include_in_schema=False)
    def script() -> Response:
        return Response((STATIC / "review.js").read_bytes(), media_type="text/javascript")

    @router.get("/review/crops/{sighting_id}", dependencies=guarded, include_in_schema=False)
    def crop(sighting_id: int) -> Response:
        with gallery.store() as store:
            try:
                sighting = store.get_sighting(sighting_id)
            except (KeyError, ValueError):
                raise HTTPException(404, f"no sighting {sighting_id}") from None
        return Response(_crop_jpeg(sighting.source or {}, settings), media_type="image/jpeg")

    @router.post("/review/plan", dependencies=guarded, responses={400: {}, 401: {}, 404: {}})
    def make_plan(request: PlanRequest) -> ShownPlan:
        """What the action would change, in words and ids; nothing changes yet."""
        with gallery.store() as store:
            planned = _or_400(lambda: plan(store, **request.model_dump()))
        return ShownPlan(**planned.to_json())

    @router.post("/review/apply", dependencies=guarded, responses={400: {}, 401: {}, 404: {}, 409: {}})
    def apply(shown: ShownPlan) -> Applied:
        """Apply a plan exactly as shown, or 409 when the gallery changed since (nothing applied)."""
        with gallery.store() as store:
            try:
                correction = _or_400(lambda: apply_plan(store, Plan(**shown.model_dump())))
            except PlanChanged as exc:
                raise HTTPException(409, str(exc)) from None
        return Applied(summary=shown.summary, correction_id=correction.id, kind=correction.kind)

    return router


def _or_400(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except PlanChanged:
        raise
    except (ValueError, KeyError) as exc:
        raise HTTPException(400, str(exc).strip("'\"")) from None


def _crop_jpeg(source: Any, settings: ServiceSettings) -> bytes:
    """The sighting's box from its photo (the whole photo without a usable box), when the photo lies under the
    roots and can be read; a grey tile otherwise."""
    tile = np.full((CROP_SIDE, CROP_SIDE, 3), 200, np.uint8)
    image_path = source.get("image") if isinstance(source, dict) else None
    if isinstance(image_path, str) and any(Path(image_path).resolve().is_relative_to(r) for r in settings.roots):
        try:
            image = read_image(image_path)
        except ValueError:
            image = None
        if image is not None:
            tile = _scaled(_cut(image, source.get("box")))
    ok, encoded = cv2.imencode(".jpg", tile, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return bytes(encoded) if ok else b""


def _cut(image: np.ndarray, box: Any) -> np.ndarray:
    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box):
        crop = crop_boxes(image, [box])[0]
        if crop.size:
            return crop
    return image


def _scaled(crop: np.ndarray) -> np.ndarray:
    scale = CROP_SIDE / max(crop.shape[:2])
    return cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{position:sticky;top:0;background:#203040;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;
align-items:center;flex-wrap:wrap;z-index:2}
header button{font-size:1em}
#plan{position:sticky;top:3.2em;background:#fff6d6;border:2px solid #c9a227;margin:.5em 1em;padding:.6em 1em;z-index:2}
#message{margin:.5em 1em;min-height:1.2em}#message.error{color:#a11}#message.done{color:#176}
ol{list-style:none;padding:0 1em}.identity{background:#fff;border:1px solid #ccd;border-radius:6px;margin:.6em 0;
padding:.6em}.identity:focus{outline:3px solid #3a7bd5}.meta{color:#556;font-size:.9em}
.sightings{display:flex;flex-wrap:wrap;gap:.4em;margin:.4em 0}figure{margin:0;text-align:center;font-size:.75em}
figure img{height:96px;display:block;border:1px solid #ddd}.flag{color:#a11;margin:.2em 0}
.candidates{font-size:.85em;color:#335}
footer{margin:1em;color:#556;font-size:.85em}
"""


def _login_page(error: str = "") -> str:
    note = f"<p style='color:#a11'>{html.escape(error)}</p>" if error else ""
    return (
        "<!doctype html><meta charset='utf-8'><title>trackid review: sign in</title>"
        f"<style>{_STYLE}</style><main style='margin:2em'><h1>trackid review</h1>{note}"
        "<form method='post' action='/review/login'><label>Service token "
        "<input type='password' name='token' id='token' autofocus size='50'></label> "
        "<button type='submit' id='sign-in'>Sign in</button></form></main>"
    )


def _review_page(shown: list[IdentityCard], gallery: str) -> str:
    names = {c.identity.id: _name(c) for c in shown}
    items = []
    for card in shown:
        identity = card.identity
        sightings = "".join(
            f"<figure class='sighting' data-id='{s.id}'><img src='/review/crops/{s.id}' loading='lazy' "
            f"alt='sighting {s.id}'><figcaption><label><input type='checkbox' class='pick-sighting' "
            f"value='{s.id}'> #{s.id}</label><br>q {s.quality:.2f}{_where(s.camera, s.site)}</figcaption></figure>"
            for s in card.sightings[:SIGHTINGS_SHOWN]
        )
        more = len(card.sightings) - SIGHTINGS_SHOWN
        candidates = "".join(
            f"<li class='candidate' data-similarity='{sim:.4f}' data-other='{other}'>{html.escape(names[other])}: "
            f"similarity {sim:.2f}</li>"
            for other, sim in card.candidates
            if other in names
        )
        cohesion = "-" if card.cohesion is None else f"{card.cohesion:.2f}"
        items.append(
            f"<li class='identity' tabindex='0' data-id='{identity.id}' data-sightings='{identity.sighting_count}'>"
            f"<label><input type='checkbox' class='pick-identity' value='{identity.id}'> "
            f"<strong>{html.escape(_name(card))}</strong></label> "
            f"<span class='meta'>{identity.sighting_count} sighting(s) · cohesion {cohesion} · "
            f"{card.narrow_matches} narrow match(es) · uncertainty {card.uncertainty:.2f}</span> "
            f"<input type='text' class='label-input' value='{html.escape(identity.label or '')}' "
            f"placeholder='label' size='14'> <button class='relabel'>Relabel</button>"
            f"<div class='sightings'>{sightings}{f'<span class=meta>+{more} more</span>' if more > 0 else ''}</div>"
            f"{''.join(f'<p class=flag>{html.escape(f)}</p>' for f in card.flags)}"
            f"<ul class='candidates'>{candidates}</ul></li>"
        )
    body = "".join(items) or "<li>No identities in this gallery yet.</li>"
    return (
        "<!doctype html><meta charset='utf-8'><title>trackid review</title>"
        f"<style>{_STYLE}</style><header><strong>trackid review</strong><span>{html.escape(gallery)}</span>"
        "<label>Show candidates above <input type='range' id='min-similarity' min='0' max='1' step='0.01' "
        "value='0.5'> <span id='min-similarity-value'>0.50</span></label><span id='candidates-shown'></span>"
        "<button id='merge'>Merge selected (m)</button><button id='split'>Split off selected (s)</button>"
        "<button id='undo'>Undo (u)</button></header>"
        "<div id='plan' hidden><strong>This will change the gallery:</strong> <span id='plan-summary'></span> "
        "<button id='apply'>Apply (Enter)</button> <button id='cancel'>Cancel (Esc)</button></div>"
        f"<div id='message' role='status'></div><ol id='identities'>{body}</ol>"
        "<footer>Most uncertain first (close to another identity, spread within). Keys: j / k next / previous, "
        "x select identity, m merge the two selected, s split the selected sightings off, r edit the label (Enter "
        "to relabel), u undo the last correction, Enter apply what is shown, Esc cancel.</footer>"
        "<script src='/review/review.js'></script>"
    )


def _name(card: IdentityCard) -> str:
    return f"identity {card.identity.id}" + (f" ({card.identity.label})" if card.identity.label else "")


def _where(camera: str | None, site: str | None) -> str:
    parts = [p for p in (site, camera) if p]
    return f"<br>{html.escape(' / '.join(parts))}" if parts else ""
