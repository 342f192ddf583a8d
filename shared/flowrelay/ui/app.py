"""The web UI's application: pages (HTML rendered on the server, kept live by htmx polling
fragments) and a JSON API of the same things, over one stack (``StackAccess``).

Every read and every action goes through ``flowrelay.operations`` or the store, as the CLI's
do. Safety, since the UI has no login (docs/ui.md): it is served on loopback only unless asked
otherwise; requests must name this machine as their Host (a DNS-rebinding page cannot reach it);
a form that changes something carries the token of this server's pages, and the JSON API's
changes must be sent as JSON (a page of another origin cannot send either without the browser
asking first, and nothing here answers such questions).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flowrelay.aws.bus import Publisher
from flowrelay.aws.logs import log_location
from flowrelay.control.store import Store
from flowrelay.core.lifecycle import RunState
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun, HistoryEntry, restart_refusal
from flowrelay.operations import NotFoundError, OperationError, RefusedError
from flowrelay.operations.flows import FlowDetail, FlowSummaries, flow_detail, flow_summaries
from flowrelay.operations.limits import limit_json, run_limits
from flowrelay.operations.logs import RunLog, read_log
from flowrelay.operations.runs import (
    RunFilter,
    console_url,
    detail_json,
    failed_trace,
    find_runs,
    get_run,
    live_kubernetes,
    origin,
    request_cancel,
    request_restart,
    restarted_as,
    run_state,
)
from flowrelay.ui import views

logger = logging.getLogger("flowrelay.ui")

#: Runs on one page of a list.
PAGE_RUNS = 50
#: Log lines the run page shows (and follows), and the most the API gives at once.
LOG_LINES = 200
LOG_MOST = 10_000
#: The most runs one page lists.
MOST_RUNS = 500
#: Seconds between a live page's polls.
POLL_SECONDS = 2
#: htmx stops polling an element whose poll is answered with this status.
STOP_POLLING = 286
#: Histories read side by side for a page of runs' sparklines.
HISTORY_READERS = 8
#: Hosts a request may name: this machine's loopback names (plus the host served on).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class UnavailableError(OperationError):
    """What the page needs is not configured for this stack (its outputs, a schedule group)."""


@dataclass
class StackAccess:
    """The stack the UI shows, as the CLI resolved it: its table and bus, a factory of AWS
    clients, its outputs (the dead-letter queues, the schedule group; raises
    ``UnavailableError`` saying how to name the stack when they cannot be read), the
    Kubernetes launcher (made when a run on Kubernetes is shown) and who acts (recorded on
    cancels and restarts)."""

    table_name: str
    bus_name: str
    client: Callable[[str], Any]
    outputs: Callable[[], Mapping[str, str]]
    kubernetes: Callable[[], Any]
    requested_by: str | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _made: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def aws(self, service: str) -> Any:
        """The client of ``service``, made once and shared by every request: boto3's clients
        are safe to share between threads, but not to make side by side."""
        with self._lock:
            if service not in self._made:
                self._made[service] = self.client(service)
            return self._made[service]

    @property
    def store(self) -> Store:
        client = self.aws("dynamodb")
        with self._lock:
            if "store" not in self._made:
                self._made["store"] = Store(client, self.table_name)
            store: Store = self._made["store"]
        return store

    @property
    def publisher(self) -> Publisher:
        client = self.aws("events")
        with self._lock:
            if "publisher" not in self._made:
                self._made["publisher"] = Publisher(client, self.bus_name)
            publisher: Publisher = self._made["publisher"]
        return publisher

    def schedule_target(self) -> Any:
        from flowrelay.control.schedule_sync import ScheduleTarget

        target = ScheduleTarget.of_stack(self.outputs())
        if target is None:
            raise UnavailableError(
                "this stack has no schedule group (ScheduleGroupName output): deploy the "
                "current template.yaml"
            )
        return target


def create_app(access: StackAccess, *, allowed_hosts: tuple[str, ...] = ()) -> Starlette:
    """The UI's ASGI application over ``access``'s stack. ``allowed_hosts``: host names a
    request may name besides loopback's (the address it is served on, when not loopback);
    never ``*``: the Host check is what keeps a DNS-rebinding page out.

    >>> app = create_app(access)                                # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8765)           # doctest: +SKIP
    """
    pages = Pages(access)
    static = StaticFiles(directory=str(resources.files("flowrelay.ui") / "static"))
    routes = [
        Route("/", lambda request: RedirectResponse("/runs", 303)),
        Route("/runs", pages.runs),
        Route("/runs/rows", pages.runs_rows),
        Route("/runs/{run_id}", pages.run),
        Route("/runs/{run_id}/live", pages.run_live),
        Route("/runs/{run_id}/log", pages.run_log),
        Route("/runs/{run_id}/cancel", pages.cancel, methods=["POST"]),
        Route("/runs/{run_id}/retry", pages.retry, methods=["POST"]),
        Route("/flows", pages.flows),
        Route("/flows/{name:path}", pages.flow),
        Route("/targets", pages.targets),
        Route("/limits", pages.limits),
        Route("/dlq", pages.dead_letters),
        Route("/dlq/redrive", pages.redrive, methods=["POST"]),
        Route("/api/runs", pages.api_runs),
        Route("/api/runs/{run_id}", pages.api_run),
        Route("/api/runs/{run_id}/log", pages.api_log),
        Route("/api/runs/{run_id}/cancel", pages.api_cancel, methods=["POST"]),
        Route("/api/runs/{run_id}/retry", pages.api_retry, methods=["POST"]),
        Route("/api/flows", pages.api_flows),
        Route("/api/flows/{name:path}", pages.api_flow),
        Route("/api/targets", pages.api_targets),
        Route("/api/limits", pages.api_limits),
        Route("/api/dlq", pages.api_dead_letters),
        Route("/api/dlq/redrive", pages.api_redrive, methods=["POST"]),
        Mount("/static", static, name="static"),
    ]
    if "*" in allowed_hosts:
        raise ValueError("the UI answers only to names given one by one, never to '*'")
    hosts = [*LOOPBACK_HOSTS, *allowed_hosts]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
            Middleware(Guarded, pages=pages),
        ],
        exception_handlers={OperationError: pages.operation_error},
    )


class Guarded(BaseHTTPMiddleware):
    """Every answer: what went wrong unexpectedly as one line (``Pages.failure``; Starlette's
    own handler would also log its traceback twice), and no page of the UI in another site's
    frame (a Cancel button under a decoy: clickjacking)."""

    def __init__(self, app: Any, pages: Pages) -> None:
        super().__init__(app)
        self.pages = pages

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            response = await call_next(request)
        except Exception as exc:  # everything a user must see in one line
            response = self.pages.failure(request, exc)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def templates() -> Environment:
    """The pages' Jinja environment (autoescaped HTML)."""
    environment = Environment(
        loader=FileSystemLoader(str(resources.files("flowrelay.ui") / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["duration"] = views.duration_words
    environment.filters["css"] = views.state_css
    environment.filters["when"] = _when
    environment.filters["percent"] = lambda share: f"{share * 100:.2f}%"
    environment.globals["poll_seconds"] = POLL_SECONDS
    return environment


def _when(moment: datetime | None) -> str:
    """A time as the pages show it: UTC, to the second (the title gives it whole)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class Pages:
    """The UI's endpoints (each a sync function: Starlette runs them on its thread pool, as
    boto3 blocks)."""

    def __init__(self, access: StackAccess) -> None:
        self.access = access
        self.jinja = templates()
        #: The token this server's forms carry (a page of another origin cannot read it).
        self.token = secrets.token_urlsafe(24)

    # -- rendering ----------------------------------------------------------------------------

    def html(self, name: str, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
        body = self.jinja.get_template(name).render(
            request=request, token=self.token, now=self.access.clock(), **values
        )
        return HTMLResponse(body, status_code=status)

    def operation_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OperationError)
        status = 404 if isinstance(exc, NotFoundError) else 409
        if isinstance(exc, UnavailableError):
            status = 503
        elif isinstance(exc, RefusedError):
            status = 409 if request.method == "POST" else 400
        return self.error(request, str(exc), status)

    def failure(self, request: Request, exc: Exception) -> Response:
        """Anything else that went wrong, in one line: AWS's answer, or what failed (one line
        in the server's log too; the traceback at debug level)."""
        message = failure_line(exc)
        logger.warning("%s %s: %s", request.method, request.url.path, message)
        logger.debug("the traceback", exc_info=exc)
        return self.error(request, message, 502)

    def error(self, request: Request, message: str, status: int) -> Response:
        """An error as the asker reads it: JSON for the API, a line in place of a fragment
        of a live page (htmx asked), else a page."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        if request.headers.get("hx-request"):
            line = escape(f"error: {message}")
            return HTMLResponse(f'<div class="error">{line}</div>', status_code=status)
        return self.html("error.html", request, status=status, message=message)

    # -- runs ---------------------------------------------------------------------------------

    def _filter(self, request: Request, flow: str | None = None) -> RunFilter:
        query = request.query_params
        state_name = query.get("state") or None
        state = run_state(state_name) if state_name is not None else None
        since = None
        if query.get("since"):
            try:
                since = datetime.fromisoformat(query["since"])
            except ValueError:
                raise RefusedError(
                    f"since: {query['since']!r} is not a time (2026-11-30 or 2026-11-30T08:00)"
                ) from None
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
        limit = _positive(query.get("limit"), PAGE_RUNS, "limit", most=MOST_RUNS)
        return RunFilter(
            flow=flow if flow is not None else (query.get("flow") or None),
            state=state,
            active=query.get("active") in ("1", "true", "on"),
            label=query.get("label") or None,
            target=query.get("target") or None,
            since=since,
            limit=limit,
        )

    def _page(self, request: Request, flow: str | None = None) -> dict[str, Any]:
        wanted = self._filter(request, flow)
        before = request.query_params.get("before") or None
        page = find_runs(self.access.store, wanted, before=before)
        now = self.access.clock()
        histories = self._histories(page.runs)
        rows = [
            {
                "run": run,
                "origin": origin(run),
                "elapsed": views.elapsed(run, now),
                "segments": views.timeline(run, histories[run.run_id], now),
            }
            for run in page.runs
        ]
        filters = {
            key: value for key, value in request.query_params.items() if key != "before" and value
        }
        return {
            "rows_query": urlencode({**filters, **({"flow": flow} if flow else {})}),
            "flow_name": wanted.flow,
            "rows": rows,
            "next": page.next,
            "next_query": urlencode({**filters, "before": page.next}) if page.next else None,
            "query": urlencode(filters),
            "filters": filters,
            "wanted": wanted,
            "before": before,
            "counts": views.counts_by_state(page.runs),
            "more": page.more,
            "one_list": wanted.is_one_page,
            "states": list(RunState),
            "live": before is None,
        }

    def _histories(self, runs: list[FlowRun]) -> dict[str, list[HistoryEntry]]:
        """Each run's history, read side by side (one Query each)."""
        if not runs:
            return {}
        store = self.access.store
        with ThreadPoolExecutor(max_workers=min(HISTORY_READERS, len(runs))) as pool:
            histories = list(pool.map(lambda run: store.runs.history(run.run_id), runs))
        return {run.run_id: history for run, history in zip(runs, histories, strict=True)}

    def runs(self, request: Request) -> Response:
        return self.html("runs.html", request, **self._page(request))

    def runs_rows(self, request: Request) -> Response:
        return self.html("_runs_rows.html", request, **self._page(request))

    def _run_view(self, run_id: str) -> dict[str, Any]:
        store = self.access.store
        run = get_run(store, run_id)
        history = store.runs.history(run_id)
        now = self.access.clock()
        location = log_location(run.infrastructure)
        cluster_notes = [entry for entry in history if entry.note and entry.details.get("cluster")]
        return {
            "run": run,
            "history": history,
            "segments": views.timeline(run, history, now),
            "elapsed": views.elapsed(run, now),
            "origin": origin(run),
            "restarted_as": restarted_as(history),
            "trace": failed_trace(history),
            "limits": run_limits(store, run.run_id, run.limits) if run.limits else [],
            "cluster": views.cluster_of(cluster_notes),
            "log_where": location.model_dump() if location is not None else None,
            "console_url": console_url(location) if location is not None else None,
            # As request_restart and request_cancel decide: a button that can only be refused
            # is not offered.
            "can_retry": restart_refusal(run) is None and not restarted_as(history),
            "can_cancel": not run.state.is_final,
        }

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            view = self._run_view(run_id)
        except NotFoundError:
            if request.query_params.get("requested") != "1":
                raise
            # Just asked for (a retry): dispatch creates it in a moment; the page waits.
            return self.html(
                "requested.html",
                request,
                run_id=run_id,
                flash=request.query_params.get("flash"),
            )
        view["kubernetes"] = live_kubernetes(view["run"], self.access.kubernetes)
        view["flash"] = request.query_params.get("flash")
        return self.html("run.html", request, **view)

    def run_live(self, request: Request) -> Response:
        view = self._run_view(request.path_params["run_id"])
        final = view["run"].state.is_final
        return self.html("_run_live.html", request, status=STOP_POLLING if final else 200, **view)

    def _read_log(self, run: FlowRun, last: int) -> RunLog:
        return read_log(
            run,
            last,
            logs_client=lambda: self.access.aws("logs"),
            kubernetes=self.access.kubernetes,
        )

    def _log(self, run: FlowRun, last: int) -> dict[str, Any]:
        try:
            log = self._read_log(run, last)
            lines = list(log.lines)
        except NotFoundError as exc:
            return {"where": None, "lines": [], "problem": str(exc)}
        return {"where": log.where, "lines": lines, "problem": None}

    def run_log(self, request: Request) -> Response:
        run = get_run(self.access.store, request.path_params["run_id"])
        last = _positive(request.query_params.get("last"), LOG_LINES, "last")
        log = self._log(run, last)
        status = STOP_POLLING if run.state.is_final else 200
        return self.html("_log.html", request, status=status, run=run, **log)

    def _checked_form(self, form: Mapping[str, Any]) -> None:
        if not secrets.compare_digest(str(form.get("token", "")), self.token):
            raise RefusedError(
                "this form is not one of this server's pages (reload the page and try again)"
            )

    async def cancel(self, request: Request) -> Response:
        form = await request.form()
        self._checked_form(form)
        run_id = request.path_params["run_id"]
        reason = str(form.get("reason") or "") or None
        outcome = await _threaded(
            request_cancel,
            self.access.store,
            self.access.publisher,
            run_id,
            reason=reason,
            requested_by=self.access.requested_by,
        )
        return RedirectResponse(f"/runs/{run_id}?{urlencode({'flash': outcome.message})}", 303)

    async def retry(self, request: Request) -> Response:
        form = await request.form()
        self._checked_form(form)
        run_id = request.path_params["run_id"]
        restart = await _threaded(
            request_restart,
            self.access.store,
            self.access.publisher,
            run_id,
            requested_by=self.access.requested_by,
        )
        flash = f"run {run_id} ({restart.original.state}) restarted as this run"
        query = urlencode({"requested": "1", "flash": flash})
        return RedirectResponse(f"/runs/{restart.new_id}?{query}", 303)

    # -- flows, targets, limits, dead letters ---------------------------------------------------

    def _schedules(self) -> tuple[Any, Any, str | None]:
        """The scheduler client and the stack's schedule target, or why they cannot be had."""
        try:
            return self.access.aws("scheduler"), self.access.schedule_target(), None
        except UnavailableError as exc:
            return None, None, str(exc)

    def _flows(self) -> tuple[FlowSummaries, str | None]:
        """Every flow (``flow_summaries``), and why their schedules are not shown, if not."""
        scheduler, target, why = self._schedules()
        return flow_summaries(self.access.store, scheduler, target, now=self.access.clock()), why

    def _flow(self, name: str) -> tuple[FlowDetail, str | None]:
        """One flow (``flow_detail``), and why its schedules are not shown, if not."""
        scheduler, target, why = self._schedules()
        detail = flow_detail(self.access.store, name, scheduler, target, now=self.access.clock())
        return detail, why

    def _targets(self) -> list[Target]:
        return sorted(self.access.store.targets.list(), key=lambda target: target.name)

    def flows(self, request: Request) -> Response:
        summaries, why = self._flows()
        return self.html("flows.html", request, summaries=summaries, schedules_why=why)

    def flow(self, request: Request) -> Response:
        name = request.path_params["name"]
        detail, why = self._flow(name)
        return self.html(
            "flow.html",
            request,
            detail=detail,
            schedules_why=why,
            **self._page(request, flow=name),
        )

    def targets(self, request: Request) -> Response:
        return self.html("targets.html", request, targets=self._targets())

    def limits(self, request: Request) -> Response:
        found = self.access.store.limits.list()
        return self.html("limits.html", request, limits=found)

    def _dead_letters(self) -> list[Any]:
        from flowrelay.control.dead_letters import list_dead_letters

        return list_dead_letters(self.access.aws("sqs"), self._queues(), store=self.access.store)

    def _queues(self) -> Any:
        from flowrelay.control.dead_letters import DeadLetterQueues
        from flowrelay.launchers.kinds import event_readers

        try:
            return DeadLetterQueues.from_outputs(self.access.outputs(), event_readers())
        except ValueError as exc:
            raise UnavailableError(str(exc)) from None

    def dead_letters(self, request: Request) -> Response:
        try:
            letters, why = self._dead_letters(), None
        except UnavailableError as exc:
            letters, why = [], str(exc)
        flash = request.query_params.get("flash")
        return self.html("dlq.html", request, letters=letters, why=why, flash=flash)

    async def redrive(self, request: Request) -> Response:
        form = await request.form()
        self._checked_form(form)
        everything = form.get("all") == "1"  # the "Redrive all" button: the boxes are moot
        message_ids = [] if everything else [str(v) for v in form.getlist("message_id") if v]
        results = await _threaded(self._redrive, message_ids, everything)
        moved = sum(result.status == "moved" for result in results)
        problems = [
            f"{r.message_id}: {r.reason or r.status}" for r in results if r.status != "moved"
        ]
        flash = f"{moved} moved" + (f"; {'; '.join(problems)}" if problems else "")
        return RedirectResponse(f"/dlq?{urlencode({'flash': flash})}", 303)

    def _redrive(self, message_ids: list[str], everything: bool) -> list[Any]:
        from flowrelay.operations.dead_letters import redrive_letters

        return redrive_letters(
            self.access.aws("sqs"),
            self._queues(),
            message_ids=message_ids,
            everything=everything,
        )

    # -- the JSON API ---------------------------------------------------------------------------

    def api_runs(self, request: Request) -> Response:
        wanted = self._filter(request)
        page = find_runs(
            self.access.store, wanted, before=request.query_params.get("before") or None
        )
        return _json(
            {"runs": [run.model_dump(mode="json") for run in page.runs], "next": page.next}
        )

    def api_run(self, request: Request) -> Response:
        view = self._run_view(request.path_params["run_id"])
        run: FlowRun = view["run"]
        shown = detail_json(
            run,
            view["history"],
            limits=view["limits"],
            kubernetes=live_kubernetes(run, self.access.kubernetes),
        )
        shown["timeline"] = [
            {"state": str(s.state), "start": s.start.isoformat(), "seconds": s.seconds}
            for s in view["segments"]
        ]
        return _json(shown)

    def api_log(self, request: Request) -> Response:
        run = get_run(self.access.store, request.path_params["run_id"])
        last = _positive(request.query_params.get("last"), LOG_LINES, "last")
        return _json(self._read_log(run, last).as_json())

    async def _json_body(self, request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise RefusedError("send this request as JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError:
            raise RefusedError("the request's body is not JSON") from None
        if not isinstance(body, dict):
            raise RefusedError("the request's body must be a JSON object")
        return body

    async def api_cancel(self, request: Request) -> Response:
        body = await self._json_body(request)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise RefusedError("reason: must be text")
        outcome = await _threaded(
            request_cancel,
            self.access.store,
            self.access.publisher,
            request.path_params["run_id"],
            reason=reason,
            requested_by=self.access.requested_by,
        )
        return _json(outcome.as_json(), 202 if outcome.request is not None else 200)

    async def api_retry(self, request: Request) -> Response:
        await self._json_body(request)
        restart = await _threaded(
            request_restart,
            self.access.store,
            self.access.publisher,
            request.path_params["run_id"],
            requested_by=self.access.requested_by,
        )
        return _json(restart.as_json(), 202)

    def api_flows(self, request: Request) -> Response:
        return _json(self._flows()[0].model_dump(mode="json"))

    def api_flow(self, request: Request) -> Response:
        return _json(self._flow(request.path_params["name"])[0].model_dump(mode="json"))

    def api_targets(self, request: Request) -> Response:
        return _json([target.model_dump(mode="json") for target in self._targets()])

    def api_limits(self, request: Request) -> Response:
        return _json([limit_json(state) for state in self.access.store.limits.list()])

    def api_dead_letters(self, request: Request) -> Response:
        return _json([letter.model_dump(mode="json") for letter in self._dead_letters()])

    async def api_redrive(self, request: Request) -> Response:
        body = await self._json_body(request)
        message_ids = body.get("message_ids") or []
        if not isinstance(message_ids, list) or not all(isinstance(m, str) for m in message_ids):
            raise RefusedError("message_ids: must be a list of message ids")
        results = await _threaded(self._redrive, message_ids, body.get("all") is True)
        return _json([result.model_dump(mode="json") for result in results])


def failure_line(exc: BaseException) -> str:
    """One line for an unexpected failure: AWS's, as the CLI says it, else its type and
    text."""
    from flowrelay.aws.failures import aws_failure

    failure = aws_failure(exc)
    if failure is not None:
        return failure.message
    return " ".join(f"{type(exc).__name__}: {exc}".split())


async def _threaded(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args, **kwargs)


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status)


def _positive(text: str | None, default: int, name: str, most: int = LOG_MOST) -> int:
    """A whole number from 1 to ``most`` given as ``name``, else ``default``; RefusedError
    saying which numbers it may be (never a number quietly changed)."""
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        raise RefusedError(f"{name}: {text!r} is not a number") from None
    if not 1 <= number <= most:
        raise RefusedError(f"{name}: {number} is not from 1 to {most}")
    return number
