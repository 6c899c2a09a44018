// Package versioncmd is `imagemode version`: this binary's version (internal/version) and, when the
// cluster answers, the API server's, as text or -o json.
package versioncmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/internal/version"
)

// Versions is the document of `version -o json`.
type Versions struct {
	ClientVersion string `json:"clientVersion"`
	// ServerVersion is the API server's gitVersion; empty when it could not be asked (ServerError says why).
	ServerVersion string `json:"serverVersion,omitempty"`
	ServerError   string `json:"serverError,omitempty"`
}

// NewCommand returns `version`.
func NewCommand(newClients clients.Func) *cobra.Command {
	var output string
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and, if the cluster is reachable, the API server's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := printers.CheckOutput(output, printers.JSON); err != nil {
				return err
			}
			v := Versions{ClientVersion: version.Get()}
			if !clientOnly {
				var server discovery.ServerVersionInterface
				cs, err := newClients()
				if err == nil {
					server = cs.Kube.Discovery()
				}
				v.ServerVersion, v.ServerError = Server(server, err)
			}
			return Write(cmd.OutOrStdout(), output, v)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: text)")
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only the client's version (no cluster needed)")
	return cmd
}

// Server asks the API server its version; a failure (including connErr, the clients' own) is returned as
// text: the command still succeeds, as kubectl version does with an unreachable server.
func Server(d discovery.ServerVersionInterface, connErr error) (string, string) {
	if connErr != nil {
		return "", connErr.Error()
	}
	info, err := d.ServerVersion()
	if err != nil {
		return "", fmt.Sprintf("asking the API server its version: %v", err)
	}
	return info.GitVersion, ""
}

// Write prints the versions as text or JSON.
func Write(out io.Writer, output string, v Versions) error {
	if output != "" {
		return printers.Write(out, output, v)
	}
	fmt.Fprintf(out, "Client Version: %s\n", v.ClientVersion)
	switch {
	case v.ServerVersion != "":
		fmt.Fprintf(out, "Server Version: %s\n", v.ServerVersion)
	case v.ServerError != "":
		fmt.Fprintf(out, "Server Version: unavailable (%s)\n", v.ServerError)
	}
	return nil
}
