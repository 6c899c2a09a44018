package agent

// Event reasons the agent records on its Node (the reference daemon's strings).
const (
	EventDrain               = "Drain"
	EventReboot              = "Reboot"
	EventSkipReboot          = "SkipReboot"
	EventConfigDriftDetected = "ConfigDriftDetected"
	EventNodeDone            = "NodeDone"
	EventFailedToReconcile   = "FailedToReconcile"
)
