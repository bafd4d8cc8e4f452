# syntax=docker/dockerfile:1
# One image for every syncpipe service (ingest, streams, push, the PWA server); the
# service is the command: `docker run IMAGE ingest`, `... push`, `... streams`.
# Every setting is an environment variable (`docker run IMAGE config` lists them).
#
#   docker build -t syncpipe .

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim

# ---- the PWA: a static build, served by the runtime image ------------------------------
FROM ${NODE_IMAGE} AS pwa
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
WORKDIR /src
# vite.config.ts reads the app version from ../pyproject.toml (push announces the same one).
COPY pyproject.toml ./
COPY pwa/package.json pwa/package-lock.json pwa/
RUN cd pwa && npm ci --no-audit --no-fund
COPY pwa/ pwa/
RUN cd pwa && npm run build

# ---- the Python services ---------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UV_VERSION=0.13.9
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app
# Dependencies first (a layer that survives code changes), exactly as locked.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the project itself.
COPY README.md ./
COPY schemas/ schemas/
COPY syncpipe/ syncpipe/
COPY broker/ broker/
COPY ingest/ ingest/
COPY streams/ streams/
COPY push/ push/
RUN uv sync --frozen --no-dev

COPY --from=pwa /src/pwa/dist /app/pwa/dist
COPY deploy/docker/healthcheck.py /app/deploy/docker/

# Non-root. The working directory is the only writable place (Faust keeps its
# `<app id>-data` directory in the current directory).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/syncpipe --create-home syncpipe
USER 10001:10001
WORKDIR /var/lib/syncpipe

# ingest, push, streams /metrics, PWA
EXPOSE 8080 8081 9193 5173
ENTRYPOINT ["syncpipe"]
CMD ["--help"]
