# syntax=docker/dockerfile:1
# auditor as a container image, for the scheduled Container Apps job in deploy/ (docs/deployment.md):
#   docker build -t REGISTRY.azurecr.io/auditor:VERSION . && docker push REGISTRY.azurecr.io/auditor:VERSION
# The job runs the pushed image by digest. No credentials are baked in: the job signs in with its
# managed identity at run time.

# python:3.11-slim pinned by digest (the multi-arch index as resolved in August 2026, Python
# 3.11.16). Refresh deliberately: `docker buildx imagetools inspect python:3.11-slim`, or build
# from a mirror in your own registry with --build-arg PYTHON_IMAGE=...@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# --- build: the auditor wheel and the wheels of its dependencies --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY auditor ./auditor
COPY checks ./checks
COPY reports ./reports
COPY config ./config
RUN python -m pip wheel --wheel-dir /wheels .

# --- run: the installed wheels only, as an unprivileged user -------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="auditor" \
      org.opencontainers.image.description="Compliance and audit reports for Azure Container Apps jobs" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN groupadd --system --gid 10001 auditor \
 && useradd --system --uid 10001 --gid auditor --home-dir /home/auditor --create-home \
        --shell /usr/sbin/nologin auditor
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links /wheels auditor \
 && python -m pip uninstall --yes pip
USER 10001:10001
WORKDIR /home/auditor
# Reports go to ./audit-reports/<UTC timestamp>/ (the job's ephemeral disk); add --upload URL to
# keep them (the Bicep job does).
ENTRYPOINT ["auditor"]
CMD ["scan", "--auth", "managed-identity"]
