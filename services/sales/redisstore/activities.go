package redisstore

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/services/sales"
)

// activityMembers are the indexes an activity is in; an open task is also in its owner's task
// index, ordered by due time.
func (k keys) activityMembers(a *sales.Activity) []commit.Entry {
	out := k.plain("activity", a.GetId(), "contact_id", a.GetContactId(), "account_id", a.GetAccountId(), "opportunity_id", a.GetOpportunityId())
	if a.GetType() == sales.TypeTask && a.GetCompleteTime() == nil {
		out = append(out, k.sorted(a.GetId(), sales.TimeKey(a.GetDueTime().AsTime()), "activity", "open_tasks", a.GetOwnerId()))
	}
	return out
}

// CreateActivity implements sales.Store: the linked records must exist.
func (s *Store) CreateActivity(ctx context.Context, tenant string, a *sales.Activity, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	for kind, id := range map[string]string{"contact": a.GetContactId(), "account": a.GetAccountId(), "opportunity": a.GetOpportunityId()} {
		if id != "" {
			w.ExpectExists(k.resource(kind, id))
		}
	}
	w.Save(k.resource("activity", a.GetId()), a, "", a.GetEtag())
	w.Move(nil, k.activityMembers(a))
	err := s.run(ctx, k, w, event)
	if errors.Is(err, sales.ErrUnknownAccount) || errors.Is(err, sales.ErrUnknownContact) {
		return sales.ErrUnknownLink
	}
	return err
}

// CompleteActivity implements sales.Store.
func (s *Store) CompleteActivity(ctx context.Context, tenant string, a, prev *sales.Activity, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	w.Save(k.resource("activity", a.GetId()), a, prev.GetEtag(), a.GetEtag())
	w.Move(k.activityMembers(prev), k.activityMembers(a))
	return s.run(ctx, k, w, event)
}

// GetActivity implements sales.Store.
func (s *Store) GetActivity(ctx context.Context, tenant, id string) (*sales.Activity, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).resource("activity", id), &sales.Activity{}, sales.ErrActivityNotFound)
}

// ListActivities implements sales.Store.
func (s *Store) ListActivities(ctx context.Context, tenant string, q sales.Query) (page.Page[*sales.Activity], error) {
	return list(ctx, s, tenant, "activity", q, func() *sales.Activity { return &sales.Activity{} })
}
