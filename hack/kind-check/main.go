// Command kind-config-check reads a kind cluster config the way `kind create cluster --config`
// does, without a container runtime: strict YAML into kind's v1alpha4 types (an unknown or misspelt
// field is an error), kind's defaults applied, then the checks kind makes of nodes and port
// mappings. It prints the defaulted config as JSON, for tests to compare with what else relies on
// it (k8s/test/dev-cluster.test.ts).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kind-config-check <kind-config.yaml>")
		os.Exit(2)
	}
	cluster, err := load(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(cluster); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func load(path string) (*v1alpha4.Cluster, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cluster v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &cluster); err != nil {
		return nil, err
	}
	if cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("want kind Cluster, apiVersion kind.x-k8s.io/v1alpha4; got %q, %q", cluster.Kind, cluster.APIVersion)
	}
	v1alpha4.SetDefaultsCluster(&cluster)
	return &cluster, validate(&cluster)
}

// validate makes kind's own checks of nodes and port mappings (its validation package is
// internal to kind, so it cannot be imported).
func validate(cluster *v1alpha4.Cluster) error {
	var errs []error
	controlPlanes := 0
	type binding struct {
		address  string
		port     int32
		protocol v1alpha4.PortMappingProtocol
	}
	bound := map[binding]bool{}
	for i, node := range cluster.Nodes {
		switch node.Role {
		case v1alpha4.ControlPlaneRole:
			controlPlanes++
		case v1alpha4.WorkerRole:
		default:
			errs = append(errs, fmt.Errorf("nodes[%d]: unknown role %q", i, node.Role))
		}
		for j, mapping := range node.ExtraPortMappings {
			where := fmt.Sprintf("nodes[%d].extraPortMappings[%d]", i, j)
			if mapping.ContainerPort < 1 || mapping.ContainerPort > 65535 {
				errs = append(errs, fmt.Errorf("%s: containerPort %d is not a port", where, mapping.ContainerPort))
			}
			if mapping.HostPort < -1 || mapping.HostPort > 65535 {
				errs = append(errs, fmt.Errorf("%s: hostPort %d is not a port", where, mapping.HostPort))
			}
			switch mapping.Protocol {
			case v1alpha4.PortMappingProtocolTCP, v1alpha4.PortMappingProtocolUDP, v1alpha4.PortMappingProtocolSCTP:
			default:
				errs = append(errs, fmt.Errorf("%s: unknown protocol %q", where, mapping.Protocol))
			}
			key := binding{mapping.ListenAddress, mapping.HostPort, mapping.Protocol}
			if mapping.HostPort > 0 && bound[key] {
				errs = append(errs, fmt.Errorf("%s: host port %s:%d/%s is mapped twice", where, key.address, key.port, key.protocol))
			}
			bound[key] = true
		}
	}
	if controlPlanes == 0 {
		errs = append(errs, errors.New("no control-plane node"))
	}
	return errors.Join(errs...)
}
