# One image for the code location, webserver and daemon (the platform issue completes the deployment).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    SUPPORT_NLP_HOME=/opt/dagster/support_nlp

RUN useradd --create-home --uid 1000 dagster
WORKDIR /opt/dagster/app

COPY pyproject.toml README.md workspace.yaml ./
COPY support_nlp ./support_nlp
# The CPU build of torch: the default PyPI wheel bundles several GB of CUDA libraries.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && mkdir -p "$DAGSTER_HOME" "$SUPPORT_NLP_HOME" \
    && printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml" \
    && chown -R dagster:dagster /opt/dagster

USER dagster
EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "support_nlp.definitions"]
