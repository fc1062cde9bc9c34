package backup

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"ib/internal/cli"
	"ib/internal/preset"
)

func newPresets(o *common) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "presets",
		Short: "List the node presets of --preset: what each leaves out, labels and protects",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			if asJSON {
				return printJSON(o.env.Stdout, preset.All)
			}
			w := o.env.Stdout
			for i, p := range preset.All {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "%s\n  back up:   %s\n  excludes:  %s\n  secrets:   %s\n  protects:  %s\n", p.Name, p.Root,
					strings.Join(p.Exclude, " "), strings.Join(p.Secrets, " "), strings.Join(p.Protected, " "))
				for _, l := range p.Labels {
					fmt.Fprintf(w, "  label:     %s from %s (%q), when the node writes it\n", l.Key, l.File, l.Field)
				}
				for _, s := range p.Sources {
					fmt.Fprintf(w, "  source:    %s\n", s)
				}
			}
			fmt.Fprintln(w, "\nA preset's excludes are left out of every backup, before the ignore files; with --encrypt-to its secrets are\n"+
				"encrypted and kept instead; restore keeps its protected files where they exist in DEST unless --overwrite-protected.")
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
