"""``python -m broker [--host H] [--port P] [--data-dir D] ...``: run the broker alone.

Settings come from ``SYNCPIPE_BROKER_*``; flags override them. ``syncpipe broker`` is
the operator-facing entry point; this one keeps the broker runnable without the CLI.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from broker.server import main
from broker.settings import BrokerSettings


def _parse(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m broker")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--partitions", dest="default_partitions", type=int)
    p.add_argument("--fsync", choices=["group", "always", "interval", "never"])
    p.add_argument("--metrics-port", dest="metrics_port", type=int)
    return {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class _ContextFormatter(logging.Formatter):
    """``ts level logger event  key=value ...``: the context passed in ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        return f"{line}  {ctx}" if ctx else line


if __name__ == "__main__":
    handler = logging.StreamHandler()
    handler.setFormatter(_ContextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    overrides = _parse(sys.argv[1:])
    sys.exit(main(BrokerSettings(**overrides)))
