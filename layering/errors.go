package layering

import (
	"fmt"
	"strconv"
)

// ContainerfileError is a Containerfile that the builder's parser rejects or that cannot build: no FROM, an
// unknown instruction, an instruction without arguments, or a parse error (with the parser's message).
type ContainerfileError struct {
	// Field names the MachineOSConfig field the Containerfile came from (e.g. "spec.containerFile[0].content");
	// empty when the error is about a Containerfile given as such.
	Field string
	// Line is the 1-based line of the offending instruction, relative to the Containerfile in Field (or to
	// the validated content when Field is empty); 0 when the error concerns no line.
	Line int
	// Message says what is wrong, in the parser's own words where it has them.
	Message string
}

// Error returns "<field>: line <n>: <message>", leaving out what is unknown.
func (e *ContainerfileError) Error() string {
	msg := e.Message
	if e.Line > 0 {
		msg = "line " + strconv.Itoa(e.Line) + ": " + msg
	}
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	return "invalid Containerfile: " + msg
}

// fieldErrorf returns an error about one field of the inputs, e.g.
// "spec.config.storage.files[2].contents.source: remote sources are not supported in layered builds".
func fieldErrorf(field, format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{field}, args...)...)
}
