// Package renderer is the render controller: a reconciler keyed by MachineConfigPool that selects the
// pool's MachineConfigs, validates and merges them (render/machineconfig), writes the rendered config
// rendered-<pool>-<hash> owned by the pool, points the pool's spec.configuration at it with the list of
// its sources, and reports RenderDegraded (naming the offending config) and events. The decision is the
// pure function Render; the reconciler only loads state, calls it and applies the outcome, so a pass
// over unchanged state writes nothing and a restart creates nothing new.
package renderer
