# The image a spikebatch Job runs: Python in a virtual environment, spikebatch with the
# analysis and sorting stack (its `runner` extra), run as the unprivileged uid 1000.
#
# Build it with `spikebatch image build` (see `spikebatch image build --help`): that
# command makes the build context this file expects, next to it:
#   requirements.txt        what the dependency layer installs (the `runner` extra, or
#                           `spikebatch[runner]==VERSION` when spikebatch came from an index)
#   build-requirements.txt  the build backend, so the package layer needs no network
#   source/                 pyproject.toml, README.md and src/ of a source checkout (empty
#                           when spikebatch came from an index)
#
# Build arguments:
#   BASE    python:3.11-slim (default); a CUDA image (no Python: python3 and venv come
#           from apt); or a distro image whose Python is "externally managed" (PEP 668).
#           Everything is installed into /opt/spikebatch/venv, never into the base's Python.
#   PYTHON  the interpreter that makes the virtual environment (default python3).
# Build secret (optional) `ca_bundle`: a PEM bundle that pip and apt trust while building,
# for networks whose TLS is re-signed by a proxy. It is mounted only during the RUN steps
# that download, and is in no layer of the image.
#
# The Job's command is set by spikebatch (python -m spikebatch.entrypoints.runner
# workspace|sorting). Pods may run it with a read-only root filesystem: everything the
# stack writes at run time (caches, matplotlib and numba state) goes under /tmp, which
# the pod mounts as an emptyDir.
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG PYTHON=python3

ENV VIRTUAL_ENV=/opt/spikebatch/venv \
    PATH=/opt/spikebatch/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DEBIAN_FRONTEND=noninteractive

# Python 3.10+ with venv: the base's own, or Debian/Ubuntu's python3 + python3-venv; then
# a current pip in the virtual environment (an old one, like Debian's, can spend hours
# backtracking where a current one finds the answer).
RUN --mount=type=secret,id=ca_bundle \
    set -eu; \
    ca=/run/secrets/ca_bundle; apt_ca=""; \
    if [ -s "$ca" ]; then \
        apt_ca="-o Acquire::https::CAInfo=$ca"; \
        export PIP_CERT="$ca" SSL_CERT_FILE="$ca" REQUESTS_CA_BUNDLE="$ca"; \
    fi; \
    if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1; then \
        if ! command -v apt-get >/dev/null 2>&1; then \
            echo "spikebatch: the base image has no $PYTHON with venv and no apt-get to install one; use a base with Python 3.10+ (--base)" >&2; \
            exit 1; \
        fi; \
        apt-get $apt_ca update; \
        apt-get $apt_ca install -y --no-install-recommends python3 python3-venv ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
        PYTHON=python3; \
    fi; \
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "spikebatch: the base image has Python %d.%d; it needs 3.10 or newer (use another --base)" % sys.version_info[:2])'; \
    "$PYTHON" -m venv "$VIRTUAL_ENV"; \
    "$VIRTUAL_ENV/bin/python" -m pip install --upgrade pip

# The user jobs run as: uid/gid 1000 with its own home (a base may already have uid 1000).
RUN set -eu; \
    if ! getent group 1000 >/dev/null; then \
        if command -v groupadd >/dev/null 2>&1; then groupadd --gid 1000 runner; \
        else echo "runner:x:1000:" >> /etc/group; fi; \
    fi; \
    if ! getent passwd 1000 >/dev/null; then \
        if command -v useradd >/dev/null 2>&1; then \
            useradd --uid 1000 --gid 1000 --home-dir /home/runner --no-create-home --shell /bin/sh runner; \
        else echo "runner:x:1000:1000::/home/runner:/bin/sh" >> /etc/passwd; fi; \
    fi; \
    mkdir -p /home/runner; \
    chown 1000:1000 /home/runner; \
    chmod 0755 /home/runner

# The dependencies in one layer: a change to spikebatch's own code does not reinstall them.
COPY requirements.txt build-requirements.txt /opt/spikebatch/
RUN --mount=type=secret,id=ca_bundle \
    set -eu; \
    ca=/run/secrets/ca_bundle; \
    if [ -s "$ca" ]; then export PIP_CERT="$ca" SSL_CERT_FILE="$ca" REQUESTS_CA_BUNDLE="$ca"; fi; \
    python -m pip install -r /opt/spikebatch/requirements.txt -r /opt/spikebatch/build-requirements.txt

# spikebatch itself, from the source checkout (no network: dependencies and the build
# backend are installed already).
COPY source/ /opt/spikebatch/source/
RUN set -eu; \
    if [ -f /opt/spikebatch/source/pyproject.toml ]; then \
        python -m pip install --no-deps --no-build-isolation --no-index /opt/spikebatch/source; \
    fi; \
    rm -rf /opt/spikebatch/source/build /opt/spikebatch/source/src/*.egg-info; \
    python -c "import spikebatch.entrypoints.runner"

ARG SPIKEBATCH_VERSION=unknown
ARG IMAGE_PROFILE=cpu
LABEL org.opencontainers.image.title="spikebatch-runner" \
      org.opencontainers.image.description="Runs spikebatch jobs: python -m spikebatch.entrypoints.runner workspace|sorting" \
      org.opencontainers.image.version="${SPIKEBATCH_VERSION}" \
      io.spikebatch.image-profile="${IMAGE_PROFILE}"

ENV HOME=/home/runner \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    TORCH_HOME=/tmp/torch \
    HDF5_USE_FILE_LOCKING=FALSE

USER 1000:1000
WORKDIR /home/runner
CMD ["python", "-m", "spikebatch.entrypoints.runner"]
