# syncpipe task runner. `uv run just --list` shows every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

uv := "uv run --frozen"

# Show the recipes.
default:
    @just --list

# Every test lane: lint, types, import contracts, codegen drift, PWA unit and end-to-end tests, Python tests.
test: lint gen-check pwa-check pwa-e2e pytest

# Static checks: ruff, formatting, mypy --strict, import-linter contracts.
lint:
    {{uv}} ruff check .
    {{uv}} ruff format --check .
    {{uv}} mypy
    {{uv}} lint-imports

# Format and auto-fix the Python code.
fmt:
    {{uv}} ruff check --fix .
    {{uv}} ruff format .

# Python tests (pass extra pytest arguments after the recipe name).
pytest *args:
    {{uv}} pytest {{args}}

# Regenerate models, types and the README config table from the schemas.
gen: pwa-deps
    {{uv}} syncpipe gen

# Fail if any generated file differs from what `just gen` would write.
gen-check: pwa-deps
    {{uv}} syncpipe gen --check

# Install the PWA's npm packages when they are missing or stale.
pwa-deps:
    @if [ ! -d pwa/node_modules ] || [ pwa/package-lock.json -nt pwa/node_modules/.package-lock.json ]; then npm ci --prefix pwa --no-audit --no-fund; fi

# PWA lanes: typecheck (generated types included) and unit tests.
pwa-check: pwa-deps
    npm --prefix pwa run typecheck
    npm --prefix pwa test

# PWA end-to-end tests: Playwright with Debian's Chromium against `syncpipe dev`.
pwa-e2e: pwa-deps
    npm --prefix pwa run e2e

# Run the whole system on this machine.
dev:
    {{uv}} syncpipe dev

# Run one component.
broker *args:
    {{uv}} syncpipe broker {{args}}

ingest *args:
    {{uv}} syncpipe ingest {{args}}

streams *args:
    {{uv}} syncpipe streams {{args}}

push *args:
    {{uv}} syncpipe push {{args}}

# Starts `syncpipe dev`, 1,000 WebSocket subscribers, ops through ingest at swept rates.
# End-to-end benchmark (teams and broadcast profiles): perf/results/bench.{json,md,png}.
bench *args:
    {{uv}} python perf/bench.py {{args}}

# Every component benchmark in turn (they print numbers; they are not tests).
bench-all:
    @for b in perf/bench_*.py; do echo "== $b"; {{uv}} python "$b"; done

# Ingest throughput, streams apply throughput and ingest→state latency at fixed rates.
bench-pipeline *args:
    {{uv}} python perf/bench_pipeline.py {{args}}

# Needs a running system (`just dev` in another shell); INGEST_URL overrides the host.
# Locust, headless: ingest users post op batches, WebSocket users measure end-to-end latency.
locust *args:
    {{uv}} locust -f perf/locustfile.py --headless -u 20 -r 10 -t 60s --host "${INGEST_URL:-http://127.0.0.1:8080}" {{args}}

# Full-stack test: `syncpipe dev` as a subprocess, driven over HTTP and WebSocket only.
e2e *args:
    {{uv}} pytest tests/e2e {{args}}

# One benchmark: produce/consume throughput and latency of the embedded broker.
bench-broker *args:
    {{uv}} python perf/bench_broker.py {{args}}

# Ingest throughput with batches of 1 and 100 ops.
bench-ingest *args:
    {{uv}} python perf/bench_ingest.py {{args}}

# WebSocket fanout throughput and send-path latency beside a raw websockets baseline.
bench-push *args:
    {{uv}} python perf/bench_push.py {{args}}

# Streams apply throughput through a real broker, Redis and worker.
bench-streams *args:
    {{uv}} python perf/bench_streams.py {{args}}

# LWW apply throughput in-process.
bench-lww *args:
    {{uv}} python perf/bench_lww.py {{args}}

# Needs a running system (`just dev` in another shell); each fails when a threshold is crossed.
# k6 scenarios: WebSocket fanout with ops driven through ingest, then ingest over HTTP.
k6 *args:
    TOKEN="${TOKEN:-$({{uv}} syncpipe token --tenant k6 --user k6)}" {{uv}} k6 run {{args}} perf/k6/ws_fanout.js
    TOKEN="${TOKEN:-$({{uv}} syncpipe token --tenant k6 --user k6)}" {{uv}} k6 run {{args}} perf/k6/ingest_http.js

# One k6 scenario: ingest over HTTP.
k6-ingest *args:
    TOKEN="${TOKEN:-$({{uv}} syncpipe token --tenant k6 --user k6)}" {{uv}} k6 run {{args}} perf/k6/ingest_http.js
