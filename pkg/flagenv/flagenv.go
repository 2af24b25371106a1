// Package flagenv lets environment variables set flags: a flag not given on the command line takes
// the value of PREFIX_NAME (for "--redis-url", CRM_REDIS_URL), or of an alias such as REDIS_URL.
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
		name := prefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok && aliases[f.Name] != "" {
			name = aliases[f.Name]
			v, ok = os.LookupEnv(name)
		}
		if ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}
