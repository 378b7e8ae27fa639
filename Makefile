# Hyperscale — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.install-stamp
# Written by hack/stack.sh up (admin of the local kube-apiserver); kubectl and helm linked there too.
KUBECONFIG_PATH := $(CURDIR)/.stack/kube/kubeconfig
KUBECTL_PATH := $(CURDIR)/.stack/bin/kubectl

.PHONY: help deps build up down status logs token kubeconfig kubectl bench test test-unit test-integration lint typecheck format clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(NPM_STAMP): package.json package-lock.json $(wildcard services/*/package.json operators/*/package.json)
	npm ci --no-audit --no-fund
	@touch $@

deps: ## Install what is missing: Debian packages, Kafka jars, etcd + kube-apiserver, kubectl + helm, promtool, jaeger, node_modules
	@bash hack/install-deps.sh
	@$(MAKE) --no-print-directory $(NPM_STAMP)

build: deps ## Compile every package (tsc -b)
	npx tsc -b

up: build ## Start the local stack of real servers and every service (idempotent)
	@bash hack/stack.sh up
	@bash hack/dev-env.sh >/dev/null
	@bash hack/services.sh up

down: ## Stop the services and servers that `make up` started
	@bash hack/services.sh down
	@bash hack/stack.sh down

status: ## Show every server and service with its health
	@bash hack/stack.sh status; bash hack/services.sh status

logs: ## Tail the logs of every server and service
	@bash hack/stack.sh logs

token: ## Print a dev bearer token: make -s token USER=alice [SCOPE=counters:write]
	@npx tsc -b services/platform >/dev/null
	@bash hack/dev-env.sh >/dev/null
	@node hack/token.mjs "$(USER)" "$(SCOPE)"

kubeconfig: ## Print the local kube-apiserver's admin kubeconfig: export KUBECONFIG=$(make -s kubeconfig)
	@test -f $(KUBECONFIG_PATH) || { echo "no $(KUBECONFIG_PATH): start the stack with hack/stack.sh up" >&2; exit 1; }
	@echo $(KUBECONFIG_PATH)

kubectl: ## Install kubectl + helm (cached, linked in .stack/bin) and print its path: $(make -s kubectl) get crd
	@bash hack/install-deps.sh
	@echo $(KUBECTL_PATH)

bench: build ## Load scenarios vs a bare-Fastify floor: make bench [SCENARIOS="like-write-spread counter-read"]
	@bash hack/stack.sh up
	@bash hack/dev-env.sh >/dev/null
	@# The services of `make up` would share the two cores and the writer's consumer group.
	@bash hack/services.sh down
	@node bench/dist/run.js $(SCENARIOS)

test: build ## Lint, typecheck, unit and integration tests against the real stack (starts and stops what it needs)
	@bash hack/test.sh all

test-unit: build ## Unit tests only (no servers)
	@bash hack/test.sh unit

test-integration: build ## Integration tests only (starts the stack if needed)
	@bash hack/test.sh integration

lint: deps ## ESLint and Prettier
	npm run lint

typecheck: deps ## Type-check sources, tests and tools
	npm run typecheck

format: deps ## Rewrite files with Prettier
	npm run format

clean: ## Remove build output (keeps the stack's state; `make down` first to stop it)
	rm -rf services/*/dist operators/*/dist
