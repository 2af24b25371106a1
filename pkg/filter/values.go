package filter

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/search"
)

// Invalid is the INVALID_ARGUMENT of a term whose value the list cannot use, naming its field.
func (t Term) Invalid(format string, args ...any) error {
	return apierr.Invalid("filter", t.Field+": "+fmt.Sprintf(format, args...))
}

// Text is a non-empty string value to match exactly.
func (t Term) Text() (string, error) {
	if t.Value == "" || strings.HasSuffix(t.Value, "*") {
		return "", t.Invalid("takes a non-empty value to match exactly, got %q", t.Value)
	}
	return t.Value, nil
}

// Prefix is the text before the trailing `*` of a prefix match such as display_name = "Acme*".
func (t Term) Prefix() (string, error) {
	prefix, ok := strings.CutSuffix(t.Value, "*")
	if !ok || prefix == "" || strings.Contains(prefix, "*") {
		return "", t.Invalid(`matches a prefix: a value ending in one *, as in "Acme*", got %q`, t.Value)
	}
	return prefix, nil
}

// Search is the folded prefix of a search such as display_name:"ada*" (pkg/search: case- and
// accent-insensitive, at any word start).
func (t Term) Search() (search.Prefix, error) {
	raw, err := t.Prefix()
	if err != nil {
		return "", err
	}
	p, ok := search.NewPrefix(raw)
	if !ok {
		return "", t.Invalid("the prefix holds no letter or digit, got %q", t.Value)
	}
	return p, nil
}

// ID is a resource id (a UUID), lower case.
func (t Term) ID() (string, error) {
	id, err := uuid.Parse(t.Value)
	if err != nil || len(t.Value) != 36 {
		return "", t.Invalid("takes an id, got %q", t.Value)
	}
	return id.String(), nil
}

// Enum is the number of a non-zero value of an enum given by its full name.
func (t Term) Enum(values map[string]int32) (int32, error) {
	v, ok := values[t.Value]
	if !ok || v == 0 {
		return 0, t.Invalid("takes one of its enum names, got %q", t.Value)
	}
	return v, nil
}

// Bool is the value a boolean field must have: `active = false` and `active != true` are false.
func (t Term) Bool() (bool, error) {
	b, err := strconv.ParseBool(t.Value)
	if err != nil || (t.Value != "true" && t.Value != "false") {
		return false, t.Invalid("takes true or false, got %q", t.Value)
	}
	return b == (t.Op == Equal), nil
}

// Int is a whole number of at least min.
func (t Term) Int(min int64) (int64, error) {
	n, err := strconv.ParseInt(t.Value, 10, 64)
	if err != nil || n < min {
		return 0, t.Invalid("takes a whole number of at least %d, got %q", min, t.Value)
	}
	return n, nil
}

// Time is an RFC 3339 time.
func (t Term) Time() (time.Time, error) {
	ts, err := time.Parse(time.RFC3339, t.Value)
	if err != nil {
		return time.Time{}, t.Invalid("takes an RFC 3339 time such as \"2026-07-01T00:00:00Z\", got %q", t.Value)
	}
	return ts, nil
}

// Date is a calendar date, YYYY-MM-DD.
func (t Term) Date() (string, error) {
	if _, err := time.Parse(time.DateOnly, t.Value); err != nil {
		return "", t.Invalid("takes a date such as \"2026-07-01\", got %q", t.Value)
	}
	return t.Value, nil
}
