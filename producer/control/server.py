"""The control routes on the metrics server (``run --control``): the live page at ``/``,
``GET``/``PATCH /v1/status`` and ``POST /v1/stop``.

Off the loopback interface a token is required (``LOADGEN_CONTROL_TOKEN``): every control
route then wants ``Authorization: Bearer TOKEN`` (the page passes on the ``?token=`` it was
opened with), compared in constant time (hmac.compare_digest), and answers 401 without it.
/metrics and /healthz stay open, as without --control.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from importlib import resources

import orjson
from aiohttp import web

from producer.control.state import ControlError, RunControl, parse_patch
from producer.errors import UsageError

TOKEN_VARIABLE = "LOADGEN_CONTROL_TOKEN"
PAGE = "page.html"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def check_bind(host: str, token: str | None) -> None:
    """Refuse control on a reachable address without a token: anyone who can reach the port
    could then change the load or stop the run."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"--control on --metrics-host {host} lets anyone who reaches it steer the run: set "
            f"{TOKEN_VARIABLE} to a secret (clients send it as a Bearer token), or bind 127.0.0.1"
        )


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _who(request: web.Request) -> str:
    via = request.headers.get("X-Loadgen-Client", "api")[:20]
    return f"{via} {request.remote or '?'}"


def add_routes(app: web.Application, control: RunControl, token: str | None) -> None:
    expected = token.encode() if token else None

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is None or not (request.path == "/" or request.path.startswith("/v1/")):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        given = given or request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), expected):
            return _json({"error": "a valid control token is required (Authorization: Bearer ...)"}, 401)
        return await handler(request)

    async def page(_request: web.Request) -> web.Response:
        html = resources.files("producer.control").joinpath(PAGE).read_bytes()
        return web.Response(body=html, content_type="text/html", charset="utf-8")

    async def get_status(_request: web.Request) -> web.Response:
        return _json(control.status())

    async def patch_status(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"error": "the body is not JSON"}, 400)
        try:
            rate, paused = parse_patch(body)
            await control.patch(rate, paused, _who(request))
        except ControlError as exc:
            return _json({"error": str(exc)}, 409 if control.stopping else 400)
        return _json(control.status())

    async def post_stop(request: web.Request) -> web.Response:
        await control.stop(_who(request))
        return _json(control.status(), 202)

    app.middlewares.append(auth)
    app.router.add_get("/", page)
    app.router.add_get("/v1/status", get_status)
    app.router.add_patch("/v1/status", patch_status)
    app.router.add_post("/v1/stop", post_stop)
