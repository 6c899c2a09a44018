// Package local is the embedded local default: everything the project needs to run on one machine with
// no cluster and no network — a real control plane (etcd, kube-apiserver, kube-controller-manager), a real
// TLS+auth OCI registry, the test base OS image pushed into it, and the cluster objects the docs assume
// (the machine-config namespace, pull and push secrets, the master/worker pools). Demo runs the docs'
// story on it step by step, timing each step.
package local
