package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/search"
	"github.com/crmcycle/crm/services/sales"
)

func (k keys) domains() string   { return k.Key("account-domains") }
func (k keys) emails() string    { return k.Key("contact-emails") }
func (k keys) customers() string { return k.Key("customer-contacts") }

// accountMembers are the indexes an account is in.
func (k keys) accountMembers(a *sales.Account) []commit.Entry {
	if a == nil {
		return nil
	}
	return append(k.plain("account", a.GetId(), "owner_id", a.GetOwnerId(), "industry", a.GetIndustry()),
		k.searchable("account", a)...)
}

// searchable are the search index entries (pkg/search) of a record: "ix:<kind>:name".
func (k keys) searchable(kind string, m interface{ GetId() string }) []commit.Entry {
	var out []commit.Entry
	for _, member := range search.Members(m.GetId(), sales.SearchTexts(m.(proto.Message))...) {
		out = append(out, commit.Entry{Index: k.index(kind, "name"), Member: member})
	}
	return out
}

// putAccount adds an account's creation (prev nil) or change to w.
func (k keys) putAccount(w *commit.Write, a, prev *sales.Account) {
	key := k.resource("account", a.GetId())
	w.Save(key, a, prev.GetEtag(), a.GetEtag())
	if a.GetDomain() != prev.GetDomain() {
		if a.GetDomain() != "" {
			w.Unique(k.domains(), a.GetDomain(), a.GetId())
		}
		if prev.GetDomain() != "" {
			w.HDel(k.domains(), prev.GetDomain())
		}
	}
	w.Move(k.accountMembers(prev), k.accountMembers(a))
}

// CreateAccount implements sales.Store.
func (s *Store) CreateAccount(ctx context.Context, tenant string, a *sales.Account, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	k.putAccount(w, a, nil)
	return s.run(ctx, k, w, event)
}

// UpdateAccount implements sales.Store.
func (s *Store) UpdateAccount(ctx context.Context, tenant string, a, prev *sales.Account, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	k.putAccount(w, a, prev)
	return s.run(ctx, k, w, event)
}

// DeleteAccount implements sales.Store: refused while the account's contact index exists.
func (s *Store) DeleteAccount(ctx context.Context, tenant string, a *sales.Account, event []byte) error {
	k := s.scope(tenant)
	key := k.resource("account", a.GetId())
	w := commit.New().ExpectVersion(key, a.GetEtag()).ExpectAbsent(k.index("contact", "account_id", a.GetId())).Delete(key)
	if a.GetDomain() != "" {
		w.HDel(k.domains(), a.GetDomain())
	}
	w.Move(k.accountMembers(a), nil)
	return s.run(ctx, k, w, event)
}

// GetAccount implements sales.Store.
func (s *Store) GetAccount(ctx context.Context, tenant, id string) (*sales.Account, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).resource("account", id), &sales.Account{}, sales.ErrAccountNotFound)
}

// ListAccounts implements sales.Store.
func (s *Store) ListAccounts(ctx context.Context, tenant string, q sales.Query) (page.Page[*sales.Account], error) {
	return list(ctx, s, tenant, "account", q, func() *sales.Account { return &sales.Account{} })
}

// contactMembers are the indexes a contact is in. The customer's (ix:contact:customer_id:<id>)
// holds every contact of a person, for an erasure or a merge to find them all; the
// customer-contacts hash names one, the profile of the customer 360.
func (k keys) contactMembers(c *sales.Contact) []commit.Entry {
	if c == nil {
		return nil
	}
	return append(k.plain("contact", c.GetId(), "account_id", c.GetAccountId(), "owner_id", c.GetOwnerId(), "customer_id", c.GetCustomerId()),
		k.searchable("contact", c)...)
}

// ofCustomer is the index of a customer's records of kind (contacts, deals).
func (k keys) ofCustomer(kind, customer string) string {
	return k.index(kind, "customer_id", customer)
}

// putContact adds a contact's creation (prev nil) or change to w: its account must exist, unless
// the same write creates it (checks run before effects).
func (k keys) putContact(w *commit.Write, c, prev *sales.Contact, accountInWrite bool) {
	w.Save(k.resource("contact", c.GetId()), c, prev.GetEtag(), c.GetEtag())
	if c.GetEmail() != prev.GetEmail() {
		w.Unique(k.emails(), c.GetEmail(), c.GetId())
		if prev.GetEmail() != "" {
			w.HDel(k.emails(), prev.GetEmail())
		}
	}
	if c.GetAccountId() != "" && c.GetAccountId() != prev.GetAccountId() && !accountInWrite {
		w.ExpectExists(k.resource("account", c.GetAccountId()))
	}
	w.HSet(k.customers(), c.GetCustomerId(), c.GetId())
	w.Move(k.contactMembers(prev), k.contactMembers(c))
}

// CreateContact implements sales.Store.
func (s *Store) CreateContact(ctx context.Context, tenant string, c *sales.Contact, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	k.putContact(w, c, nil, false)
	return s.run(ctx, k, w, event)
}

// UpdateContact implements sales.Store.
func (s *Store) UpdateContact(ctx context.Context, tenant string, c, prev *sales.Contact, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	k.putContact(w, c, prev, false)
	return s.run(ctx, k, w, event)
}

// DeleteContact implements sales.Store.
func (s *Store) DeleteContact(ctx context.Context, tenant string, c, heir *sales.Contact, event []byte) error {
	k := s.scope(tenant)
	w := k.deleteContact(commit.New(), c)
	if heir != nil {
		// After the HDel of deleteContact: effects apply in order.
		w.ExpectVersion(k.resource("contact", heir.GetId()), heir.GetEtag()).HSet(k.customers(), c.GetCustomerId(), heir.GetId())
	}
	return s.run(ctx, k, w, event)
}

// deleteContact adds to w the removal of c (as read): the record, its e-mail and customer
// entries, its list and search indexes.
func (k keys) deleteContact(w *commit.Write, c *sales.Contact) *commit.Write {
	key := k.resource("contact", c.GetId())
	w.ExpectVersion(key, c.GetEtag()).Delete(key).HDel(k.emails(), c.GetEmail()).HDel(k.customers(), c.GetCustomerId())
	return w.Move(k.contactMembers(c), nil)
}

// GetContact implements sales.Store.
func (s *Store) GetContact(ctx context.Context, tenant, id string) (*sales.Contact, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).resource("contact", id), &sales.Contact{}, sales.ErrContactNotFound)
}

// ListContacts implements sales.Store.
func (s *Store) ListContacts(ctx context.Context, tenant string, q sales.Query) (page.Page[*sales.Contact], error) {
	return list(ctx, s, tenant, "contact", q, func() *sales.Contact { return &sales.Contact{} })
}

// ContactOfCustomer implements sales.Store.
func (s *Store) ContactOfCustomer(ctx context.Context, tenant, customerID string) (string, error) {
	id, err := s.rdb.HGet(ctx, s.scope(tenant).customers(), customerID).Result()
	if errors.Is(err, redis.Nil) {
		return "", sales.ErrContactNotFound
	}
	return id, err
}

var _ sales.EraseStore = (*Store)(nil)

// EraseContact implements sales.EraseStore: DeleteContact's write under the event's guard.
func (s *Store) EraseContact(ctx context.Context, tenant string, c *sales.Contact, applied events.Effect, event []byte) error {
	k := s.scope(tenant)
	w := k.deleteContact(events.Guard(commit.New(), k.Scope, applied), c)
	err := w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrAlreadyApplied) {
		return sales.ErrAlreadyApplied
	}
	return k.writeErr(err)
}

// ContactsOfCustomer implements sales.EraseStore: a page of the customer's contact index.
func (s *Store) ContactsOfCustomer(ctx context.Context, tenant, customer, cursor string, limit int) ([]*sales.Contact, string, error) {
	k := s.scope(tenant)
	members, err := commit.Members(ctx, s.rdb, commit.Range{Index: k.ofCustomer("contact", customer), After: cursor, Limit: limit})
	if err != nil || len(members.Items) == 0 {
		return nil, "", err
	}
	contacts, err := commit.GetMany(ctx, s.rdb, k.resources("contact", members.Items), func() *sales.Contact { return &sales.Contact{} })
	if err != nil {
		return nil, "", err
	}
	var found []*sales.Contact
	for _, c := range contacts {
		if c != nil && c.GetCustomerId() == customer {
			found = append(found, c)
		}
	}
	return found, members.Next, nil
}

// resources are the record keys of ids of kind.
func (k keys) resources(kind string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = k.resource(kind, id)
	}
	return out
}

// indexesBuilt records, per index added after data existed, that a tenant's older records were
// put in it: field "contact:customer_id" for the index of contacts by customer,
// "opportunity:customer_id" for deals by customer.
func (k keys) indexesBuilt() string { return k.Key("indexes-built") }

// backfillBatch is how many records one write of a backfill indexes, and backfillAttempts how
// often a page is read again when records changed meanwhile.
const (
	backfillBatch    = 500
	backfillAttempts = 8
)

// IndexContactsByCustomer implements sales.ContactStore (see indexByCustomer).
func (s *Store) IndexContactsByCustomer(ctx context.Context, tenant string) error {
	return indexByCustomer(ctx, s, tenant, "contact", func() *sales.Contact { return &sales.Contact{} })
}

// IndexOpportunitiesByCustomer implements sales.MergeStore (see indexByCustomer).
func (s *Store) IndexOpportunitiesByCustomer(ctx context.Context, tenant string) error {
	return indexByCustomer(ctx, s, tenant, "opportunity", func() *sales.Opportunity { return &sales.Opportunity{} })
}

// ownedRecord is a record that names its customer.
type ownedRecord interface {
	proto.Message
	GetId() string
	GetEtag() string
	GetCustomerId() string
}

// indexByCustomer puts a tenant's records of kind written before their index by customer
// (ix:<kind>:customer_id:<id>) existed into it, once per tenant: a page of the tenant's records per
// atomic write, each checked at the version read (a record changed meanwhile was indexed by its own
// write: the page is read again). The last write records that the index is complete.
func indexByCustomer[T ownedRecord](ctx context.Context, s *Store, tenant, kind string, newRecord func() T) error {
	k := s.scope(tenant)
	built := kind + ":customer_id"
	if done, err := s.rdb.HExists(ctx, k.indexesBuilt(), built).Result(); err != nil || done {
		return err
	}
	cursor := ""
	for attempt := 0; ; {
		members, err := commit.Members(ctx, s.rdb, commit.Range{Index: k.index(kind), After: cursor, Limit: backfillBatch})
		if err != nil {
			return err
		}
		keys := k.resources(kind, members.Items)
		records, err := commit.GetMany(ctx, s.rdb, keys, newRecord)
		if err != nil {
			return err
		}
		w := commit.New()
		for i, r := range records {
			if r.GetCustomerId() != "" { // a missing record (nil) names no customer
				w.ExpectVersion(keys[i], r.GetEtag()).ZAdd(k.ofCustomer(kind, r.GetCustomerId()), 0, r.GetId())
			}
		}
		if members.Next == "" {
			w.HSet(k.indexesBuilt(), built, "1")
		}
		switch err := k.writeErr(w.Run(ctx, s.rdb)); {
		case errors.Is(err, sales.ErrStale) && attempt < backfillAttempts:
			attempt++
			continue
		case err != nil:
			return err
		}
		if members.Next == "" {
			return nil
		}
		cursor, attempt = members.Next, 0
	}
}
