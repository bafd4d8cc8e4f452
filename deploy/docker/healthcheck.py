"""Container healthcheck: exit 0 when every URL answers 2xx, else 1 (stdlib only).

Used by compose's ``healthcheck`` (the slim image has no curl):
``python /app/deploy/docker/healthcheck.py http://127.0.0.1:8080/readyz``.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def check(url: str, timeout_s: float = TIMEOUT_S) -> str | None:
    """None when ``url`` answers 2xx, else what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response (and its socket)
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: healthcheck.py URL [URL...]", file=sys.stderr)
        return 2
    problems = [p for p in map(check, argv) if p is not None]
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
