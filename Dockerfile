# One image for every process: `wukong-webhook serve ...`, `wukong-reconciler ...`, `wukong-certs manage ...` (deploy/).
# Build: make image (docker build -t ghcr.io/novasphere/wukong:0.2.0 .); make push IMAGE=registry.example/wukong:<tag> to publish your own.
#
# Nothing is taken by a name that can move:
#   - the base image by digest: python:3.11-slim (Python 3.11.15, Debian trixie) as Docker's official-images
#     metadata lists it (docker-library/repo-info, repos/python/remote/3.11-slim.md, the multi-platform index).
#     To move it, read the new index digest there (or `docker buildx imagetools inspect python:3.11-slim`) and pass
#     --build-arg BASE_IMAGE=python:3.11-slim@sha256:<digest>, then change the default below;
#   - every Python package from a lock file with hashes (pip --require-hashes, wheels only): requirements.lock for
#     what runs, requirements-build.lock for the build backend and the SBOM generator; `make lock` regenerates both;
#   - the SBOM (CycloneDX, from requirements.lock) is written at build into /usr/share/doc/wukong/sbom.cdx.json.
ARG BASE_IMAGE=python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY requirements-build.lock requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY wukong wukong
COPY kubeclient kubeclient
COPY webhook webhook
COPY certs certs
COPY reconciler reconciler
COPY wukongctl wukongctl
COPY deploy/crd deploy/crd
# The project's own wheel, with the locked backend (no build isolation: nothing fetched), and no dependencies.
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
    && mkdir -p /sbom \
    && cyclonedx-py requirements --pyproject pyproject.toml --of JSON --output-reproducible \
        -o /sbom/sbom.cdx.json requirements.lock

FROM ${BASE_IMAGE}
RUN useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin wukong
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/requirements.lock
COPY --from=build /sbom/sbom.cdx.json /usr/share/doc/wukong/sbom.cdx.json
USER 65532:65532
ENV PYTHONUNBUFFERED=1
ENTRYPOINT []
CMD ["wukong-webhook", "--help"]
