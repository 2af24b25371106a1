package marketing

import (
	"math"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/filter"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

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
	},
	Pairs: [][2]string{{"status", "score"}},
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
		}
		if err != nil {
			return LeadQuery{}, err
		}
		if t.Field != "score" {
			other = t.Field
		}
	}
	q := LeadQuery{Filter: f, ByScore: f.Score != nil}
	switch strings.Join(strings.Fields(orderBy), " ") {
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
