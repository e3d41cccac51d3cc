# Wukong: admission webhook + reconciler for KubeVirt VMs. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
DEVCLUSTER := $(BIN)/python -m devcluster

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: install
install: $(VENV)/.installed ## Create .venv with the project (editable) and its dev tools

$(VENV)/.installed: pyproject.toml
	@echo ">> creating $(VENV) and installing the project with its dev dependencies"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[dev]' | grep -E '^(Successfully|ERROR)' || true
	$(BIN)/python -c 'import webhook, certs, wukong, flask, gunicorn, kubernetes'
	@touch $@

RELEASE := .venv-release
$(RELEASE)/.installed: pyproject.toml
	@echo ">> creating $(RELEASE) with the supply-chain tools (pip-tools, cyclonedx-bom)"
	$(PYTHON) -m venv $(RELEASE)
	$(RELEASE)/bin/pip install --quiet --upgrade pip
	$(RELEASE)/bin/pip install --progress-bar off '.[release]' | grep -E '^(Successfully|ERROR)' || true
	@touch $@

PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(RELEASE)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: lock
lock: $(RELEASE)/.installed ## Regenerate the hashed lock files the image installs from (requirements.lock, requirements-build.lock)
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements-build.lock requirements-build.in

.PHONY: lock-upgrade
lock-upgrade: LOCK_ARGS := --upgrade
lock-upgrade: lock ## The same, every package moved to its newest release that pyproject.toml allows

.PHONY: sbom
sbom: $(RELEASE)/.installed ## CycloneDX SBOM of the image's Python packages, from requirements.lock (dist/sbom.cdx.json)
	@mkdir -p dist
	$(RELEASE)/bin/cyclonedx-py requirements --pyproject pyproject.toml --of JSON --output-reproducible \
		-o dist/sbom.cdx.json requirements.lock

.PHONY: lint
lint: install ## ruff, the import-layer contracts, the type check, and no sleeps as waits in e2e tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	@if git grep -nE 'time\.sleep\(' -- tests/e2e; then \
		echo "error: tests/e2e waits with time.sleep; wait on a fact (tests/waiting.py)"; exit 1; fi

.PHONY: unit
unit: install ## Fast tests without a control plane
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: test
test: install lint k8s-bin ## Everything: lint, unit, TLS server and end-to-end tests on devcluster
	$(BIN)/pytest $(PYTEST_ARGS)

##@ Local control plane

.PHONY: demo
demo: k8s-bin ## The main job on a fresh machine: defaulting, a shrink refused, a grow carried out, PVC/DataVolume/VM
	$(BIN)/python -m devcluster.demo

.PHONY: k8s-bin
k8s-bin: install ## Build kube-apiserver, kube-controller-manager, kubectl, etcd, helm and promtool from the pinned Go modules (once per machine)
	$(DEVCLUSTER) build

.PHONY: up
up: k8s-bin ## Start devcluster, webhook, reconciler, simulation in the background until `make down` (`.venv/bin/python -m devcluster env`)
	$(DEVCLUSTER) up --detach

.PHONY: down
down: install ## Stop the background devcluster
	$(DEVCLUSTER) down

.PHONY: permissions
permissions: k8s-bin ## What each ServiceAccount may do (kubectl auth can-i --list); fails if it differs from deploy/rbac/expected-permissions.txt
	$(DEVCLUSTER) permissions

.PHONY: permissions-update
permissions-update: k8s-bin ## Write the current can-i listing to deploy/rbac/expected-permissions.txt (review the diff first)
	$(DEVCLUSTER) permissions --update

.PHONY: bench
bench: k8s-bin ## Benchmarks (print figures against a same-run baseline)
	$(BIN)/python bench/converge.py
	$(BIN)/python bench/admission.py
	$(BIN)/python bench/webhook_latency.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/policies.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/rss.py

##@ Deployment

KUBECTL ?= kubectl
DOCKER ?= docker
NAMESPACE ?= wukong-system
# One version, pyproject.toml's: the image tag deploy/ and the chart run (`make chart` writes it into them).
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
DEFAULT_IMAGE := ghcr.io/novasphere/wukong:$(VERSION)
IMAGE ?= $(DEFAULT_IMAGE)

.PHONY: chart
chart: install ## Write the Helm chart's templates, CRDs and version from deploy/ and pyproject.toml (the one source)
	$(BIN)/python -m devcluster.chart

.PHONY: image
image: ## Build the image: make image IMAGE=registry.example/wukong:tag (default ghcr.io/novasphere/wukong:<version>)
	$(DOCKER) build -t $(IMAGE) .

.PHONY: push
push: image ## Build and push it; deploy what this prints by digest (docs/platform-teams.md, Deploying)
	$(DOCKER) push $(IMAGE)
	@$(DOCKER) inspect --format '{{index .RepoDigests 0}}' $(IMAGE)

.PHONY: deploy
deploy: ## Install on the cluster of the current kubeconfig: make deploy IMAGE=registry.example/wukong:tag
	@echo ">> applying deploy/ with image $(IMAGE); wukong-certs makes the certificate and injects the CA bundle"
	$(KUBECTL) kustomize deploy/ | sed 's|$(DEFAULT_IMAGE)|$(IMAGE)|g' | $(KUBECTL) apply --server-side -f -
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/wukong-certs --timeout=180s
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/wukong-webhook --timeout=180s
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/wukong-reconciler --timeout=180s

.PHONY: undeploy
undeploy: ## Remove everything but the CRDs: Wukongs, their VMs and volumes, WukongPolicies stay (see docs/platform-teams.md, Deploying)
	$(KUBECTL) kustomize deploy/ | $(KUBECTL) delete --ignore-not-found -l 'app.kubernetes.io/name!=wukong' -f -
	@echo ">> the CRDs, every Wukong and WukongPolicy are kept; deleting the Wukong CRD deletes every Wukong (see docs/platform-teams.md)"
