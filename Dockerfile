# firehose-loadgen in a container: `docker build -t firehose-loadgen .`
# The install steps live in deploy/container/install.sh, which the tests run too
# (tests/integration/test_container_image.py), so the image and the test cannot drift.
#
# BASE_IMAGE: a pinned slim CPython of the version the project is tested on (3.11). Any image
# with python3 (venv module included) at the same path in both stages works, e.g. a
# debootstrap-made base: docker build --build-arg BASE_IMAGE=local/debian-python:bookworm .
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

FROM ${BASE_IMAGE} AS build
# No pip cache in the layer; no version check (offline-friendly, quieter).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# .dockerignore limits the context to what install.sh stages.
COPY . .
RUN sh deploy/container/install.sh /src /opt/firehose-loadgen

FROM ${BASE_IMAGE}
# A fixed non-root uid/gid so Kubernetes runAsNonRoot / runAsUser and volume ownership can name it.
# -l (--no-log-init): a high uid must not create a huge sparse /var/log/lastlog.
RUN groupadd --system --gid 10001 loadgen \
    && useradd --system -l --uid 10001 --gid loadgen --home-dir /var/lib/firehose-loadgen \
        --create-home --shell /usr/sbin/nologin loadgen \
    && mkdir -p /etc/firehose-loadgen/profiles
# Only the finished virtualenv crosses over: no sources, no wheel, no pip, no build backend.
COPY --from=build /opt/firehose-loadgen /opt/firehose-loadgen

# Defaults are environment, not CMD flags, because a flag on the command line beats its
# LOADGEN_* variable: with `--profile mixed` in CMD, LOADGEN_PROFILE in an ECS task or a
# Kubernetes pod would be silently ignored.
# LOADGEN_METRICS_HOST: inside a container /metrics must listen on every interface to be scraped.
# LOADGEN_LOG_EVERY: stdout is a log driver here, not a terminal.
ENV PATH=/opt/firehose-loadgen/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOADGEN_PROFILE=mixed \
    LOADGEN_METRICS_HOST=0.0.0.0 \
    LOADGEN_METRICS_PORT=9450 \
    LOADGEN_LOG_EVERY=10s

# Mount your own profiles here and select one by path:
#   -v "$PWD/my-profiles:/etc/firehose-loadgen/profiles:ro" \
#   -e LOADGEN_PROFILE=/etc/firehose-loadgen/profiles/spike.yaml
VOLUME ["/etc/firehose-loadgen/profiles"]
WORKDIR /var/lib/firehose-loadgen
USER 10001:10001
EXPOSE 9450

# /healthz is served by the metrics server from the first second of a run. Python's urllib, so
# the image needs no curl; it follows LOADGEN_METRICS_PORT if a deployment moves the port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LOADGEN_METRICS_PORT', '9450') + '/healthz', timeout=4)"]

# Exec form: firehose-loadgen is PID 1 and gets SIGTERM itself, then stops generating and
# drains within --shutdown-grace (LOADGEN_SHUTDOWN_GRACE, default 10s), inside Docker's and
# ECS's default 30s stop timeout (Kubernetes: terminationGracePeriodSeconds, also 30s).
ENTRYPOINT ["firehose-loadgen"]
CMD ["run"]
