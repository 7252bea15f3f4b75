# Deal Scout: one image for every role. The command picks it: `dealscout run` (default, everything in one process on
# SQLite), `dealscout leader`, `dealscout worker`, `dealscout api`, or `celery -A dealscout.tasks flower --port=5555`.
FROM python:3.11-slim

# Extras of pyproject.toml installed besides the dependencies: flower serves the Celery dashboard from this image.
ARG EXTRAS="flower"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEALSCOUT_DATA_DIR=/data \
    OPS_HTTP_HOST=0.0.0.0 \
    OPS_HTTP_PORT=8080

RUN useradd --create-home --uid 10001 dealscout \
    && mkdir -p /data /app && chown dealscout:dealscout /data /app

WORKDIR /src

# The dependencies get a layer of their own, built from pyproject.toml alone: editing the source does not reinstall
# them. The list (build requirements, dependencies, then each extra in EXTRAS) is read from pyproject.toml, so the
# image follows it; an extra it does not declare fails the build instead of leaving a role without its packages.
COPY pyproject.toml ./
RUN python -c 'import sys, tomllib; \
meta = tomllib.load(open("pyproject.toml", "rb")); project = meta["project"]; \
extras = project.get("optional-dependencies", {}); \
missing = [name for name in sys.argv[1:] if name not in extras]; \
sys.exit(f"pyproject.toml declares no extra {missing}") if missing else None; \
print("\n".join([*meta["build-system"]["requires"], *project["dependencies"], \
*(dep for name in sys.argv[1:] for dep in extras[name])]))' $EXTRAS > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, without touching the dependencies installed above; pip check fails the build when pyproject
# asks for something that layer did not install.
COPY README.md ./
COPY dealscout ./dealscout
COPY scout ./scout
COPY bot ./bot
COPY scrapers ./scrapers
COPY storage ./storage
COPY ops ./ops
COPY api ./api
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf build ./*.egg-info

# The working folder holds no source, so `celery -A dealscout.tasks` imports the installed package.
WORKDIR /app
USER dealscout

# The ops API (/health, /api/v1/monitoring/health/detailed, /api/v1/monitoring/metrics) of `run`, `leader` and `api`;
# a worker serves its metrics on WORKER_METRICS_PORT (9100) and overrides this check in deploy/compose.yaml.
EXPOSE 8080
# The image has no curl: the standard library asks /health, and a 503 or a refused connection exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('OPS_HTTP_PORT', '8080'), timeout=4)"]
CMD ["dealscout", "run"]
