# airflowtask-operator

# ---- local control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) ----------------------
# Built from source with Go and cached in $${AIRFLOWTASK_CACHE:-~/.cache/airflowtask-operator}/controlplane
# (see operator/controlplane/). Needs the package installed in $(PYTHON)'s environment.
PYTHON ?= .venv/bin/python
CONTROLPLANE_DIR ?= .airflowtask/controlplane

.PHONY: controlplane controlplane-up

controlplane:  ## build (once) and cache the control plane binaries; prints their paths
	$(PYTHON) -m airflowtask.controlplane build

controlplane-up:  ## run a local control plane in the foreground until Ctrl-C; prints the KUBECONFIG export
	$(PYTHON) -m airflowtask.controlplane up --dir $(CONTROLPLANE_DIR)
# ---- end of local control plane -----------------------------------------------------------------------
