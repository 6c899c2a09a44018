// Package gc is the registry garbage collector: it deletes the images the build service pushed once nothing
// needs them, never an image something still needs, and says what it did.
//
//   - BuildReconciler puts the FinalizerName finalizer on every MachineOSBuild with a pushed image. When the
//     build is deleted it deletes the image by digest (with the build's push secret and the
//     ControllerConfig's registry CAs and proxy) and the build's digest ConfigMap — unless the image is in
//     use (registry.InUse over every node, MachineOSConfig, other MachineOSBuild and MachineConfig) or the
//     registry refuses or fails. Then it records a tombstone ConfigMap and lets the build go: it never
//     blocks a deletion.
//   - TombstoneReconciler retries each tombstone whenever what could use the image changes (node image
//     annotations, MachineOSConfig current images, MachineOSBuild digests, MachineConfig osImageURLs), when
//     its push secret changes, and with back-off after registry failures; it deletes the tombstone once the
//     image is deleted or found gone.
//   - RetentionReconciler keeps, per MachineOSConfig, the current build and the newest N successful ones
//     (registry.SelectForRetention) and deletes the other finished builds, whose images then go the way
//     above.
//
// Failures land on the owning MachineOSConfig as the ImagePruneDegraded condition (reasons AccessDenied,
// RegistryUnavailable, …) and as Warning events; deletions as ImageDeleted events with the bytes freed and
// the imagemode_registry_* metrics. ListImages and Execute are the same logic for `imagemode prune images`.
package gc
