// Package containerruntime is the container-runtime-config controller: for every MachineConfigPool labelled
// machineconfiguration.openshift.io/mco-built-in it keeps the MachineConfig 99-<pool>-generated-registries,
// which writes /etc/containers/registries.conf and /etc/containers/policy.json (render/registries) from the
// ImageContentSourcePolicies, ImageDigestMirrorSets, ImageTagMirrorSets and images.config.openshift.io/cluster,
// as OpenShift's Machine Config Operator does. Custom pools get the config through the worker role. The
// decision is the pure function Desired; the reconciler, keyed by pool, only loads the inputs, calls it and
// creates, updates or deletes the one MachineConfig when it differs, so a pass over unchanged state writes
// nothing. Invalid inputs change nothing (nodes keep the last good config) and are reported as Warning events
// on the offending objects; the controller retries when an input changes.
package containerruntime
