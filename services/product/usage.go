package product

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// Errors of usage and adoption.
var (
	ErrUnknownFeature  = apierr.Invalid("usage_record.feature", "not a feature of the subscription's product")
	ErrFutureUsage     = apierr.Invalid("usage_record.time", "must not be in the future")
	ErrNoCustomer      = apierr.New(apierr.NotFound, "CUSTOMER_NOT_FOUND", "the customer owns no product")
	ErrUsageContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
		"the customer's adoption kept changing concurrently; retry")
)

// UsageRecord is the stored and served form of a usage record.
type UsageRecord = productv1.UsageRecord

// Usage is the usage and adoption use cases.
type Usage struct {
	store     UsageStore
	subs      SubscriptionStore
	catalog   CatalogStore
	publisher events.Publisher
	now       func() time.Time
}

// UsageWrite is one usage record's commit: its counters and the customer's next rescoring always;
// the customer's adoption and its event only when the band changes.
type UsageWrite struct {
	Subscription *Subscription
	Record       *UsageRecord
	// Period is the calendar month (UTC) of the record, "2006-01".
	Period string
	// LastUsed is set when the record is the feature's latest use.
	LastUsed bool
	Change   *AdoptionChange
	// RescoreAt is when the timed sweep scores the customer again; zero takes it off the schedule.
	RescoreAt time.Time
}

// AdoptionChange replaces the stored adoption, read at version PrevVersion, and announces it.
type AdoptionChange struct {
	Adoption    *productv1.Adoption
	PrevVersion string
	Version     string
	Event       []byte
}

// AdoptionInputs are the counters a customer's adoption is computed from, read at write time.
type AdoptionInputs struct {
	// Known is false when the customer never owned a product.
	Known bool
	// Owned are the products the customer has an active grant of.
	Owned []string
	// Seats are the quantities of the customer's active grants.
	Seats int64
	// LastUsed is when each feature was last used.
	LastUsed map[string]time.Time
	// Users are the distinct users seen in the current month.
	Users int64
	// UserSeen is true when the user asked about was seen in the current month already.
	UserSeen bool
	// Stored is the adoption last announced, and its version ("" when none).
	Stored        *productv1.Adoption
	StoredVersion string
}

// UsageStore persists usage counters and adoption.
type UsageStore interface {
	// RecordUsage commits w; ErrStale when w.Change is set and the stored adoption is not its
	// PrevVersion.
	RecordUsage(ctx context.Context, tenant string, w UsageWrite) error
	// Rescore commits a timed rescoring: the change, if any (ErrStale as RecordUsage), and the
	// customer's next rescoring (zero: off the schedule).
	Rescore(ctx context.Context, tenant, customerID string, change *AdoptionChange, next time.Time) error
	// RescoreDue returns up to limit customers of a partition due to be scored again by then.
	RescoreDue(ctx context.Context, partition int, by time.Time, limit int) ([]Due, error)
	// AdoptionInputs reads a customer's adoption counters for the month of at, and whether user (if
	// any) was seen in it, in one round trip.
	AdoptionInputs(ctx context.Context, tenant, customerID string, at time.Time, user string) (AdoptionInputs, error)
	// SurvivorOf is the customer a merged customer lives on as, "" when product has not seen the
	// customer merged.
	SurvivorOf(ctx context.Context, tenant, customerID string) (string, error)
}

// NewUsage returns the usage and adoption use cases.
func NewUsage(store UsageStore, subs SubscriptionStore, catalog CatalogStore, publisher events.Publisher, now func() time.Time) *Usage {
	return &Usage{store: store, subs: subs, catalog: catalog, publisher: publisher, now: now}
}

// Record counts a use of a feature on an active subscription and rescores the customer's adoption;
// when the band moves, the new adoption and a "product.adoption.changed" event commit with the
// usage, conditional on the adoption read, so each band change is announced once.
//
// The write is also conditional on the subscription as read: one that changed meanwhile (a
// renewal, an end, a merge moving it to another customer) is read again, so the usage counts for
// the customer the subscription belongs to when it commits.
func (u *Usage) Record(ctx context.Context, tenant, subscriptionID string, in *UsageRecord) (*UsageRecord, error) {
	rec := proto.CloneOf(in)
	rec.SubscriptionId = subscriptionID
	now := u.now().UTC()
	if rec.Time == nil {
		rec.Time = timestamppb.New(now)
	}
	at := rec.GetTime().AsTime()
	if at.After(now.Add(time.Minute)) {
		return nil, ErrFutureUsage
	}
	for range changeAttempts {
		sub, err := u.subs.GetSubscription(ctx, tenant, subscriptionID)
		if err != nil {
			return nil, err
		}
		if !IsEntitling(sub) {
			return nil, ErrSubscriptionEnded
		}
		w, err := u.write(ctx, tenant, sub, rec, now)
		if err != nil {
			return nil, err
		}
		err = u.store.RecordUsage(ctx, tenant, w)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return rec, nil
	}
	return nil, ErrUsageContention
}

func (u *Usage) write(ctx context.Context, tenant string, sub *Subscription, rec *UsageRecord, now time.Time) (UsageWrite, error) {
	at := rec.GetTime().AsTime().UTC()
	in, err := u.store.AdoptionInputs(ctx, tenant, sub.GetCustomerId(), now, rec.GetUserId())
	if err != nil {
		return UsageWrite{}, err
	}
	w := UsageWrite{Subscription: sub, Record: rec, Period: at.Format("2006-01")}
	if last, ok := in.LastUsed[rec.GetFeature()]; !ok || at.After(last) {
		w.LastUsed = true
		in.LastUsed[rec.GetFeature()] = at
	}
	if rec.GetUserId() != "" && !in.UserSeen && w.Period == now.Format("2006-01") {
		in.Users++
	}
	// The customer's products, the subscription's among them, give the features: one read for the
	// feature check and the score.
	products, err := u.catalog.GetProducts(ctx, tenant, in.Owned)
	if err != nil {
		return UsageWrite{}, err
	}
	i := slices.IndexFunc(products, func(p *Product) bool { return p.GetId() == sub.GetProductId() })
	if i < 0 { // ended since it was read
		return UsageWrite{}, ErrSubscriptionEnded
	}
	if !slices.Contains(products[i].GetFeatures(), rec.GetFeature()) {
		return UsageWrite{}, ErrUnknownFeature
	}
	w.RescoreAt = nextRescore(in.LastUsed, now)
	w.Change, err = u.change(ctx, tenant, in, assess(sub.GetCustomerId(), in, products, now), now)
	return w, err
}

// change is the adoption change to commit when the band moved, nil when it did not.
func (u *Usage) change(ctx context.Context, tenant string, in AdoptionInputs, a *productv1.Adoption, now time.Time) (*AdoptionChange, error) {
	if a.GetBand() == in.Stored.GetBand() {
		return nil, nil
	}
	if in.StoredVersion == "" && len(in.LastUsed) == 0 {
		// Never used, never scored: a rescore (after a merge) has no usage to judge, and a
		// customer who bought once is not "at risk" for it.
		return nil, nil
	}
	c := &AdoptionChange{Adoption: a, PrevVersion: in.StoredVersion, Version: etag.Next(in.StoredVersion)}
	var err error
	_, c.Event, err = u.publisher.Envelope(ctx, productv1.EventAdoptionChanged.Of(
		&productv1.AdoptionChanged{CustomerId: a.GetCustomerId(), PreviousBand: in.Stored.GetBand(), Adoption: a}),
		tenant, a.GetCustomerId(), now)
	return c, err
}

// RescorePartition scores again the customers of one key-space partition whose adoption may have
// fallen without usage (recency fades, the month's users reset), announcing band changes as usage
// does. For the timed sweep.
func (u *Usage) RescorePartition(ctx context.Context, partition int) error {
	for {
		due, err := u.store.RescoreDue(ctx, partition, u.now(), sweepBatch)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, d := range due {
			if err := u.rescore(ctx, d.Tenant, d.ID); err != nil {
				return err
			}
		}
	}
}

func (u *Usage) rescore(ctx context.Context, tenant, customerID string) error {
	for range changeAttempts {
		now := u.now().UTC()
		in, err := u.store.AdoptionInputs(ctx, tenant, customerID, now, "")
		if err != nil {
			return err
		}
		if !in.Known { // merged into another customer: nothing to score, off the schedule
			return u.store.Rescore(ctx, tenant, customerID, nil, time.Time{})
		}
		products, err := u.catalog.GetProducts(ctx, tenant, in.Owned)
		if err != nil {
			return err
		}
		change, err := u.change(ctx, tenant, in, assess(customerID, in, products, now), now)
		if err != nil {
			return err
		}
		err = u.store.Rescore(ctx, tenant, customerID, change, nextRescore(in.LastUsed, now))
		if !errors.Is(err, ErrStale) {
			return err
		}
	}
	return ErrUsageContention
}

// maxMergeHops bounds how many merges a read follows from a merged customer to its survivor.
const maxMergeHops = 8

// Survivor is the customer a merged customer lives on as, at the end of its merges; "" when
// product has not seen the customer merged. Reads of a merged customer's adoption and
// recommendations answer the survivor's: the merge moved its grants and usage there.
func (u *Usage) Survivor(ctx context.Context, tenant, customerID string) (string, error) {
	survivor := ""
	for range maxMergeHops {
		next, err := u.store.SurvivorOf(ctx, tenant, customerID)
		if err != nil || next == "" {
			return survivor, err
		}
		survivor, customerID = next, next
	}
	return survivor, nil
}

// Adoption returns a customer's adoption health now.
func (u *Usage) Adoption(ctx context.Context, tenant, customerID string) (*productv1.Adoption, error) {
	now := u.now().UTC()
	in, err := u.store.AdoptionInputs(ctx, tenant, customerID, now, "")
	if err != nil {
		return nil, err
	}
	if !in.Known {
		return nil, ErrNoCustomer
	}
	products, err := u.catalog.GetProducts(ctx, tenant, in.Owned)
	if err != nil {
		return nil, err
	}
	return assess(customerID, in, products, now), nil
}
