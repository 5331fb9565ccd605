# One image for every Dagster process: code location (gRPC), webserver, daemon, and each run's container or task.
FROM python:3.11-slim-bookworm

# Which deploy/<variant>/dagster.yaml becomes the instance config: docker (docker-compose.yaml) or aws (ECS).
ARG DAGSTER_DEPLOYMENT=docker
# The CPU build of torch: PyPI's default Linux wheel bundles several GB of CUDA libraries. An image for GPU
# tasks is built with a CUDA index instead (docs/deploy_aws.md).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# The bundled embedding model ships inside a Python package: nothing is fetched from a model hub at runtime.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    SUPPORT_NLP_HOME=/opt/dagster/support_nlp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# The plots draw Japanese and other CJK category names with this font (support_nlp/plots.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 dagster
WORKDIR /opt/dagster/app

# constraints.txt is the lock `make install` uses: the image gets the same versions, so the same vectors.
COPY pyproject.toml README.md workspace.docker.yaml constraints.txt ./
COPY support_nlp ./support_nlp
RUN pip install --extra-index-url "$TORCH_INDEX_URL" -c constraints.txt ".[deploy]"

COPY deploy/${DAGSTER_DEPLOYMENT}/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
RUN mkdir -p "$SUPPORT_NLP_HOME/cache" && chown -R dagster:dagster "$DAGSTER_HOME" "$SUPPORT_NLP_HOME"

USER dagster
# The CPU encoder is an ONNX int8 export of the bundled model, made on first use into the user's cache folder;
# made here once, so that no run container spends ~15 s exporting it again.
RUN python -c "from support_nlp.core.encoders import load_encoder; load_encoder(backend='onnx', device='cpu')"
EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "support_nlp.definitions", \
     "--location-name", "support_nlp"]
