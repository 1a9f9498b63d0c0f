"""The job API (FastAPI): submit, watch, cancel and resume jobs, and fetch what they wrote.

The web process never runs a pipeline: it writes jobs to the store and reads them back; workers run them. Every
route but `/health` (and the OpenAPI schema) needs a bearer token; inputs must lie under the configured roots;
bodies over `max_request_bytes` are refused before they are read; an unexpected error answers 500 with an error id
and nothing of the traceback (which goes to the log); CORS stays closed unless origins are configured.

Status reads (`GET /jobs`, `GET /jobs/{id}`, the event stream) run on the event loop itself: a SQLite read in WAL
mode never waits for a writer and takes well under a millisecond, while a hop to the thread pool per poll makes
50 polling clients queue for the GIL (`bench/service_load.py`: p50 42 ms that way at 100 polls/s). Writes and file
hashing stay in the thread pool, where a wait for the store's lock blocks no one else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from trackid import __version__
from trackid.artifacts import file_sha256
from trackid.service.auth import token_matches
from trackid.service.job_types import JobRequest
from trackid.service.paths import InputRefusedError, resolve_inputs
from trackid.service.queue import publish
from trackid.service.review import review_router
from trackid.service.settings import ServiceSettings
from trackid.service.store import RESUMABLE, STATES, TERMINAL, Job, JobStore, StaleSweeper
from trackid.service.uploads import body_limit, uploads_router

__all__ = ["JobView", "create_app"]

log = logging.getLogger(__name__)


class JobView(BaseModel):
    """A job as the API shows it."""

    id: str
    type: str
    state: str = Field(description=f"One of {', '.join(STATES)}.")
    phase: str | None = Field(description="What the command is doing (its progress bar's label).")
    done: float | None
    total: float | None
    metrics: dict[str, Any] = Field(description="The run's summary (its manifest's fields) once it ended.")
    error: str | None
    request: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    attempts: int
    links: dict[str, str]

    @classmethod
    def of(cls, job: Job) -> JobView:
        base = f"/jobs/{job.id}"
        return cls(
            **{k: getattr(job, k) for k in ("id", "type", "state", "phase", "done", "total", "metrics", "error")},
            request=job.request,
            created=job.created,
            started=job.started,
            finished=job.finished,
            attempts=job.attempts,
            links={"self": base, "events": f"{base}/events", "artifacts": f"{base}/artifacts"},
        )


class Artifact(BaseModel):
    name: str
    bytes: int
    sha256: str
    url: str


class Problem(BaseModel):
    detail: str


def create_app(settings: ServiceSettings) -> FastAPI:
    """The app over `settings`' store; the store's stale running jobs are marked interrupted as it starts."""
    store = JobStore(settings.store_url)
    sweep = StaleSweeper(store, settings.stale_s)
    sweep(now=True)
    app = FastAPI(
        title="trackid job service",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        responses={401: {"model": Problem}, 413: {"model": Problem}, 422: {"description": "Invalid request"}},
    )
    app.state.settings, app.state.store = settings, store
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(_BodyLimit, settings=settings)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error (id {error_id}, in the service log)"}, status_code=500)

    async def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if not token_matches(authorization, settings.token_hashes):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def job_or_404(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    guarded = [Depends(authorised)]
    app.include_router(review_router(settings))
    app.include_router(uploads_router(settings, guarded))

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post(
        "/jobs",
        status_code=202,
        dependencies=guarded,
        tags=["jobs"],
        response_model=JobView,
        responses={400: {"model": Problem}},
    )
    def submit(request: Annotated[JobRequest, Field(discriminator="type")], response: Response) -> JobView:
        try:
            resolve_inputs(request, settings)
        except InputRefusedError as exc:
            raise HTTPException(400, str(exc)) from None
        job_id = uuid.uuid4().hex
        job = store.create(request.type, request.model_dump(mode="json"), settings.jobs_dir / job_id / "run", job_id)
        publish(settings, job.id)
        response.headers["Location"] = f"/jobs/{job.id}"
        return JobView.of(job)

    @app.get("/jobs", dependencies=guarded, tags=["jobs"])
    async def jobs(
        state: Annotated[str | None, Query(pattern="^(" + "|".join(STATES) + ")$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[JobView]:
        await _sweep_when_due(sweep)
        return [JobView.of(j) for j in store.recent(state, limit)]

    @app.get("/jobs/{job_id}", dependencies=guarded, tags=["jobs"], responses={404: {"model": Problem}})
    async def job(job_id: str) -> JobView:
        await _sweep_when_due(sweep)
        return JobView.of(job_or_404(job_id))

    @app.delete(
        "/jobs/{job_id}",
        status_code=202,
        dependencies=guarded,
        tags=["jobs"],
        responses={404: {"model": Problem}, 409: {"model": Problem}},
    )
    def cancel(job_id: str) -> JobView:
        before = job_or_404(job_id)
        if before.state in (*TERMINAL, "cancelling"):
            raise HTTPException(409, f"job {job_id} is {before.state}: nothing to cancel")
        after = store.cancel(job_id)
        assert after is not None
        return JobView.of(after)

    @app.post(
        "/jobs/{job_id}/resume",
        status_code=202,
        dependencies=guarded,
        tags=["jobs"],
        responses={404: {"model": Problem}, 409: {"model": Problem}},
    )
    def resume(job_id: str) -> JobView:
        sweep(now=True)
        before = job_or_404(job_id)
        if not store.resume(job_id):
            raise HTTPException(409, f"job {job_id} is {before.state}; only {', '.join(RESUMABLE)} jobs resume")
        publish(settings, job_id)
        return JobView.of(job_or_404(job_id))

    @app.get(
        "/jobs/{job_id}/events",
        dependencies=guarded,
        tags=["jobs"],
        responses={404: {"model": Problem}},
        response_class=StreamingResponse,
    )
    def events(job_id: str) -> StreamingResponse:
        """Server-sent events: the job (as `GET /jobs/{id}`) each time it changes, until it ends."""
        job_or_404(job_id)
        return StreamingResponse(
            _event_stream(store, settings, job_id, sweep),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/jobs/{job_id}/artifacts", dependencies=guarded, tags=["artifacts"], responses={404: {"model": Problem}})
    def artifacts(job_id: str) -> list[Artifact]:
        run = Path(job_or_404(job_id).run_dir)
        files = (
            sorted(p for p in run.rglob("*") if p.is_file() and not _hidden(p.relative_to(run))) if run.is_dir() else []
        )
        return [_artifact(job_id, run, p) for p in files]

    @app.get(
        "/jobs/{job_id}/artifacts/{name:path}",
        dependencies=guarded,
        tags=["artifacts"],
        responses={404: {"model": Problem}},
        response_class=FileResponse,
    )
    def artifact(job_id: str, name: str) -> FileResponse:
        run = Path(job_or_404(job_id).run_dir).resolve()
        path = (run / name).resolve()
        if ".." in Path(name).parts or not path.is_relative_to(run) or not path.is_file() or _hidden(Path(name)):
            raise HTTPException(404, f"job {job_id} has no artifact {name!r}")
        return FileResponse(path)

    return app


async def _event_stream(
    store: JobStore, settings: ServiceSettings, job_id: str, sweep: StaleSweeper
) -> AsyncIterator[bytes]:
    last = None
    while True:
        job = store.get(job_id)  # a read, on the loop (see the module)
        if job is None:
            return
        view = JobView.of(job).model_dump_json()
        if view != last:
            last = view
            yield f"event: job\ndata: {view}\n\n".encode()
        if job.state in (*TERMINAL, "interrupted"):
            yield b"event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(settings.event_poll_s)
        if job.state in ("running", "cancelling"):
            await _sweep_when_due(sweep)


async def _sweep_when_due(sweep: StaleSweeper) -> None:
    """For the event loop: the (rare) write in a thread, never blocking the loop on the store's lock."""
    if sweep.due():
        await anyio.to_thread.run_sync(sweep)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _artifact(job_id: str, run: Path, path: Path) -> Artifact:
    name = path.relative_to(run).as_posix()
    return Artifact(
        name=name, bytes=path.stat().st_size, sha256=file_sha256(path), url=f"/jobs/{job_id}/artifacts/{name}"
    )


class _BodyLimit:
    """ASGI middleware: 413 for a body over the path's limit (`uploads.body_limit`), by its Content-Length or as
    it streams in."""

    def __init__(self, app: Callable[..., Awaitable[None]], settings: ServiceSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""), self.settings)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(send, limit)
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLargeError
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLargeError:
            await _too_large(send, limit)


class _TooLargeError(Exception):
    pass


async def _too_large(send: Callable[..., Any], limit: int) -> None:
    body = json.dumps({"detail": f"request body over the {limit}-byte limit"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
