package integration

import (
	"context"
	"errors"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/filter"
	"github.com/crmcycle/crm/pkg/page"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// History reads the tenant's event history: the audit log and customer timelines. Both page over
// an index of time-ordered event ids, so a page costs O(page) whatever the history's size.
type History struct {
	store *redisstore.Store
	known Known
}

// Known tells whether the tenant has a customer: marketing's identity registry
// (customerref.Checker), asked only about a timeline integration has recorded nothing in.
type Known interface {
	Check(ctx context.Context, tenant, customer, field string) error
}

// NewHistory returns the history reads.
func NewHistory(store *redisstore.Store, known Known) *History {
	return &History{store: store, known: known}
}

// auditList is what ListAuditEntries serves: one index per field, each alone or with a time range.
var auditList = filter.List{
	Fields: []filter.Field{
		{Name: "actor", Ops: []filter.Operator{filter.Equal}},
		{Name: "resource", Ops: []filter.Operator{filter.Equal}},
		{Name: "event_type", Ops: []filter.Operator{filter.Equal}},
		{Name: "request_id", Ops: []filter.Operator{filter.Equal}},
		{Name: "time", Ops: []filter.Operator{filter.Less, filter.LessOrEqual, filter.Greater, filter.GreaterOrEqual}},
	},
	Pairs: [][2]string{{"actor", "time"}, {"resource", "time"}, {"event_type", "time"}, {"request_id", "time"}},
}

// AuditQuery is a parsed audit-log filter: the index to read and the id range of the time bounds.
type AuditQuery struct {
	By       []string // the index below "audit": none, or {"actor", id}, ...
	Min, Max string   // BYLEX bounds; "" unbounded
}

// ParseAuditFilter maps a ListAuditEntries filter to its index and range.
func ParseAuditFilter(text string) (AuditQuery, error) {
	terms, err := auditList.Parse(text)
	if err != nil {
		return AuditQuery{}, err
	}
	var q AuditQuery
	for _, t := range terms {
		switch t.Field {
		case "time":
			at, err := t.Time()
			if err != nil {
				return AuditQuery{}, err
			}
			switch t.Op {
			case filter.GreaterOrEqual:
				q.Min = "[" + redisstore.CutoffID(at)
			case filter.Greater:
				q.Min = "[" + redisstore.CutoffID(at.Add(time.Millisecond))
			case filter.Less:
				q.Max = "(" + redisstore.CutoffID(at)
			case filter.LessOrEqual:
				q.Max = "(" + redisstore.CutoffID(at.Add(time.Millisecond))
			}
		default:
			v, err := t.Text()
			if err != nil {
				return AuditQuery{}, err
			}
			name := map[string]string{"actor": "actor", "resource": "resource", "event_type": "type", "request_id": "request"}[t.Field]
			q.By = []string{name, v}
		}
	}
	return q, nil
}

// Audit reads a page of the audit log, newest first.
func (h *History) Audit(ctx context.Context, tenant string, q AuditQuery, req page.Request) (page.Page[*integrationv1.AuditEntry], error) {
	sc := h.store.Scope(tenant)
	return redisstore.List(ctx, h.store, redisstore.AuditKey(sc, q.By...), q.Min, q.Max, req,
		func(id string) string { return redisstore.EntryKey(sc, id) },
		func() *integrationv1.AuditEntry { return &integrationv1.AuditEntry{} })
}

// Timeline reads a page of a customer's timeline, newest first; a merged customer reads its
// survivor's. An id the tenant has no customer for is customerref's NotFound, as the other reads
// of a customer answer. A timeline with entries is its own proof (also an erased customer's, whose
// entries are kept without personal data, the erasure last); only an empty first page asks
// marketing's registry, so a customer registered a moment ago, whose first events integration has
// not recorded yet, reads an empty timeline, not a 404.
func (h *History) Timeline(ctx context.Context, tenant, customer string, req page.Request) (page.Page[*integrationv1.TimelineEntry], error) {
	p, err := h.timeline(ctx, tenant, customer, req)
	if err != nil || len(p.Items) > 0 || req.After != "" {
		return p, err
	}
	err = h.known.Check(ctx, tenant, customer, "customer_id")
	if m, ok := apierr.As(err); ok && errors.Is(err, customerref.ErrMerged) {
		// Merged before integration recorded the merge: the survivor's timeline, as after it.
		return h.timeline(ctx, tenant, m.Metadata["merged_into"], req)
	}
	return p, err
}

func (h *History) timeline(ctx context.Context, tenant, customer string, req page.Request) (page.Page[*integrationv1.TimelineEntry], error) {
	survivor, err := h.store.Survivor(ctx, tenant, customer)
	if err != nil {
		return page.Page[*integrationv1.TimelineEntry]{}, err
	}
	sc := h.store.Scope(tenant)
	entries, err := redisstore.List(ctx, h.store, redisstore.TimelineKey(sc, survivor), "", "", req,
		func(id string) string { return redisstore.EntryKey(sc, id) },
		func() *integrationv1.AuditEntry { return &integrationv1.AuditEntry{} })
	if err != nil {
		return page.Page[*integrationv1.TimelineEntry]{}, err
	}
	out := page.Page[*integrationv1.TimelineEntry]{Next: entries.Next, Items: make([]*integrationv1.TimelineEntry, len(entries.Items))}
	for i, e := range entries.Items {
		out.Items[i] = &integrationv1.TimelineEntry{
			Id: e.GetId(), Time: e.GetTime(), EventType: e.GetEventType(), ResourceType: e.GetResourceType(),
			ResourceId: e.GetResourceId(), Summary: e.GetSummary(), Actor: e.GetActor(),
		}
		if e.GetCustomerId() != survivor {
			out.Items[i].MergedCustomerId = e.GetCustomerId()
		}
	}
	return out, nil
}
