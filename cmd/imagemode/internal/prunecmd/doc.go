// Package prunecmd is `imagemode prune`: the commands that delete what nobody uses any more. Today it holds
// `prune renderedmachineconfigs [list]`, the drop-in for `oc adm prune renderedmachineconfigs [list]`: same
// flags, same output lines on the same streams (deletions and lists on standard output, the dry-run notice
// and skips on standard error), dry run unless --confirm. The decision is render/prune's; this package only
// loads the inventory, prints and deletes. Unlike the reference, a deletion that fails makes the command
// exit non-zero (after trying the others), and -o json prints why each config is or is not in use.
package prunecmd
