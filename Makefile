# airflowtask-operator
#
#   make run    the operator on a local control plane (or $KUBECONFIG's cluster), running an example
#   make test   every test: unit, integration (real Airflow), e2e (real kube-apiserver + etcd)

.DEFAULT_GOAL := help
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: help venv run run-local test test-unit test-integration test-e2e lint lock

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml constraints.txt
	python3 -P -m venv $(VENV)
	$(VENV)/bin/python -P -m pip install --quiet --upgrade pip uv==0.13.9
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python -c constraints.txt -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv from pyproject.toml, pinned by constraints.txt

run: venv controlplane  ## local cluster with a node (unless KUBECONFIG is set), operator from manifests/, an example, keep running
	$(VENV)/bin/airflowtask-operator dev examples/bash-hello.yaml

run-local: venv controlplane  ## the faster loop: control plane only, the operator as a local process
	$(VENV)/bin/airflowtask-operator dev --local-process examples/bash-hello.yaml

test: venv controlplane lint  ## the whole suite
	$(VENV)/bin/pytest -ra

test-unit: venv  ## unit tests only
	$(VENV)/bin/pytest -ra tests/unit

test-integration: venv  ## real Airflow, no Kubernetes
	$(VENV)/bin/pytest -ra tests/integration

test-e2e: venv controlplane  ## the operator end to end on a real API server
	$(VENV)/bin/pytest -ra tests/e2e

lint: venv  ## ruff
	$(VENV)/bin/ruff check .

lock: venv  ## re-resolve constraints.txt from pyproject.toml
	$(VENV)/bin/uv pip compile --python-version 3.11 --extra test pyproject.toml -o constraints.txt --no-header


# ---- local cluster (etcd, kube-apiserver, kube-controller-manager, kubectl; a node: kube-scheduler, kubelet,
# kube-proxy, containerd, runc) ---------------------------------------------------------------------------
# Built from source with Go and cached in $${AIRFLOWTASK_CACHE:-~/.cache/airflowtask-operator}/controlplane
# (see operator/controlplane/). Needs the package installed in $(PYTHON)'s environment.
PYTHON ?= .venv/bin/python
CONTROLPLANE_DIR ?= .airflowtask/controlplane

.PHONY: controlplane controlplane-up

controlplane: venv  ## build (once) and cache the cluster's binaries; prints their paths
	$(PYTHON) -P -m airflowtask.controlplane build

controlplane-up: venv  ## run a local cluster in the foreground until Ctrl-C; prints the KUBECONFIG export
	$(PYTHON) -P -m airflowtask.controlplane up --dir $(CONTROLPLANE_DIR)
# ---- end of local control plane -----------------------------------------------------------------------
