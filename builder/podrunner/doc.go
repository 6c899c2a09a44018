// Package podrunner plays the kubelet for build pods on a machine without one (tests and the embedded
// local default). It watches the pods of build Jobs, binds each to a local Node, materializes its volumes
// (ConfigMaps, Secrets, emptyDir, hostPath) in a directory per pod, runs the container's command as a local
// process with the pod's environment, and writes the pod status a kubelet would: Running, then Succeeded or
// Failed with the exit code and, as for FallbackToLogsOnError, the tail of the log as the message. A
// deleted pod's process is stopped and the pod is finalized, so Job retries, Job deletion and controller
// restarts follow real Job semantics.
//
// What differs from a kubelet, on purpose: no container image is pulled — the container's command names a
// program mapped to a local executable (Options.Programs); volumes are not mounted — the runner rewrites
// each mount path in the container's arguments and environment to the volume's directory; the process
// talks to the API server with the runner's kubeconfig instead of a service-account token; hostPath
// volumes live under Options.HostPathRoot.
package podrunner
