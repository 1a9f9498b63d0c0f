"""Uploads: a client without a shared file system sends an input file, then names it in a job request.

`PUT /uploads/{name}` streams the body to `data_dir/uploads/<id>/<name>` (written to a hidden temporary file and
renamed when complete, so a job never reads half an upload) and answers the path to use. The uploads folder is one
of the input roots. Bodies are limited to `max_upload_bytes` (the rest of the API to `max_request_bytes`), by their
Content-Length before anything is read and by count while they stream; an upload cut short leaves nothing behind.
"""

from __future__ import annotations

import os
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel

from trackid.service.settings import ServiceSettings

__all__ = ["PREFIX", "Uploaded", "body_limit", "uploads_router"]

PREFIX = "/uploads/"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class Uploaded(BaseModel):
    path: str
    bytes: int


def uploads_router(settings: ServiceSettings, guarded: list[Any]) -> APIRouter:
    router = APIRouter(tags=["uploads"])

    @router.put("/uploads/{name}", status_code=201, dependencies=guarded, responses={400: {}, 401: {}, 413: {}})
    async def upload(name: Annotated[str, PathParam(pattern=NAME)], request: Request) -> Uploaded:
        """Store the request body as a file named `name`; the answer's `path` goes in a job's request."""
        folder = settings.uploads_dir / uuid.uuid4().hex
        folder.mkdir(parents=True)
        target, partial = folder / name, folder / f".{name}.part"
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise HTTPException(413, f"upload over the {settings.max_upload_bytes}-byte limit")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            partial.rename(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            folder.rmdir()
            raise
        return Uploaded(path=str(target), bytes=size)

    return router


def body_limit(path: str, settings: ServiceSettings) -> int:
    """The largest body a request to `path` may carry."""
    return settings.max_upload_bytes if path.startswith(PREFIX) else settings.max_request_bytes
