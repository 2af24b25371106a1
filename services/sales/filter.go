package sales

import (
	"strings"

	"github.com/crmcycle/crm/pkg/filter"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// The lists' filters: what each serves (every field its own sorted-set index; orders also keep
// one time index per customer for the one pair) and how the terms become that index.
var (
	equal        = []filter.Operator{filter.Equal}
	equalOrRange = append([]filter.Operator{filter.Equal}, filter.Range...)

	accountList = filter.List{
		Fields: []filter.Field{
			{Name: "owner_id", Ops: equal}, {Name: "industry", Ops: equal},
			{Name: "display_name", Ops: []filter.Operator{filter.Equal, filter.Has}},
		},
		Pairs: [][2]string{{"display_name", "owner_id"}, {"display_name", "industry"}},
	}
	contactList = filter.List{
		Fields: []filter.Field{
			{Name: "account_id", Ops: equal}, {Name: "owner_id", Ops: equal},
			{Name: "email", Ops: equal}, {Name: "external_id", Ops: equal},
			{Name: "display_name", Ops: []filter.Operator{filter.Has}},
		},
		Pairs: [][2]string{{"email", "account_id"}, {"email", "owner_id"}, {"external_id", "account_id"}, {"external_id", "owner_id"},
			{"display_name", "account_id"}, {"display_name", "owner_id"}},
	}
	opportunityList = filter.List{Fields: []filter.Field{
		{Name: "stage", Ops: equal}, {Name: "owner_id", Ops: equal}, {Name: "account_id", Ops: equal},
		{Name: "close_date", Ops: equalOrRange}, {Name: "amount", Ops: equalOrRange},
	}}
	orderList = filter.List{
		Fields: []filter.Field{{Name: "customer_id", Ops: equal}, {Name: "create_time", Ops: filter.Range}},
		Pairs:  [][2]string{{"customer_id", "create_time"}},
	}
	activityList = filter.List{Fields: []filter.Field{
		{Name: "contact_id", Ops: equal}, {Name: "account_id", Ops: equal}, {Name: "opportunity_id", Ops: equal},
	}}
)

// ParseAccountFilter maps a ListAccounts filter to its index: owner, industry, or a name prefix
// (the name index, ascending).
func ParseAccountFilter(text string) (Index, error) {
	terms, err := accountList.Parse(text)
	if err != nil || len(terms) == 0 {
		return newestFirst(), err
	}
	return lookup(terms, func(t filter.Term) (Index, error) {
		p, err := t.Search()
		lo, hi := p.Range()
		return Index{Name: []string{"name"}, Min: lo, Max: hi, Search: p}, err
	})
}

// ParseContactFilter parses a ListContacts filter: an equality, an e-mail lookup or a name search,
// the last two alone or with account_id or owner_id.
func ParseContactFilter(text string) (Index, error) {
	terms, err := contactList.Parse(text)
	if err != nil || len(terms) == 0 {
		return newestFirst(), err
	}
	return lookup(terms, func(t filter.Term) (Index, error) {
		if t.Field == "email" {
			email, err := NormalizeEmail(t.Value)
			if err != nil {
				return Index{}, t.Invalid("takes an e-mail address, got %q", t.Value)
			}
			return Index{Email: email}, nil
		}
		if t.Field == "external_id" {
			id, err := t.Text()
			return Index{ExternalID: strings.TrimSpace(id)}, err
		}
		p, err := t.Search()
		lo, hi := p.Range()
		return Index{Name: []string{"name"}, Min: lo, Max: hi, Search: p}, err
	})
}

// lookup is the index of a filter with an e-mail or a name term (found), alone or with one
// equality that each record found is checked for; otherwise the equality's own index.
func lookup(terms []filter.Term, found func(filter.Term) (Index, error)) (Index, error) {
	var ix Index
	var also []filter.Term
	for _, t := range terms {
		if t.Field != "email" && t.Field != "external_id" && t.Field != "display_name" {
			also = append(also, t)
			continue
		}
		var err error
		if ix, err = found(t); err != nil {
			return Index{}, err
		}
	}
	if len(also) == 0 {
		return ix, nil
	}
	eq, err := equalityIndex(also[0])
	if err != nil || len(terms) == 1 {
		return eq, err
	}
	ix.Also = eq.Name
	return ix, nil
}

func ParseActivityFilter(text string) (Index, error) { return oneEquality(activityList, text) }

// ParseOpportunityFilter maps a ListOpportunities filter to its index: stage, owner or account
// (newest first), or a range of close dates or amounts in whole units (ascending).
func ParseOpportunityFilter(text string) (Index, error) {
	terms, err := opportunityList.Parse(text)
	if err != nil || len(terms) == 0 {
		return newestFirst(), err
	}
	field := terms[0].Field
	var encode func(filter.Term) (string, error)
	switch field {
	case "close_date":
		encode = filter.Term.Date
	case "amount":
		encode = func(t filter.Term) (string, error) {
			units, err := t.Int(0)
			return AmountKey(&typev1.Money{Units: units}), err
		}
	default:
		return equalityIndex(terms[0])
	}
	lo, hi, err := rangeBounds(terms, encode)
	return Index{Name: []string{field}, Min: lo, Max: hi}, err
}

// ParseOrderFilter maps a ListOrders filter to the orders' time index (all orders or one
// customer's), newest first, bounded by create_time ranges.
func ParseOrderFilter(text string) (Index, error) {
	terms, err := orderList.Parse(text)
	if err != nil {
		return Index{}, err
	}
	ix := Index{Name: []string{"time"}, Desc: true}
	var times []filter.Term
	for _, t := range terms {
		if t.Field == "create_time" {
			times = append(times, t)
			continue
		}
		id, err := t.ID()
		if err != nil {
			return Index{}, err
		}
		ix.Name = []string{"time", "customer_id", id}
	}
	ix.Min, ix.Max, err = rangeBounds(times, func(t filter.Term) (string, error) {
		ts, err := t.Time()
		return TimeKey(ts), err
	})
	return ix, err
}

// oneEquality maps a list's filter of one equality to its index; empty is the index of all.
func oneEquality(l filter.List, text string) (Index, error) {
	terms, err := l.Parse(text)
	if err != nil || len(terms) == 0 {
		return newestFirst(), err
	}
	return equalityIndex(terms[0])
}

// equalityIndex is the index named after a term's field and value, newest first; ids are checked
// and lower-cased.
func equalityIndex(t filter.Term) (Index, error) {
	value, err := t.Text()
	if strings.HasSuffix(t.Field, "_id") && t.Field != "owner_id" {
		value, err = t.ID()
	}
	if err != nil {
		return Index{}, err
	}
	return newestFirst(t.Field, value), nil
}

// rangeBounds turns range terms over one sort key into lex bounds over members "<key>\x00<id>";
// encode maps a term's value to its sort key.
func rangeBounds(terms []filter.Term, encode func(filter.Term) (string, error)) (lo, hi string, err error) {
	lo, hi = "-", "+"
	for _, t := range terms {
		key, err := encode(t)
		if err != nil {
			return "", "", err
		}
		switch t.Op {
		case filter.GreaterOrEqual:
			lo = "[" + key
		case filter.Greater:
			lo = "(" + key + "\x01"
		case filter.Less:
			hi = "(" + key
		case filter.LessOrEqual:
			hi = "(" + key + "\x01"
		default:
			lo, hi = "["+key, "("+key+"\x01"
		}
	}
	return lo, hi, nil
}
