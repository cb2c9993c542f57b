# A Dask scheduler / worker image for skfleet, with the same pinned libraries as the client.
#
# Workers load the models the client plans with and must unpickle the tasks it sends, so
# skfleet, scikit-learn, numpy, pyarrow and skops must match the client exactly (skfleet checks
# this when it connects: `--engine tcp://...` fails with a one-line error naming the worker and
# the library otherwise). Pin the image to the client's environment:
#
#   .venv/bin/pip freeze --exclude-editable > constraints.txt     # in the client's environment
#   docker build -t skfleet-worker:0.1.0 --build-arg PYTHON_VERSION=3.11 .
#
# Or, without a Docker engine, `make image` (images/build.py): pins to .venv, builds this file with
# buildah, and stands in for the base image with a debootstrapped Debian when none can be pulled.
#
# Without constraints.txt the build resolves the newest versions pyproject.toml allows, which is
# only right if the client was installed the same way on the same day.
#
# Run (see docs/deploy.md):
#   docker run --rm -p 8786:8786 -p 8787:8787 skfleet-worker:0.1.0 dask scheduler
#   docker run --rm --network host skfleet-worker:0.1.0 dask worker tcp://SCHEDULER:8786 --nthreads 1

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # One thread per BLAS/OpenMP call: parallelism comes from Dask workers, not from threads
    # fighting inside each of them.
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    # A scheduler from this image keeps every worker's copy of a training table between fits
    # (no ReduceReplicas policy), as `dask:local` does; it is read by the scheduler only.
    DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__POLICIES="[]"

# tini reaps the worker's child processes and forwards SIGTERM, so `docker stop` and Kubernetes
# shut workers down cleanly (Dask then reschedules their tasks elsewhere).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/skfleet
# constraints.tx[t]: the pin file is optional; the wildcard lets the build go on without it.
COPY pyproject.toml constraints.tx[t] ./
# The dependencies first, in a layer of their own: a rebuild after a change under src/ reuses it
# and only reinstalls skfleet itself (seconds instead of minutes).
RUN if [ -f constraints.txt ]; then set -- -c constraints.txt; fi \
    && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && pip install "$@" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY README.md ./
COPY src ./src
RUN if [ -f constraints.txt ]; then set -- -c constraints.txt; fi \
    && pip install --no-deps "$@" . && rm -rf build \
    && pip check \
    && python -c "import skfleet, sklearn, numpy, pyarrow, skops, distributed" \
    # Older charts and guides call `dask-scheduler` / `dask-worker`; distributed now ships only
    # `dask scheduler` / `dask worker`.
    && printf '#!/bin/sh\nexec dask scheduler "$@"\n' > /usr/local/bin/dask-scheduler \
    && printf '#!/bin/sh\nexec dask worker "$@"\n' > /usr/local/bin/dask-worker \
    && chmod +x /usr/local/bin/dask-scheduler /usr/local/bin/dask-worker

# Never run as root: workers read credentials from the environment and write scratch files.
RUN useradd --create-home --uid 1000 skfleet
USER skfleet
WORKDIR /home/skfleet

# 8786: scheduler comm port, 8787: scheduler dashboard, 8788: worker dashboard.
EXPOSE 8786 8787 8788

ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
# Kubernetes `args:` replace this; the default is a worker that finds its scheduler through
# DASK_SCHEDULER_ADDRESS (as the Dask Kubernetes operator sets it).
CMD ["dask", "worker", "--nthreads", "1"]
