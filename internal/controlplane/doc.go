// Package controlplane starts a real Kubernetes control plane on this machine: etcd and kube-apiserver
// through controller-runtime's envtest, with this project's CRDs installed, and, when asked, a real
// kube-controller-manager (Job controller, garbage collector, service accounts) beside them. The binaries
// come from hack/setup-kube-assets.sh, which builds them once per machine from the Go module proxy.
//
// By default there is no kubelet and no scheduler: pods are created by the real Job controller but run only
// when a local pod runner (or a test playing the kubelet) runs them and writes their status. StartNode
// (with Options.Kubelets) adds a real node: containerd, runc, a kubelet and kube-scheduler
// (hack/setup-node-runtime.sh; hostNetwork pods only so far).
//
// Tests call Start (which stops everything on cleanup); the embedded local default calls New and Stop.
package controlplane
