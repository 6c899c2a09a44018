package machineconfig

import "strings"

// SupportedExtensions returns the names of the extensions ExtensionPackages knows, sorted.
func SupportedExtensions() []string {
	return strings.Split(supportedExtensions, ", ")
}
