"""``python -m push``: run the push service with settings from the environment.

``syncpipe push`` is the usual entry point; this one needs nothing but the push package
(benchmarks and tests start it as a subprocess).
"""

from __future__ import annotations

import argparse
import logging

from push.app import run
from push.settings import PushSettings
from schemas.settings import SharedSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m push", description=__doc__)
    parser.add_argument("--host", help="listen address (default SYNCPIPE_PUSH_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default SYNCPIPE_PUSH_PORT)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = PushSettings()
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    run(settings.model_copy(update=updates) if updates else settings, SharedSettings())


if __name__ == "__main__":
    main()
