// Package buildscmd is `imagemode builds`: `list` shows MachineOSBuilds with the MachineOSBuild CRD's printer
// columns (the status of the Prepared, Building, Succeeded, Interrupted and Failed conditions, and AGE),
// `describe` one build's conditions, timings, Job and attempts, image and events, and `logs [-f]` a
// build's log. The log comes from the ConfigMap build-log-<build> the build pod keeps (builder/buildcmd), so
// the last attempt's log is there after its pod is gone; -f follows it until the build ends.
package buildscmd
