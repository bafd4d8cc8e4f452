"""Builds (when missing) and serves the PWA (``pwa/dist``) and its runtime ``/config.js``.

``/config.js`` sets ``window.SYNCPIPE_CONFIG = {apiBase, wsBase, token}`` so one build
runs against any backend. Unknown paths fall back to ``index.html`` (the app routes on
the client); the service worker and config are never cached by the browser's HTTP cache.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

NO_STORE = {"Cache-Control": "no-store"}


class PwaNotBuiltError(Exception):
    """The PWA has no build output to serve."""


class PwaBuildError(Exception):
    """The PWA has no build output and cannot be built; the message says what to do."""


SKIP_HINT = "or run `syncpipe dev --no-build-pwa` to start without the app"


def pwa_dist() -> Path:
    """The build output of the repository's PWA."""
    return Path(__file__).resolve().parents[1] / "pwa" / "dist"


def ensure_pwa_built(
    dist: Path, log_file: Path, echo: Callable[[str], None], *, path: str | None = None
) -> None:
    """Build the PWA when ``dist`` has no index.html (npm from ``path``, default PATH).

    ``npm ci`` first when node_modules is missing; the build's output goes to
    ``log_file``. Raises :class:`PwaBuildError` when it cannot build.
    """
    if (dist / "index.html").is_file():
        return
    pwa = dist.parent
    if not (pwa / "package.json").is_file():
        raise PwaBuildError(
            f"{dist} is missing and there is no {pwa / 'package.json'} to build it; {SKIP_HINT}"
        )
    npm = shutil.which("npm", path=path)
    if npm is None:
        raise PwaBuildError(
            f"{dist} is missing and npm is not on PATH: install Node.js 20+ (with npm) to "
            f"build the PWA, {SKIP_HINT}"
        )
    echo(f"building the PWA into {dist} (first run; output in {log_file})...")
    steps = [] if (pwa / "node_modules").is_dir() else [[npm, "ci", "--no-audit", "--no-fund"]]
    steps.append([npm, "run", "build"])
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        for step in steps:
            log.write(f"$ {' '.join(step)}\n")
            log.flush()
            proc = subprocess.run(
                step, cwd=pwa, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                check=False,
            )  # fmt: skip
            log.write(proc.stdout)
            if proc.returncode != 0:
                tail = "\n    ".join(proc.stdout.strip().splitlines()[-8:])
                raise PwaBuildError(
                    f"building the PWA failed: `npm {' '.join(step[1:])}` in {pwa} exited with "
                    f"{proc.returncode} (full output in {log_file}):\n    {tail}\n"
                    f"Fix the build, {SKIP_HINT}"
                )
    if not (dist / "index.html").is_file():
        raise PwaBuildError(
            f"the PWA build finished but wrote no {dist / 'index.html'}; {SKIP_HINT}"
        )


def config_script(api_base: str, ws_base: str, token: str | None) -> str:
    doc = {"apiBase": api_base, "wsBase": ws_base, "token": token}
    return f"window.SYNCPIPE_CONFIG = {orjson.dumps(doc).decode()};\n"


def create_pwa_app(dist: Path, *, api_base: str, ws_base: str, token: str | None) -> Starlette:
    """The static app; raises :class:`PwaNotBuiltError` when ``dist`` has no index.html."""
    dist = dist.resolve()
    index = dist / "index.html"
    if not index.is_file():
        raise PwaNotBuiltError(
            f"{index} not found: build the PWA first (npm --prefix pwa run build)"
        )
    script = config_script(api_base, ws_base, token)

    async def config_js(_: Request) -> Response:
        return PlainTextResponse(script, media_type="text/javascript", headers=NO_STORE)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def files(request: Request) -> Response:
        rel = request.path_params["path"]
        target = (dist / rel).resolve()
        if not target.is_relative_to(dist):
            raise HTTPException(404)
        if target.is_file():
            headers = NO_STORE if target.name in {"sw.js", "index.html"} else None
            return FileResponse(target, headers=headers)
        if Path(rel).suffix:  # a missing asset is a 404, not the app shell
            raise HTTPException(404)
        return FileResponse(index, headers=NO_STORE)

    routes = [
        Route("/config.js", config_js),
        Route("/healthz", healthz),
        Route("/{path:path}", files),
    ]
    return Starlette(routes=routes)
