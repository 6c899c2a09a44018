// Package statuscmd is `imagemode status`: one look at the whole system. Pools with exactly the columns of
// `kubectl get machineconfigpool` (the pool CRD's printer columns), the layered pools (MachineOSConfig,
// pool, current build, its state, the image in use) and the nodes (pools, current and desired config and
// image, state, reason), as tables or as one -o json|yaml document; --watch reprints on every change of a
// pool, node, MachineOSConfig or MachineOSBuild. What is shown is computed by Summarize, a pure function.
package statuscmd
