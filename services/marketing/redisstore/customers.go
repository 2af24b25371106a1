package redisstore

import (
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/customerref"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
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

// MergedInto implements marketing.Store: an HSCAN of the tenant's merged customers, so O(merges
// of the tenant); only an erasure asks it.
func (s *Store) MergedInto(ctx context.Context, tenant, survivor string) ([]string, error) {
	into := map[string][]string{} // survivor: the customers merged into it
	iter := s.rdb.HScan(ctx, s.scope(tenant).customersMerged(), 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		merged := iter.Val()
		if !iter.Next(ctx) {
			break
		}
		into[iter.Val()] = append(into[iter.Val()], merged)
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	var out []string
	for next := []string{survivor}; len(next) > 0; {
		id := next[0]
		next = next[1:]
		for _, m := range into[id] {
			if m != survivor && !slices.Contains(out, m) {
				out, next = append(out, m), append(next, m)
			}
		}
	}
	return out, nil
}

// eraseAttempts bounds how often an erase reads the person's records again because one changed.
const eraseAttempts = 5

// customerRecords are the records of a customer whose index entries an erase removes: the
// lifecycle (stage, at risk), the value (rankings), the referral codes (their own keys).
type customerRecords struct {
	lifecycle *marketing.CustomerLifecycle
	value     *salesv1.CustomerValue
	codes     []string
}

// customerRecords reads a customer's records in one round trip.
func (s *Store) customerRecords(ctx context.Context, k leadKeys, customer string) (customerRecords, error) {
	pipe := s.rdb.Pipeline()
	lc, value := commit.Read(ctx, pipe, k.lifecycle(customer)), commit.Read(ctx, pipe, k.customerValue(customer))
	codes := pipe.ZRange(ctx, k.referralsOf(customer), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return customerRecords{}, err
	}
	r := customerRecords{lifecycle: &marketing.CustomerLifecycle{}, value: &salesv1.CustomerValue{}, codes: codes.Val()}
	if found, err := lc.Decode(r.lifecycle); err != nil {
		return customerRecords{}, err
	} else if !found {
		r.lifecycle = nil
	}
	if found, err := value.Decode(r.value); err != nil {
		return customerRecords{}, err
	} else if !found {
		r.value = nil
	}
	return r, nil
}

// eraseRecords adds the removal of everything marketing keeps of an erased customer to w: the
// ladder's facts, the lifecycle with its stage and at-risk entries and its churn schedule, the
// loyalty account, earnings and ledger, the referral codes, the first-order claim, the value and
// its rankings. The lifecycle and the value are checked at the versions read (their index
// entries come from them). Tenant counters keep what they counted: the funnel counters (the
// customer stays counted in the stage they were in) and the value history.
func (s *Store) eraseRecords(w *commit.Write, k leadKeys, tenant, customer string, r customerRecords) {
	w.Delete(k.facts(customer)).Delete(k.factOrders(customer)).Delete(k.factRecurring(customer))
	w.ExpectVersion(k.lifecycle(customer), r.lifecycle.GetEtag()).Delete(k.lifecycle(customer)).
		Move(k.lifecycleIndexes(r.lifecycle), nil).
		HDel(k.churnFrom(), customer).ZRem(s.churnDue(tenant), churnMember(tenant, customer))
	w.Delete(k.loyalty(customer)).Delete(k.loyaltyEarned(customer)).Delete(k.loyaltyLedger(customer))
	for _, code := range r.codes {
		w.Delete(k.referral(code))
	}
	w.Delete(k.referralsOf(customer)).HDel(k.firstOrders(), customer)
	w.ExpectVersion(k.customerValue(customer), r.value.GetEtag()).Delete(k.customerValue(customer)).
		Move(k.valueMembers(r.value), nil)
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
