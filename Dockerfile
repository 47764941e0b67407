# airflowtask-operator image: the operator (`airflowtask-operator run`) and the Flyte connector
# (`pyflyte serve connector --modules airflowtask.flyte.connector`) share it.
#   docker build -t airflowtask-operator:0.1.0 .
# Every dependency is locked by constraints.txt; the base is pinned to a patch release (Debian 12:
# some wheels need glibc >= 2.34).
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

# The dependencies, in layers that only pyproject.toml and constraints.txt decide: editing the package's
# code reuses them (here and in the final image).
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && pip install -c constraints.txt -r requirements.txt

# The package itself, as a wheel; /src is left behind with this stage.
FROM deps AS build
COPY README.md ./
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/tmp/airflow \
    HOME=/tmp
RUN groupadd --system --gid 10001 airflowtask \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin airflowtask \
 && mkdir -p /opt/airflowtask
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /wheels /tmp/wheels
# Not editable: the package is installed into the venv (no index: everything it needs is there already).
RUN pip --disable-pip-version-check install --root-user-action=ignore --no-cache-dir --no-index --no-deps \
      /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels \
 && pip --disable-pip-version-check check
# A read-only, empty working directory: pyflyte puts the working directory on sys.path.
WORKDIR /opt/airflowtask
USER 10001:10001
# 8080: kopf's liveness endpoint; 9100: the operator's metrics; 8000/9090: the Flyte connector.
EXPOSE 8080 9100 8000 9090
ENTRYPOINT ["airflowtask-operator"]
CMD ["run"]
