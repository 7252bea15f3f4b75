# Deal Scout: one container running the scheduler, the scans and alert delivery.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DEALSCOUT_DATA_DIR=/data \
    OPS_HTTP_HOST=0.0.0.0 \
    OPS_HTTP_PORT=8080

RUN useradd --create-home --uid 10001 dealscout \
    && mkdir -p /data && chown dealscout:dealscout /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY scout ./scout
COPY bot ./bot
COPY scrapers ./scrapers
COPY storage ./storage
COPY ops ./ops
RUN pip install .

USER dealscout
VOLUME ["/data"]
# The ops API: /health, /api/v1/monitoring/health/detailed, /api/v1/monitoring/metrics
EXPOSE 8080
CMD ["dealscout", "run"]
