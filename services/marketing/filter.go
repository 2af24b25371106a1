package marketing

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/apierr"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// filterTerm is one comparison of an AIP-160 conjunction: field op value.
type filterTerm struct{ field, op, value string }

var (
	termPattern = regexp.MustCompile(`^\s*([a-zA-Z_]+)\s*(>=|<=|=|>|<|:)\s*("[^"]*"|[^\s"]+)\s*$`)
	andPattern  = regexp.MustCompile(`\s+AND\s+`)
)

// parseConjunction splits `a = x AND b >= y` into terms; field names are taken as snake_case.
func parseConjunction(filter string) ([]filterTerm, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	var terms []filterTerm
	for _, part := range andPattern.Split(filter, -1) {
		m := termPattern.FindStringSubmatch(part)
		if m == nil {
			return nil, filterError("cannot read %q: terms are field = value, joined by AND", strings.TrimSpace(part))
		}
		terms = append(terms, filterTerm{field: snakeCase(m[1]), op: m[2], value: strings.Trim(m[3], `"`)})
	}
	return terms, nil
}

func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func filterError(format string, args ...any) error {
	return apierr.Invalid("filter", fmt.Sprintf(format, args...))
}

// enumValue resolves the name of a non-zero enum value.
func enumValue(t filterTerm, values map[string]int32) (int32, error) {
	v, ok := values[t.value]
	if t.op != "=" || !ok || v == 0 {
		return 0, filterError("%s takes = and one of its enum names, got %s %s %s", t.field, t.field, t.op, t.value)
	}
	return v, nil
}

// ScoreRange bounds a lead's score, both ends included.
type ScoreRange struct{ Min, Max int32 }

// LeadFilter selects leads by one indexed field (status, source channel, source campaign or a
// tag) or by a score range, alone or with a status. The zero value selects every lead.
type LeadFilter struct {
	Status   marketingv1.LeadStatus
	Channel  typev1.Channel
	Campaign string
	Tag      string
	Score    *ScoreRange
}

// leadListHelp says which filters and orders combine: each combination is one sorted-set index.
const leadListHelp = "a list filters on one of status, channel, campaign_id or tags, or on a score range alone or with status"

// ParseLeadList parses a ListLeads filter and order_by into a query. Orders are create_time desc
// (newest first, the default) and score desc (the default with a score range); combinations no
// index answers are INVALID_ARGUMENT naming the filter or order that cannot be served.
func ParseLeadList(filter, orderBy string) (LeadQuery, error) {
	terms, err := parseConjunction(filter)
	if err != nil {
		return LeadQuery{}, err
	}
	var f LeadFilter
	var equality []string
	for _, t := range terms {
		switch t.field {
		case "status":
			v, err := enumValue(t, marketingv1.LeadStatus_value)
			f.Status = marketingv1.LeadStatus(v)
			if err != nil {
				return LeadQuery{}, err
			}
		case "channel":
			v, err := enumValue(t, typev1.Channel_value)
			f.Channel = typev1.Channel(v)
			if err != nil {
				return LeadQuery{}, err
			}
		case "campaign_id":
			if _, err := uuid.Parse(t.value); err != nil || t.op != "=" {
				return LeadQuery{}, filterError("campaign_id takes = and a campaign id")
			}
			f.Campaign = t.value
		case "tags":
			if t.op != ":" || t.value == "" {
				return LeadQuery{}, filterError(`tags takes : and a tag, as in tags:"vip"`)
			}
			f.Tag = t.value
		case "score":
			if f.Score, err = narrowScore(f.Score, t); err != nil {
				return LeadQuery{}, err
			}
			continue
		default:
			return LeadQuery{}, filterError("cannot filter on %s: %s", t.field, leadListHelp)
		}
		if slices.Contains(equality, t.field) {
			return LeadQuery{}, filterError("%s appears twice", t.field)
		}
		equality = append(equality, t.field)
	}
	if len(equality) > 1 {
		return LeadQuery{}, filterError("%s cannot be combined with %s: %s", equality[1], equality[0], leadListHelp)
	}
	if f.Score != nil && len(equality) == 1 && equality[0] != "status" {
		return LeadQuery{}, filterError("score cannot be combined with %s: %s", equality[0], leadListHelp)
	}
	q := LeadQuery{Filter: f, ByScore: f.Score != nil}
	switch strings.Join(strings.Fields(orderBy), " ") {
	case "":
	case "create_time desc", "createTime desc":
		if f.Score != nil {
			return LeadQuery{}, apierr.Invalid("order_by", "a score range lists by score: leave order_by empty or use score desc")
		}
	case "score desc":
		if len(equality) == 1 && equality[0] != "status" {
			return LeadQuery{}, apierr.Invalid("order_by", "score desc works with no filter, status, or a score range; not with "+equality[0])
		}
		q.ByScore = true
	default:
		return LeadQuery{}, apierr.Invalid("order_by", "supported: create_time desc (default), score desc")
	}
	return q, nil
}

// narrowScore intersects a score range with one comparison.
func narrowScore(r *ScoreRange, t filterTerm) (*ScoreRange, error) {
	n, err := strconv.ParseInt(t.value, 10, 32)
	if err != nil || n < 0 {
		return nil, filterError("score compares with a whole number of at least 0, got %q", t.value)
	}
	if r == nil {
		r = &ScoreRange{Min: 0, Max: math.MaxInt32}
	}
	v := int32(n)
	switch t.op {
	case ">=":
		r.Min = max(r.Min, v)
	case ">":
		r.Min = max(r.Min, v+1)
	case "<=":
		r.Max = min(r.Max, v)
	case "<":
		r.Max = min(r.Max, v-1)
	case "=":
		r.Min, r.Max = max(r.Min, v), min(r.Max, v)
	default:
		return nil, filterError("score takes =, <, <=, > or >=")
	}
	return r, nil
}

// parseStatusOrChannel parses the filters of lists indexed by status and channel only (campaigns).
func parseStatusOrChannel(filter string, statuses map[string]int32) (int32, typev1.Channel, error) {
	terms, err := parseConjunction(filter)
	if err != nil {
		return 0, 0, err
	}
	if len(terms) > 1 {
		return 0, 0, filterError("%s cannot be combined with %s: a list filters on one of status or channel", terms[1].field, terms[0].field)
	}
	if len(terms) == 0 {
		return 0, 0, nil
	}
	switch t := terms[0]; t.field {
	case "status":
		v, err := enumValue(t, statuses)
		return v, 0, err
	case "channel":
		v, err := enumValue(t, typev1.Channel_value)
		return 0, typev1.Channel(v), err
	default:
		return 0, 0, filterError("cannot filter on %s: supported are status and channel", t.field)
	}
}
