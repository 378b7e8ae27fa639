// Pins kind's config API for hack/kind-check (a checker of kind-config.yaml built by
// hack/install-deps.sh).
module hyperscale.local/kind-check

go 1.26.8

require (
	sigs.k8s.io/kind v0.33.0
	sigs.k8s.io/yaml v1.6.0
)

require (
	github.com/pkg/errors v0.9.1 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
)
