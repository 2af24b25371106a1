// Package flagenv lets environment variables set flags: a flag not given on the command line takes
// the value of PREFIX_NAME (for "--redis-url", CRM_REDIS_URL), or of an alias such as REDIS_URL.
// Empty variables are ignored.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Apply sets every flag of fs that was not set on the command line from the environment.
func Apply(fs *flag.FlagSet, prefix string, aliases map[string]string) error {
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if explicit[f.Name] || err != nil {
			return
		}
		// An empty variable counts as unset, as shells and compose files often leave them.
		name := prefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := os.Getenv(name)
		if v == "" && aliases[f.Name] != "" {
			name = aliases[f.Name]
			v = os.Getenv(name)
		}
		if v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}
