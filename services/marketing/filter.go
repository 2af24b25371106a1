package marketing

import (
	"math"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/filter"
	"github.com/crmcycle/crm/pkg/search"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// ScoreRange bounds a lead's score, both ends included.
type ScoreRange struct{ Min, Max int32 }

// LeadFilter selects leads by one indexed field (status, source channel, source campaign or a
// tag) or by a score range, alone or with a status; or finds them by e-mail (exact) or by a name
// or company prefix (search), alone or with one of the equality fields. The zero value selects
// every lead.
type LeadFilter struct {
	Status   marketingv1.LeadStatus
	Channel  typev1.Channel
	Campaign string
	Tag      string
	Score    *ScoreRange
	// Email is a normalized e-mail to look up; ExternalID the person's id in the integrating
	// system (the identity registry's), to find their lead.
	Email, ExternalID string
	// Name searches given and family names; Company the company; at most one of the two.
	Name, Company search.Prefix
}

// Found is whether the lead has the equality fields the filter names: the lookup or search read
// the lead through its own index, and the other field of a pair is checked on the record.
func (f LeadFilter) Found(l *Lead) bool {
	return (f.Status == 0 || l.GetStatus() == f.Status) &&
		(f.Channel == 0 || l.GetChannel() == f.Channel) &&
		(f.Campaign == "" || l.GetCampaignId() == f.Campaign)
}

// NameTexts are the texts of a lead the name search reads.
func NameTexts(l *Lead) []string { return []string{l.GetGivenName() + " " + l.GetFamilyName()} }

var equal = []filter.Operator{filter.Equal}

// leadList is what ListLeads serves: each field one sorted-set index, and the score index of a
// status for the one pair.
var leadList = filter.List{
	Fields: []filter.Field{
		{Name: "status", Ops: equal},
		{Name: "channel", Ops: equal},
		{Name: "campaign_id", Ops: equal},
		{Name: "tags", Ops: []filter.Operator{filter.Has}},
		{Name: "score", Ops: append([]filter.Operator{filter.Equal}, filter.Range...)},
		{Name: "email", Ops: equal},
		{Name: "external_id", Ops: equal},
		{Name: "display_name", Ops: []filter.Operator{filter.Has}},
		{Name: "company", Ops: []filter.Operator{filter.Has}},
	},
	Pairs: append([][2]string{{"status", "score"}}, lookupPairs("email", "external_id", "display_name", "company")...),
}

// lookupPairs pair each lookup or search field with the equality fields: the lookup's index
// finds the leads, and the other field is checked on each (commit.ListWhere bounds the search).
func lookupPairs(fields ...string) [][2]string {
	var out [][2]string
	for _, f := range fields {
		for _, other := range []string{"status", "channel", "campaign_id"} {
			out = append(out, [2]string{f, other})
		}
	}
	return out
}

// campaignList is what ListCampaigns serves: one index per field.
var campaignList = filter.List{Fields: []filter.Field{{Name: "status", Ops: equal}, {Name: "channel", Ops: equal}}}

// ParseLeadList parses a ListLeads filter and order_by into a query. Orders are create_time desc
// (newest first, the default) and score desc (the default with a score range); combinations no
// index answers are INVALID_ARGUMENT naming the filter or order that cannot be served.
func ParseLeadList(text, orderBy string) (LeadQuery, error) {
	terms, err := leadList.Parse(text)
	if err != nil {
		return LeadQuery{}, err
	}
	var f LeadFilter
	other := "" // the field other than score, which decides the orders
	for _, t := range terms {
		var v int32
		switch t.Field {
		case "status":
			v, err = t.Enum(marketingv1.LeadStatus_value)
			f.Status = marketingv1.LeadStatus(v)
		case "channel":
			v, err = t.Enum(typev1.Channel_value)
			f.Channel = typev1.Channel(v)
		case "campaign_id":
			f.Campaign, err = t.ID()
		case "tags":
			f.Tag, err = t.Text()
		case "score":
			f.Score, err = narrowScore(f.Score, t)
		case "email":
			f.Email, err = NormalizeEmail(t.Value)
			if err != nil {
				err = t.Invalid("takes an e-mail address, got %q", t.Value)
			}
		case "external_id":
			f.ExternalID, err = t.Text()
			f.ExternalID = strings.TrimSpace(f.ExternalID)
		case "display_name":
			f.Name, err = t.Search()
		case "company":
			f.Company, err = t.Search()
		}
		if err != nil {
			return LeadQuery{}, err
		}
		if t.Field != "score" {
			other = t.Field
		}
	}
	q := LeadQuery{Filter: f, ByScore: f.Score != nil}
	order := strings.Join(strings.Fields(orderBy), " ")
	if f.Email != "" || f.ExternalID != "" || f.Name != "" || f.Company != "" {
		if order != "" {
			return LeadQuery{}, apierr.Invalid("order_by", "a lookup or search lists by the matched text: leave order_by empty")
		}
		return q, nil
	}
	switch order {
	case "":
	case "create_time desc", "createTime desc":
		if f.Score != nil {
			return LeadQuery{}, apierr.Invalid("order_by", "a score range lists by score: leave order_by empty or use score desc")
		}
	case "score desc":
		if other != "" && other != "status" {
			return LeadQuery{}, apierr.Invalid("order_by", "score desc works with no filter, status, or a score range; not with "+other)
		}
		q.ByScore = true
	default:
		return LeadQuery{}, apierr.Invalid("order_by", "supported: create_time desc (default), score desc")
	}
	return q, nil
}

// narrowScore intersects a score range with one comparison.
func narrowScore(r *ScoreRange, t filter.Term) (*ScoreRange, error) {
	n, err := t.Int(0)
	if err != nil || n > math.MaxInt32 {
		return nil, t.Invalid("compares with a whole number from 0 to %d, got %q", math.MaxInt32, t.Value)
	}
	if r == nil {
		r = &ScoreRange{Min: 0, Max: math.MaxInt32}
	}
	v := int32(n)
	switch t.Op {
	case filter.GreaterOrEqual:
		r.Min = v
	case filter.Greater:
		r.Min = v + 1
	case filter.LessOrEqual:
		r.Max = v
	case filter.Less:
		r.Max = v - 1
	default:
		r.Min, r.Max = v, v
	}
	return r, nil
}
