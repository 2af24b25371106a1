package marketing

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Customer is a person's identity in the registry.
type Customer = marketingv1.CustomerIdentity

// Errors of the identity registry.
var (
	ErrCustomerNotFound = apierr.New(apierr.NotFound, "CUSTOMER_NOT_FOUND", "customer not found")
	ErrIdentityConflict = apierr.New(apierr.FailedPrecondition, "CUSTOMER_IDENTITY_CONFLICT",
		"the e-mail and the external id belong to two customers; merge them")
	ErrIdentityMissing    = apierr.Invalid("email", "give an e-mail, an external id, or both")
	ErrAttachEmailOnly    = apierr.Invalid("email", "customer_id attaches an e-mail: give an e-mail and no external id")
	ErrIdentityContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the customer kept changing concurrently; retry")
)

// IdentityTakenError means an e-mail or external id of a registration belongs to another customer.
type IdentityTakenError struct{ Owner string }

func (e *IdentityTakenError) Error() string {
	return "marketing: identity belongs to customer " + e.Owner
}

// IdentityKey is what a person is known by: a normalized e-mail, an external id, or both.
type IdentityKey struct{ Email, ExternalID string }

// IdentityMatch is who the keys of an IdentityKey belong to ("" for nobody).
type IdentityMatch struct{ ByEmail, ByExternalID string }

// CustomerWrite registers a customer or adds keys to one, with its events and, for a new customer,
// its entry into the lifecycle, in one atomic write.
type CustomerWrite struct {
	Customer *Customer
	// Prev is the customer as read; nil for a new one.
	Prev      *Customer
	Events    [][]byte
	Lifecycle *LifecycleWrite
}

// CustomerStore is marketing's identity registry.
type CustomerStore interface {
	// MatchIdentities returns who each key belongs to, in one round trip.
	MatchIdentities(ctx context.Context, tenant string, keys []IdentityKey) ([]IdentityMatch, error)
	// GetCustomer returns a customer or ErrCustomerNotFound.
	GetCustomer(ctx context.Context, tenant, id string) (*Customer, error)
	// PutCustomer commits w: *IdentityTakenError when a key belongs to another customer, ErrStale
	// when w.Prev is not current (or, for a new customer, the id exists).
	PutCustomer(ctx context.Context, tenant string, w CustomerWrite) error
	// MergeCustomers commits a merge: both records (ErrStale if either changed), the registry
	// entries of the merged customer re-pointed to the survivor, and the event.
	MergeCustomers(ctx context.Context, tenant string, m CustomerMerge) error
}

// Customers are the identity use cases: one person is one customer in a tenant.
type Customers struct {
	store     CustomerStore
	publisher events.Publisher
	now       func() time.Time
}

// NewCustomers returns the use cases over store.
func NewCustomers(store CustomerStore, publisher events.Publisher, now func() time.Time) *Customers {
	return &Customers{store: store, publisher: publisher, now: now}
}

// ResolveRequest asks who a person is.
type ResolveRequest struct {
	Email, ExternalID string
	// Create registers an unknown person and adds the keys a known customer lacks.
	Create bool
	Origin marketingv1.CustomerOrigin
	// CustomerID, when set, is the known customer the e-mail is attached to (see Attach).
	CustomerID string
}

// Get returns a customer's identity.
func (c *Customers) Get(ctx context.Context, tenant, id string) (*Customer, error) {
	return c.store.GetCustomer(ctx, tenant, id)
}

// Survivor is the customer a merged customer lives on as, at the end of its merges; "" when the
// registry has the customer unmerged or not at all.
func (c *Customers) Survivor(ctx context.Context, tenant, id string) (string, error) {
	survivor := ""
	for range captureAttempts {
		cur, err := c.store.GetCustomer(ctx, tenant, id)
		if errors.Is(err, ErrCustomerNotFound) {
			return survivor, nil
		}
		if err != nil || cur.GetMergedInto() == "" {
			return survivor, err
		}
		survivor, id = cur.GetMergedInto(), cur.GetMergedInto()
	}
	return survivor, nil
}

// Resolve returns the customer a person is, registering them when asked. Concurrent resolutions
// of one new person register one customer: the registry's unique indexes decide, and the others
// retry and find it.
func (c *Customers) Resolve(ctx context.Context, tenant string, req ResolveRequest) (*marketingv1.ResolvedCustomer, error) {
	key, err := identityKey(req)
	if err != nil {
		return nil, err
	}
	if req.CustomerID != "" {
		return c.attach(ctx, tenant, req.CustomerID, key)
	}
	matches, err := c.store.MatchIdentities(ctx, tenant, []IdentityKey{key})
	if err != nil {
		return nil, err
	}
	return c.resolve(ctx, tenant, req, key, matches[0])
}

// ResolveMany resolves up to 1,000 people: one round trip finds the known ones; the others are
// registered one by one (a person twice in the batch is one customer). A refused item has its
// error in refused, at its index, and an empty resolution; err is a fault that fails them all.
func (c *Customers) ResolveMany(ctx context.Context, tenant string, reqs []ResolveRequest) (out []*marketingv1.ResolvedCustomer, refused []error, err error) {
	out, refused = make([]*marketingv1.ResolvedCustomer, len(reqs)), make([]error, len(reqs))
	itemError := func(i int, err error) {
		out[i], refused[i] = &marketingv1.ResolvedCustomer{}, err
	}
	keys := make([]IdentityKey, 0, len(reqs))
	at := make([]int, 0, len(reqs))
	for i, req := range reqs {
		key, err := identityKey(req)
		if err == nil && req.CustomerID != "" {
			out[i], err = c.attach(ctx, tenant, req.CustomerID, key)
		}
		if _, ok := apierr.As(err); ok {
			itemError(i, err)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if req.CustomerID == "" {
			keys, at = append(keys, key), append(at, i)
		}
	}
	matches, err := c.store.MatchIdentities(ctx, tenant, keys)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range at {
		m := matches[j]
		if j > 0 && slices.Contains(keys[:j], keys[j]) {
			// Resolved (maybe registered) earlier in this batch: look again.
			if m, err = c.match(ctx, tenant, keys[j]); err != nil {
				return nil, nil, err
			}
		}
		r, err := c.resolve(ctx, tenant, reqs[i], keys[j], m)
		if _, ok := apierr.As(err); ok {
			itemError(i, err)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out[i] = r
	}
	return out, refused, nil
}

func (c *Customers) match(ctx context.Context, tenant string, key IdentityKey) (IdentityMatch, error) {
	m, err := c.store.MatchIdentities(ctx, tenant, []IdentityKey{key})
	if err != nil {
		return IdentityMatch{}, err
	}
	return m[0], nil
}

// identityKey normalizes a request's keys.
func identityKey(req ResolveRequest) (IdentityKey, error) {
	key := IdentityKey{ExternalID: strings.TrimSpace(req.ExternalID)}
	if strings.TrimSpace(req.Email) != "" {
		email, err := NormalizeEmail(req.Email)
		if err != nil {
			return key, apierr.Invalid("email", "must be a plain e-mail address such as ada@example.com")
		}
		key.Email = email
	}
	if key.Email == "" && key.ExternalID == "" {
		return key, ErrIdentityMissing
	}
	if req.CustomerID != "" && (key.Email == "" || key.ExternalID != "") {
		return key, ErrAttachEmailOnly
	}
	return key, nil
}

// attach adds an e-mail to a known customer, or to the survivor they were merged into: a record
// of theirs (a sales contact) now carries it, so captures, contacts and imports with it find the
// same person. Their other e-mails stay theirs, as a lead's e-mail edit leaves them. The
// registry's unique claim decides between attachments and registrations of one e-mail at once:
// whoever commits first has it, and an e-mail of another customer is refused, naming them.
func (c *Customers) attach(ctx context.Context, tenant, id string, key IdentityKey) (*marketingv1.ResolvedCustomer, error) {
	for range captureAttempts {
		cur, err := c.store.GetCustomer(ctx, tenant, id)
		for hops := 0; err == nil && cur.GetMergedInto() != "" && hops < captureAttempts; hops++ {
			cur, err = c.store.GetCustomer(ctx, tenant, cur.GetMergedInto())
		}
		if err != nil {
			return nil, err
		}
		out := &marketingv1.ResolvedCustomer{CustomerId: cur.GetId()}
		if cur.GetId() != id {
			out.MergedFrom = id
		}
		now := c.now().UTC()
		next, changed := withKeys(cur, key, now)
		if !changed {
			return out, nil
		}
		_, ev, err := customerEvent(ctx, c.publisher, marketingv1.EventCustomerUpdated, tenant, next, now)
		if err != nil {
			return nil, err
		}
		err = c.store.PutCustomer(ctx, tenant, CustomerWrite{Customer: next, Prev: cur, Events: [][]byte{ev}})
		if taken, ok := errors.AsType[*IdentityTakenError](err); ok {
			return nil, ErrEmailOfAnotherCustomer.With("customer_id", taken.Owner)
		}
		if errors.Is(err, ErrStale) {
			continue // changed meanwhile (another e-mail, a merge, an erasure): read again
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, ErrIdentityContention
}

// resolve finishes one resolution from what the registry said; a write that loses a race is
// retried from a fresh look.
func (c *Customers) resolve(ctx context.Context, tenant string, req ResolveRequest, key IdentityKey, m IdentityMatch) (*marketingv1.ResolvedCustomer, error) {
	for range captureAttempts {
		if m.ByEmail != "" && m.ByExternalID != "" && m.ByEmail != m.ByExternalID {
			return nil, ErrIdentityConflict.With("email_customer_id", m.ByEmail).With("external_id_customer_id", m.ByExternalID)
		}
		id := cmpOr(m.ByEmail, m.ByExternalID)
		complete := (key.Email == "" || m.ByEmail != "") && (key.ExternalID == "" || m.ByExternalID != "")
		switch {
		case id != "" && (complete || !req.Create):
			return &marketingv1.ResolvedCustomer{CustomerId: id}, nil
		case id == "" && !req.Create:
			return nil, ErrCustomerNotFound
		}
		var err error
		if id != "" {
			err = c.addKeys(ctx, tenant, id, key)
		} else {
			id, err = c.register(ctx, tenant, key, req.Origin)
			if err == nil {
				return &marketingv1.ResolvedCustomer{CustomerId: id, Created: true}, nil
			}
		}
		var taken *IdentityTakenError
		if err != nil && !errors.As(err, &taken) && !errors.Is(err, ErrStale) {
			return nil, err
		}
		if err == nil {
			return &marketingv1.ResolvedCustomer{CustomerId: id}, nil
		}
		if m, err = c.match(ctx, tenant, key); err != nil {
			return nil, err
		}
	}
	return nil, ErrIdentityContention
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// register creates a customer with key; it enters the lifecycle at the stage its origin gives.
func (c *Customers) register(ctx context.Context, tenant string, key IdentityKey, origin marketingv1.CustomerOrigin) (string, error) {
	now := c.now().UTC()
	cust := NewCustomer(uuid.Must(uuid.NewV7()).String(), key, origin, now)
	w, err := c.registration(ctx, tenant, cust, now)
	if err != nil {
		return "", err
	}
	return cust.GetId(), c.store.PutCustomer(ctx, tenant, *w)
}

// registration plans the write of a new customer: the record, its event, its lifecycle entry.
func (c *Customers) registration(ctx context.Context, tenant string, cust *Customer, now time.Time) (*CustomerWrite, error) {
	eventID, ev, err := customerEvent(ctx, c.publisher, marketingv1.EventCustomerCreated, tenant, cust, now)
	if err != nil {
		return nil, err
	}
	entry := LifecycleMove{Stage: originStage(cust.GetOrigin()), Cause: marketingv1.EventCustomerCreated.Name, EventID: eventID}
	lw, err := enterStage(ctx, c.publisher, tenant, cust.GetId(), nil, entry, now)
	if err != nil {
		return nil, err
	}
	return &CustomerWrite{Customer: cust, Events: [][]byte{ev}, Lifecycle: lw}, nil
}

// addKeys adds the keys a known customer lacks.
func (c *Customers) addKeys(ctx context.Context, tenant, id string, key IdentityKey) error {
	cur, err := c.store.GetCustomer(ctx, tenant, id)
	if err != nil {
		return err
	}
	next, changed := withKeys(cur, key, c.now().UTC())
	if !changed {
		return nil
	}
	_, ev, err := customerEvent(ctx, c.publisher, marketingv1.EventCustomerUpdated, tenant, next, c.now())
	if err != nil {
		return err
	}
	return c.store.PutCustomer(ctx, tenant, CustomerWrite{Customer: next, Prev: cur, Events: [][]byte{ev}})
}

// NewCustomer is a new identity with key.
func NewCustomer(id string, key IdentityKey, origin marketingv1.CustomerOrigin, now time.Time) *Customer {
	ts := timestamppb.New(now)
	cust := &Customer{Id: id, Origin: origin, CreateTime: ts, UpdateTime: ts, Etag: etag.First}
	if key.Email != "" {
		cust.Emails = []string{key.Email}
	}
	if key.ExternalID != "" {
		cust.ExternalIds = []string{key.ExternalID}
	}
	return cust
}

// withKeys is cur with the keys it lacks; changed is false when it has them all.
func withKeys(cur *Customer, key IdentityKey, now time.Time) (*Customer, bool) {
	next := proto.CloneOf(cur)
	if key.Email != "" && !slices.Contains(next.Emails, key.Email) {
		next.Emails = append(next.Emails, key.Email)
	}
	if key.ExternalID != "" && !slices.Contains(next.ExternalIds, key.ExternalID) {
		next.ExternalIds = append(next.ExternalIds, key.ExternalID)
	}
	if proto.Equal(next, cur) {
		return cur, false
	}
	next.UpdateTime = timestamppb.New(now)
	next.Etag = etag.Next(cur.GetEtag())
	return next, true
}

// originStage is the stage a new customer enters at: people imported or subscribed by consent
// only are SUSPECTs; everyone else was engaged (captured, or a contact sales talks to).
func originStage(origin marketingv1.CustomerOrigin) Stage {
	switch origin {
	case marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT, marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CONSENT:
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT
	}
	return marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT
}

func customerEvent(ctx context.Context, pub events.Publisher, typ eventv1.Type[*marketingv1.CustomerChanged], tenant string, cust *Customer, at time.Time) (string, []byte, error) {
	ev, data, err := pub.Envelope(ctx, typ.Of(&marketingv1.CustomerChanged{CustomerId: cust.GetId(), Origin: cust.GetOrigin()}), tenant, cust.GetId(), at)
	return ev.GetId(), data, err
}

// Errors of merges.
var (
	ErrMergeSelf   = apierr.Invalid("merged_customer_id", "a customer cannot be merged into itself")
	ErrMergeMerged = apierr.New(apierr.FailedPrecondition, "CUSTOMER_MERGED", "the customer was merged into another; merge into the survivor")
)

// Merge merges a duplicate into the survivor: the duplicate's e-mails and external ids move to
// the survivor in the registry, the duplicate answers with merged_into from then on, and
// "marketing.customer.merged" tells every service to re-point its records, all in one atomic
// write. Merging again returns the survivor unchanged.
func (c *Customers) Merge(ctx context.Context, tenant, survivorID, mergedID string) (*Customer, error) {
	if survivorID == mergedID {
		return nil, ErrMergeSelf
	}
	for range captureAttempts {
		survivor, err := c.store.GetCustomer(ctx, tenant, survivorID)
		if errors.Is(err, ErrCustomerNotFound) {
			return nil, customerref.NotFound("customer_id") // say which of the two is unknown
		}
		if err != nil {
			return nil, err
		}
		merged, err := c.store.GetCustomer(ctx, tenant, mergedID)
		if errors.Is(err, ErrCustomerNotFound) {
			return nil, customerref.NotFound("merged_customer_id")
		}
		if err != nil {
			return nil, err
		}
		switch {
		case merged.GetMergedInto() == survivorID:
			return survivor, nil // merged before
		case survivor.GetMergedInto() != "" || merged.GetMergedInto() != "":
			return nil, ErrMergeMerged.With("merged_into", cmpOr(survivor.GetMergedInto(), merged.GetMergedInto()))
		}
		now := c.now().UTC()
		ts := timestamppb.New(now)
		next := proto.CloneOf(survivor)
		for _, e := range merged.GetEmails() {
			next, _ = withKeys(next, IdentityKey{Email: e}, now)
		}
		for _, x := range merged.GetExternalIds() {
			next, _ = withKeys(next, IdentityKey{ExternalID: x}, now)
		}
		next.UpdateTime, next.Etag = ts, etag.Next(survivor.GetEtag())
		gone := &Customer{Id: merged.GetId(), Origin: merged.GetOrigin(), MergedInto: survivorID,
			CreateTime: merged.GetCreateTime(), UpdateTime: ts, Etag: etag.Next(merged.GetEtag())}
		_, ev, err := c.publisher.Envelope(ctx, marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{
			SurvivorCustomerId: survivorID, MergedCustomerId: mergedID}), tenant, survivorID, now)
		if err != nil {
			return nil, err
		}
		err = c.store.MergeCustomers(ctx, tenant, CustomerMerge{Survivor: next, SurvivorPrev: survivor, Merged: gone, MergedPrev: merged, Event: ev})
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
	return nil, ErrIdentityContention
}

// CustomerMerge is one merge's write: both records as read and after.
type CustomerMerge struct {
	Survivor, SurvivorPrev, Merged, MergedPrev *Customer
	Event                                      []byte
}
