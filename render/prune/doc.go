// Package prune decides which rendered MachineConfigs (rendered-<pool>-<hash>) can be deleted: the logic
// behind `imagemode prune renderedmachineconfigs`, the counterpart of `oc adm prune renderedmachineconfigs`.
//
// It is pure: the caller loads an Inventory (MachineConfigs, pools, nodes, MachineOSBuilds,
// MachineConfigNodes), NewPlan orders the candidates and marks each one delete, skip (in use) or keep (beyond
// --count), and the Format functions render the lines `oc` prints. Nothing here talks to a cluster.
//
// Where it differs from the reference, on purpose:
//   - Candidates are MachineConfigs controlled by a MachineConfigPool, or unowned ones named rendered-… that
//     carry the generated-by-controller-version annotation. The reference takes any annotated config whose
//     name does not start with a digit, so a user's copy of a rendered config could be deleted.
//   - A config is in use if any pool (not only the filtered one) names it in spec or status, any node names
//     it as its current, desired or first-pivot config, any MachineOSBuild builds from it or any
//     MachineConfigNode wants it. The reference looks at pools and current/desired node annotations only, so
//     it can delete the config a MachineOSBuild needs to rebuild its image.
//   - Every in-use verdict carries its reasons (e.g. "node worker-0 currentConfig"), shown by -o json.
//   - --count counts deletions: in-use configs are skipped and do not use up the count.
package prune
