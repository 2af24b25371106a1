package sales

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/page"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Errors of the activity use cases.
var (
	ErrActivityNotFound = apierr.New(apierr.NotFound, "ACTIVITY_NOT_FOUND", "activity not found")
	ErrNotOpenTask      = apierr.New(apierr.FailedPrecondition, "NOT_AN_OPEN_TASK", "only an open task can be completed")
	ErrUnknownLink      = apierr.Invalid("activity", "links to a contact, account or opportunity that does not exist")
	ErrActivityEtag     = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the activity changed since it was read; read it again and retry")
)

// ActivityStore persists activities.
type ActivityStore interface {
	// CreateActivity stores an activity; ErrUnknownLink when a linked record does not exist.
	CreateActivity(ctx context.Context, tenant string, a *Activity, event []byte) error
	// CompleteActivity replaces prev with a, a completed task; ErrStale when prev is not current.
	CompleteActivity(ctx context.Context, tenant string, a, prev *Activity, event []byte) error
	GetActivity(ctx context.Context, tenant, id string) (*Activity, error)
	ListActivities(ctx context.Context, tenant string, q Query) (page.Page[*Activity], error)
}

// OverdueIndex lists an owner's open tasks due before now, the longest overdue first.
func OverdueIndex(owner string, now time.Time) Index {
	return Index{Name: []string{"open_tasks", owner}, Min: "-", Max: "(" + TimeKey(now)}
}

// isOpenTask reports whether an activity is a task still to do.
func isOpenTask(a *Activity) bool {
	return a.GetType() == salesv1.ActivityType_ACTIVITY_TYPE_TASK && a.GetCompleteTime() == nil
}

// Activities are the activity use cases.
type Activities struct{ Env }

// NewActivities returns the use cases.
func NewActivities(env Env) *Activities { return &Activities{env} }

func (a *Activities) eventOf(ctx context.Context, t eventv1.Type[*salesv1.ActivityChanged], tenant string, act *Activity) ([]byte, error) {
	return a.event(ctx, t.Of(&salesv1.ActivityChanged{ActivityId: act.GetId(), OwnerId: act.GetOwnerId()}), tenant, "")
}

// Create records an activity linked to existing records.
func (a *Activities) Create(ctx context.Context, tenant string, in *Activity) (*Activity, error) {
	now := timestampOf(a.Now())
	act := &Activity{
		Id: uuid.Must(uuid.NewV7()).String(), Type: in.GetType(), Subject: in.GetSubject(), Notes: in.GetNotes(),
		OwnerId: in.GetOwnerId(), DueTime: in.GetDueTime(), ContactId: in.GetContactId(), AccountId: in.GetAccountId(),
		OpportunityId: in.GetOpportunityId(), CreateTime: now, UpdateTime: now, Etag: etag.First,
	}
	event, err := a.eventOf(ctx, salesv1.EventActivityCreated, tenant, act)
	if err != nil {
		return nil, err
	}
	return act, a.Store.CreateActivity(ctx, tenant, act, event)
}

// Get returns one activity.
func (a *Activities) Get(ctx context.Context, tenant, id string) (*Activity, error) {
	return a.Store.GetActivity(ctx, tenant, id)
}

// List returns a page of activities.
func (a *Activities) List(ctx context.Context, tenant string, q Query) (page.Page[*Activity], error) {
	return a.Store.ListActivities(ctx, tenant, q)
}

// Overdue returns a page of an owner's overdue tasks as of now.
func (a *Activities) Overdue(ctx context.Context, tenant, owner, after string, limit int) (page.Page[*Activity], error) {
	return a.Store.ListActivities(ctx, tenant, Query{Index: OverdueIndex(owner, a.Now()), Request: page.Request{After: after, Limit: limit}})
}

// Complete marks an open task done. A stale ifMatch is ABORTED; the write is conditional on the
// version checked, so a change in between is found by the retry's read.
func (a *Activities) Complete(ctx context.Context, tenant, id, ifMatch string) (*Activity, error) {
	for range writeAttempts {
		existing, err := a.Store.GetActivity(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrActivityEtag); err != nil {
			return nil, err
		}
		if !isOpenTask(existing) {
			return nil, ErrNotOpenTask
		}
		act := proto.CloneOf(existing)
		now := timestampOf(a.Now())
		act.CompleteTime, act.UpdateTime, act.Etag = now, now, etag.Next(existing.GetEtag())
		event, err := a.eventOf(ctx, salesv1.EventActivityCompleted, tenant, act)
		if err != nil {
			return nil, err
		}
		err = a.Store.CompleteActivity(ctx, tenant, act, existing, event)
		if errors.Is(err, ErrStale) {
			continue
		}
		return act, err
	}
	return nil, ErrContention
}
