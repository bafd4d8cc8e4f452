"""Serve the built PWA from a container: ``syncpipe serve-pwa`` on a chosen address.

``syncpipe serve-pwa`` listens on 127.0.0.1 only (it is made for ``syncpipe dev``), which
a published container port cannot reach. This wrapper serves the same app
(:func:`syncpipe.pwa_static.create_pwa_app`, with its ``/config.js`` and ``/healthz``) on
``--host`` (default 0.0.0.0). Drop it once ``serve-pwa`` takes a ``--host`` option.

``--api-base`` and ``--ws-base`` are the URLs the *browser* uses to reach ingest and
push, so they name the published ports, not compose service names. No token is handed
out: users paste one minted with ``syncpipe token`` into the app's dev token form.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIST = Path("/app/pwa/dist")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=5173, help="Port to listen on.")
    parser.add_argument("--api-base", required=True, help="Browser-facing URL of ingest.")
    parser.add_argument("--ws-base", required=True, help="Browser-facing URL of push (ws://).")
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST, help="PWA build output.")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    import uvicorn

    from syncpipe.pwa_static import PwaNotBuiltError, create_pwa_app

    args = parse_args(argv)
    try:
        app = create_pwa_app(args.dist, api_base=args.api_base, ws_base=args.ws_base, token=None)
    except PwaNotBuiltError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
