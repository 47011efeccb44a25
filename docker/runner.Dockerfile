# The image a spikebatch Job runs: Python, spikebatch, and the analysis/sorting stack.
#
#   docker build -f docker/runner.Dockerfile -t spikebatch-runner:0.1.0 .
#   docker build -f docker/runner.Dockerfile --build-arg BASE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#       --build-arg PYTHON=python3 -t spikebatch-runner:0.1.0-gpu .
#
# Push it to a registry the cluster can pull from and name it in your profile's
# default_images. The Job's command is set by spikebatch
# (python -m spikebatch.entrypoints.runner workspace|sorting), so the image needs no
# entrypoint of its own.
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG PYTHON=python

# A CUDA base has no python; the slim one skips this step.
RUN if ! command -v python >/dev/null 2>&1; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python-is-python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg

WORKDIR /opt/spikebatch
COPY pyproject.toml README.md ./
COPY src ./src
# spikebatch with what jobs use inside the container: SpikeLab workspaces, SpikeInterface sorters.
RUN ${PYTHON} -m pip install ".[runner]"

# Jobs run as an unprivileged user; the runner writes only to its temporary work folder.
RUN useradd --create-home --uid 1000 runner
USER runner
WORKDIR /home/runner
CMD ["python", "-m", "spikebatch.entrypoints.runner", "workspace"]
