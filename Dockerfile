# One image for both processes: `wukong-webhook serve ...` and `wukong-reconciler ...` (see deploy/).
# Build: docker build -t ghcr.io/novasphere/wukong:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wukong wukong
COPY kubeclient kubeclient
COPY webhook webhook
COPY certs certs
COPY reconciler reconciler
COPY deploy/crd deploy/crd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin wukong
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532:65532
ENV PYTHONUNBUFFERED=1
ENTRYPOINT []
CMD ["wukong-webhook", "--help"]
