package redisstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/services/sales"
)

// opportunityMembers are the indexes a deal is in; an open deal is also in its stage's open set,
// whose existence keeps the stage from being removed from the pipeline. The customer's
// (ix:opportunity:customer_id:<id>) is for a merge to find the person's deals.
func (k keys) opportunityMembers(o *sales.Opportunity) []commit.Entry {
	if o == nil {
		return nil
	}
	out := append(k.plain("opportunity", o.GetId(), "stage", o.GetStage(), "owner_id", o.GetOwnerId(), "account_id", o.GetAccountId(),
		"customer_id", o.GetCustomerId()),
		k.sorted(o.GetId(), o.GetCloseDate(), "opportunity", "close_date"),
		k.sorted(o.GetId(), sales.AmountKey(o.GetAmount()), "opportunity", "amount"))
	if o.GetStatus() == sales.StatusOpen {
		out = append(out, commit.Entry{Index: k.openStage(o.GetPipelineId(), o.GetStage()), Member: o.GetId()})
	}
	return out
}

func (k keys) openStage(pipelineID, stage string) string {
	return k.index("opportunity", "open", pipelineID, stage)
}

func (k keys) forecast(period string) string { return k.Key("forecast", period) }

// forecastField names one counter in a period's hash.
func forecastField(c sales.ForecastCounter) string {
	return c.Owner + "\x1f" + c.Currency + "\x1f" + c.Metric
}

// putOpportunity adds a deal's write to w: the deal, its indexes, its pipeline pin, its forecast
// counters, its order (a win) and, on creation, the existence of its account and contact unless
// the same write creates them.
func (k keys) putOpportunity(w *commit.Write, ow *sales.OpportunityWrite, partiesInWrite bool) {
	o, prev := ow.Opp, ow.Prev
	w.Save(k.resource("opportunity", o.GetId()), o, prev.GetEtag(), o.GetEtag())
	if prev == nil && o.GetAccountId() != "" && !partiesInWrite {
		w.ExpectExists(k.resource("account", o.GetAccountId()))
	}
	if prev == nil && o.GetContactId() != "" && !partiesInWrite {
		w.ExpectExists(k.resource("contact", o.GetContactId()))
	}
	if ow.PinPipeline {
		w.ExpectVersion(k.resource("pipeline", o.GetPipelineId()), ow.PipelineVersion)
	}
	w.Move(k.opportunityMembers(prev), k.opportunityMembers(o))
	for _, c := range ow.Forecast {
		w.HIncrBy(k.forecast(c.Period), forecastField(c), c.Value)
	}
	if ow.Order != nil {
		k.putOrder(w, ow.Order)
		k.putValue(w, ow.Value)
	}
}

// SaveOpportunity implements sales.Store.
func (s *Store) SaveOpportunity(ctx context.Context, tenant string, ow *sales.OpportunityWrite) error {
	k, w := s.scope(tenant), commit.New()
	k.putOpportunity(w, ow, false)
	return s.run(ctx, k, w, ow.Events...)
}

// GetOpportunity implements sales.Store.
func (s *Store) GetOpportunity(ctx context.Context, tenant, id string) (*sales.Opportunity, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).resource("opportunity", id), &sales.Opportunity{}, sales.ErrOpportunityNotFound)
}

// ListOpportunities implements sales.Store.
func (s *Store) ListOpportunities(ctx context.Context, tenant string, q sales.Query) (page.Page[*sales.Opportunity], error) {
	return list(ctx, s, tenant, "opportunity", q, func() *sales.Opportunity { return &sales.Opportunity{} })
}

// ForecastTotals implements sales.Store: one hash read per period, whatever the number of deals.
func (s *Store) ForecastTotals(ctx context.Context, tenant, period string) ([]sales.ForecastCounter, error) {
	m, err := s.rdb.HGetAll(ctx, s.scope(tenant).forecast(period)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]sales.ForecastCounter, 0, len(m))
	for field, v := range m {
		parts := strings.Split(field, "\x1f")
		n, err := strconv.ParseInt(v, 10, 64)
		if len(parts) != 3 || err != nil {
			continue
		}
		out = append(out, sales.ForecastCounter{Period: period, Owner: parts[0], Currency: parts[1], Metric: parts[2], Value: n})
	}
	return out, nil
}

// Convert implements sales.Store: the claim on the lead, the account, the contact and the deal
// in one commit.
func (s *Store) Convert(ctx context.Context, tenant string, c *sales.Conversion, events [][]byte) error {
	k, w := s.scope(tenant), commit.New()
	w.Once(k.Key("lead-converted", c.LeadID), 0)
	if c.NewAccount != nil {
		k.putAccount(w, c.NewAccount, nil)
	}
	// An attached account or contact must still exist; a new one is created right here.
	switch {
	case c.ContactPrev != nil: // the person's contact joins the new account, at the version read
		k.putContact(w, c.Contact, c.ContactPrev, c.NewAccount != nil)
	case c.ContactExists:
		w.ExpectExists(k.resource("contact", c.Contact.GetId()))
	default:
		k.putContact(w, c.Contact, nil, c.NewAccount != nil)
	}
	if c.Opportunity != nil {
		k.putOpportunity(w, c.Opportunity, true)
	}
	return s.run(ctx, k, w, events...)
}
