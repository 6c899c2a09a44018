package layering

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/openshift/imagebuilder/dockerfile/command"
	"github.com/openshift/imagebuilder/dockerfile/parser"
)

// maxLocatedLines bounds the Containerfiles whose parse errors are located by re-parsing prefixes (the
// parser reports no line); larger ones get their errors without a line.
const maxLocatedLines = 5000

// ValidateContainerfile checks a whole Containerfile the way the builder will read it, with the parser
// buildah uses (github.com/openshift/imagebuilder): it must parse (heredocs are fine), name only known
// instructions, give each instruction its arguments and have at least one FROM. The error is a
// *ContainerfileError.
func ValidateContainerfile(content []byte) error {
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return &ContainerfileError{Line: parseErrorLine(content, err), Message: err.Error()}
	}
	hasFrom := false
	for _, n := range res.AST.Children {
		instr := strings.ToLower(n.Value)
		if _, ok := command.Commands[instr]; !ok {
			return &ContainerfileError{Line: n.StartLine, Message: "unknown instruction: " + strings.ToUpper(n.Value)}
		}
		if n.Next == nil && !hasArguments(n) {
			return &ContainerfileError{Line: n.StartLine, Message: strings.ToUpper(n.Value) + " requires at least one argument"}
		}
		if instr == command.From {
			hasFrom = true
		}
	}
	if !hasFrom {
		return &ContainerfileError{Message: "no FROM instruction"}
	}
	return nil
}

// hasArguments reports whether an instruction the parser gave no argument node has arguments all the same
// (`CMD []` clears the command), looking at its original text past the instruction and its flags.
func hasArguments(n *parser.Node) bool {
	return len(strings.Fields(n.Original)) > 1+len(n.Flags)
}

// parseErrorLine finds the line of a parse error, which the parser does not report: the last line of the
// shortest prefix of content that fails with the same message. 0 when not found.
func parseErrorLine(content []byte, perr error) int {
	lines := bytes.SplitAfter(content, []byte("\n"))
	if len(lines) > maxLocatedLines {
		return 0
	}
	var prefix []byte
	for i, l := range lines {
		prefix = append(prefix, l...)
		if _, err := parser.Parse(bytes.NewReader(prefix)); err != nil && err.Error() == perr.Error() {
			return i + 1
		}
	}
	return 0
}

// userContainerfileError re-bases a *ContainerfileError of the rendered Containerfile onto the user's
// Containerfile, which starts at line offset+1 of it, when the error lies there.
func userContainerfileError(err error, field string, offset int) error {
	cerr, ok := err.(*ContainerfileError)
	if !ok || cerr.Line <= offset {
		return err
	}
	return &ContainerfileError{Field: field, Line: cerr.Line - offset, Message: cerr.Message}
}

// checkEscapeDirective refuses a user Containerfile whose parser directive changes the escape character:
// appended after the configs stage the directive would be a mere comment and its lines would parse
// differently.
func checkEscapeDirective(content, field string) error {
	res, err := parser.Parse(strings.NewReader(content))
	if err != nil || res.EscapeToken == '\\' {
		return nil // parse errors are reported on the whole rendered file
	}
	return &ContainerfileError{Field: field, Line: 1, Message: fmt.Sprintf(
		"the escape parser directive (%q) cannot apply to a Containerfile appended to the configs stage", res.EscapeToken)}
}
