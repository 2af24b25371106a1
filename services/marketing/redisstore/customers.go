package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.CustomerStore = (*Store)(nil)

// The identity registry: a customer record per customer id, and two hashes mapping normalized
// e-mails and external ids to customer ids (unique: one person is one customer).
func (k leadKeys) customer(id string) string { return k.Key("customer", id) }
func (k leadKeys) customerEmails() string    { return k.Key("customer-emails") }
func (k leadKeys) customerExternal() string  { return k.Key("customer-external-ids") }

// customersMerged maps each merged customer's id to the survivor's, so a write's commit can refuse
// a merged customer, and name the survivor, without decoding the record.
func (k leadKeys) customersMerged() string { return k.Key("customers-merged-into") }

// expectCustomer adds to w the referential check of a write about customer: the registry has them
// and they were not merged. It costs no round trip: it runs inside the write's script.
func (k leadKeys) expectCustomer(w *commit.Write, customer string) {
	w.ExpectExists(k.customer(customer)).ExpectUnset(k.customersMerged(), customer)
}

// customerRefusal is the client's answer when err is expectCustomer's check refusing the write,
// and nil when it is not.
func (k leadKeys) customerRefusal(err error, customer string) error {
	if m, ok := errors.AsType[*commit.MissingError](err); ok && m.Key == k.customer(customer) {
		return customerref.NotFound("customer_id")
	}
	if set, ok := errors.AsType[*commit.FieldSetError](err); ok && set.Key == k.customersMerged() && set.Field == customer {
		return customerref.Merged("customer_id", set.Value)
	}
	return nil
}

// MatchIdentities implements marketing.CustomerStore: one pipelined round trip of HGETs.
func (s *Store) MatchIdentities(ctx context.Context, tenant string, keys []marketing.IdentityKey) ([]marketing.IdentityMatch, error) {
	k := s.scope(tenant)
	type pair struct{ email, external *redis.StringCmd }
	cmds := make([]pair, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range keys {
			if key.Email != "" {
				cmds[i].email = p.HGet(ctx, k.customerEmails(), key.Email)
			}
			if key.ExternalID != "" {
				cmds[i].external = p.HGet(ctx, k.customerExternal(), key.ExternalID)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]marketing.IdentityMatch, len(keys))
	for i, c := range cmds {
		if c.email != nil {
			out[i].ByEmail = c.email.Val()
		}
		if c.external != nil {
			out[i].ByExternalID = c.external.Val()
		}
	}
	return out, nil
}

// GetCustomer implements marketing.CustomerStore: one round trip.
func (s *Store) GetCustomer(ctx context.Context, tenant, id string) (*marketing.Customer, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).customer(id), &marketing.Customer{}, marketing.ErrCustomerNotFound)
}

// PutCustomer implements marketing.CustomerStore.
func (s *Store) PutCustomer(ctx context.Context, tenant string, cw marketing.CustomerWrite) error {
	k := s.scope(tenant)
	w := commit.New()
	k.putCustomer(w, cw)
	err := w.Run(ctx, s.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return &marketing.IdentityTakenError{Owner: conflict.Owner}
	}
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// putCustomer adds a customer write to w: the record, its keys claimed in the registry, its events
// and lifecycle entry.
func (k leadKeys) putCustomer(w *commit.Write, cw marketing.CustomerWrite) {
	c := cw.Customer
	for _, e := range c.GetEmails() {
		w.Unique(k.customerEmails(), e, c.GetId())
	}
	for _, x := range c.GetExternalIds() {
		w.Unique(k.customerExternal(), x, c.GetId())
	}
	if cw.Prev == nil {
		w.Create(k.customer(c.GetId()), c, c.GetEtag())
	} else {
		w.Save(k.customer(c.GetId()), c, cw.Prev.GetEtag(), c.GetEtag())
	}
	appendAll(w, k.Stream(), cw.Events)
	if cw.Lifecycle != nil {
		k.putLifecycle(w, *cw.Lifecycle)
	}
}

// eraseCustomer adds the removal of a customer (as read) and its registry entries to w.
func (k leadKeys) eraseCustomer(w *commit.Write, c *marketing.Customer) {
	w.ExpectVersion(k.customer(c.GetId()), c.GetEtag()).Delete(k.customer(c.GetId()))
	for _, e := range c.GetEmails() {
		w.HDel(k.customerEmails(), e)
	}
	for _, x := range c.GetExternalIds() {
		w.HDel(k.customerExternal(), x)
	}
}

// MergeCustomers implements marketing.CustomerStore: one atomic write.
func (s *Store) MergeCustomers(ctx context.Context, tenant string, m marketing.CustomerMerge) error {
	k := s.scope(tenant)
	w := commit.New().
		Save(k.customer(m.Survivor.GetId()), m.Survivor, m.SurvivorPrev.GetEtag(), m.Survivor.GetEtag()).
		Save(k.customer(m.Merged.GetId()), m.Merged, m.MergedPrev.GetEtag(), m.Merged.GetEtag()).
		HSet(k.customersMerged(), m.Merged.GetId(), m.Survivor.GetId())
	for _, e := range m.MergedPrev.GetEmails() {
		w.HSet(k.customerEmails(), e, m.Survivor.GetId())
	}
	for _, x := range m.MergedPrev.GetExternalIds() {
		w.HSet(k.customerExternal(), x, m.Survivor.GetId())
	}
	// Every process's customer check forgets the merged customer as the merge commits.
	w.Publish(customerref.Ended, customerref.EndedMessage(tenant, m.Merged.GetId()))
	err := w.Append(k.Stream(), m.Event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}
