package layering

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateContainerfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    *ContainerfileError // nil: valid
	}{
		{name: "docs", content: "FROM base AS configs\nFROM configs AS final\nRUN dnf install -y cowsay && \\\n  dnf clean all && \\\n  ostree container commit\n"},
		{name: "heredocs", content: "FROM base\nRUN <<EOF\nset -e\necho hi > /etc/hi\nEOF\nCOPY <<EOT /etc/motd\nhello\nEOT\nRUN true\n"},
		{name: "lowercase and CMD []", content: "from base\ncmd []\nentrypoint []\n"},
		{name: "comments and blank lines", content: "# header\n\nFROM base\n# RUNN is a comment here\n"},
		{name: "no FROM", content: "RUN dnf install -y cowsay\n", want: &ContainerfileError{Message: "no FROM instruction"}},
		{name: "empty", content: "", want: &ContainerfileError{Message: "no FROM instruction"}},
		{name: "unknown instruction", content: "FROM base\n\nRUN true\nINSTALL cowsay\n", want: &ContainerfileError{Line: 4, Message: "unknown instruction: INSTALL"}},
		{name: "unknown instruction after a heredoc", content: "FROM base\nRUN <<EOF\nRUNN not an instruction\nEOF\nRUNN x\n",
			want: &ContainerfileError{Line: 5, Message: "unknown instruction: RUNN"}},
		{name: "COPY without arguments", content: "FROM base\nCOPY --chown=0:0\n", want: &ContainerfileError{Line: 2, Message: "COPY requires at least one argument"}},
		{name: "FROM without arguments", content: "FROM\n", want: &ContainerfileError{Line: 1, Message: "FROM requires at least one argument"}},
		{name: "JSON array of non-strings", content: "FROM base\nRUN true\nRUN [\"echo\", 1]\n",
			want: &ContainerfileError{Line: 3, Message: "when using JSON array syntax, arrays must be comprised of strings only"}},
		{name: "LABEL without value", content: "FROM base\nLABEL foo\n", want: &ContainerfileError{Line: 2, Message: "LABEL must have two arguments"}},
		{name: "unterminated heredoc", content: "FROM base\nRUN <<EOF\necho hi\n", want: &ContainerfileError{Line: 2, Message: "EOF: unterminated heredoc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateContainerfile([]byte(tc.content))
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			var cerr *ContainerfileError
			require.True(t, errors.As(err, &cerr), "want a *ContainerfileError, got %T: %v", err, err)
			assert.Equal(t, tc.want, cerr)
		})
	}
}

func TestContainerfileErrorMessage(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "invalid Containerfile: spec.containerFile[0].content: line 3: unknown instruction: RUNN",
		(&ContainerfileError{Field: "spec.containerFile[0].content", Line: 3, Message: "unknown instruction: RUNN"}).Error())
	assert.Equal(t, "invalid Containerfile: no FROM instruction", (&ContainerfileError{Message: "no FROM instruction"}).Error())
}
