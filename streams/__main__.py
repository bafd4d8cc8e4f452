"""``python -m streams``: run the worker without the CLI (settings from the environment).

``syncpipe streams`` is the operator-facing entry point; this one keeps the worker
runnable on its own and is what the integration tests start.
"""

from __future__ import annotations

import logging
import sys

from schemas.settings import SharedSettings
from streams.app import run_worker
from streams.settings import StreamsSettings

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sys.exit(run_worker(StreamsSettings(), SharedSettings()))
