package sales

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Accounts are the account and contact use cases.
type Accounts struct{ Env }

// NewAccounts returns the use cases.
func NewAccounts(env Env) *Accounts { return &Accounts{env} }

// newAccount builds a new account from client input.
func (a *Accounts) newAccount(in *Account) *Account {
	ts := timestamppb.New(a.Now().UTC())
	return &Account{
		Id: uuid.Must(uuid.NewV7()).String(), DisplayName: in.GetDisplayName(), Domain: normalizeDomain(in.GetDomain()),
		OwnerId: in.GetOwnerId(), Industry: in.GetIndustry(), CreateTime: ts, UpdateTime: ts, Etag: etag.First,
	}
}

// CreateAccount makes an account; a taken domain is ALREADY_EXISTS with the existing account's id.
func (a *Accounts) CreateAccount(ctx context.Context, tenant string, in *Account) (*Account, error) {
	acc := a.newAccount(in)
	event, err := a.event(ctx, salesv1.EventAccountCreated.Of(&salesv1.AccountChanged{AccountId: acc.GetId()}), tenant, "")
	if err != nil {
		return nil, err
	}
	return acc, a.Store.CreateAccount(ctx, tenant, acc, event)
}

// GetAccount returns one account.
func (a *Accounts) GetAccount(ctx context.Context, tenant, id string) (*Account, error) {
	return a.Store.GetAccount(ctx, tenant, id)
}

// ListAccounts returns a page of accounts.
func (a *Accounts) ListAccounts(ctx context.Context, tenant string, q Query) (page.Page[*Account], error) {
	return a.Store.ListAccounts(ctx, tenant, q)
}

// UpdateAccount changes the fields named by mask; a stale etag is ABORTED. Without an etag, an
// account changed meanwhile is read again and changed as it is now.
func (a *Accounts) UpdateAccount(ctx context.Context, tenant string, in *Account, mask *fieldmaskpb.FieldMask) (*Account, error) {
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("account.id", "must be an account id (UUID)")
	}
	fields, err := protoupdate.Fields(in, mask, updatableAccountFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrAccountContention, func() (*Account, error) {
		existing, err := a.Store.GetAccount(ctx, tenant, in.GetId())
		if err != nil {
			return nil, err
		}
		if err := etag.Check(in.GetEtag(), existing.GetEtag(), ErrAccountEtag); err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			if err := fields.Unchanged(existing, in); err != nil {
				return nil, err
			}
			return existing, nil
		}
		merged := proto.CloneOf(existing)
		if err := protoupdate.Apply(merged, in, fields); err != nil {
			return nil, err
		}
		merged.Domain = normalizeDomain(merged.GetDomain())
		if err := protoupdate.Validate(a.Validator, "account", merged); err != nil {
			return nil, err
		}
		merged.UpdateTime = timestamppb.New(a.Now().UTC())
		merged.Etag = etag.Next(existing.GetEtag())
		event, err := a.event(ctx, salesv1.EventAccountUpdated.Of(&salesv1.AccountChanged{AccountId: merged.GetId()}), tenant, "")
		if err != nil {
			return nil, err
		}
		if err := a.Store.UpdateAccount(ctx, tenant, merged, existing, event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}

// DeleteAccount removes an account without contacts; the check holds inside the write, so a
// contact created concurrently either lands first (and the delete is refused) or finds no account.
func (a *Accounts) DeleteAccount(ctx context.Context, tenant, id, ifMatch string) error {
	_, err := etag.Retry(ErrStale, ErrAccountContention, func() (*Account, error) {
		existing, err := a.Store.GetAccount(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrAccountEtag); err != nil {
			return nil, err
		}
		event, err := a.event(ctx, salesv1.EventAccountDeleted.Of(&salesv1.AccountChanged{AccountId: id}), tenant, "")
		if err != nil {
			return nil, err
		}
		return nil, a.Store.DeleteAccount(ctx, tenant, existing, event)
	})
	return err
}

// newContact builds a contact from client input with the given customer id.
func (a *Accounts) newContact(in *Contact, customerID string) (*Contact, error) {
	email, err := NormalizeEmail(in.GetEmail())
	if err != nil {
		return nil, err
	}
	ts := timestamppb.New(a.Now().UTC())
	return &Contact{
		Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customerID, AccountId: in.GetAccountId(), Email: email,
		GivenName: in.GetGivenName(), FamilyName: in.GetFamilyName(), Phone: in.GetPhone(), OwnerId: in.GetOwnerId(),
		CreateTime: ts, UpdateTime: ts, Etag: etag.First,
	}, nil
}

// contactEvent is a contact's change event (ids only): of its own calls and of an erasure.
func (e Env) contactEvent(ctx context.Context, t eventv1.Type[*salesv1.ContactChanged], tenant string, c *Contact) ([]byte, error) {
	return e.event(ctx, t.Of(&salesv1.ContactChanged{ContactId: c.GetId(), CustomerId: c.GetCustomerId(), AccountId: c.GetAccountId()}),
		tenant, c.GetCustomerId())
}

// CreateContact makes a contact with the customer id marketing's registry has for the person
// (a lead captured earlier, an import), or registers them: one person is one customer. A taken
// e-mail is ALREADY_EXISTS with the existing contact's id.
func (a *Accounts) CreateContact(ctx context.Context, tenant string, in *Contact) (*Contact, error) {
	c, err := a.newContact(in, "")
	if err != nil {
		return nil, err
	}
	if c.CustomerId, err = a.Registry.Resolve(ctx, c.GetEmail()); err != nil {
		return nil, err
	}
	event, err := a.contactEvent(ctx, salesv1.EventContactCreated, tenant, c)
	if err != nil {
		return nil, err
	}
	if err := a.Store.CreateContact(ctx, tenant, c, event); err != nil {
		return nil, err // nothing was written: no contact to show
	}
	return c, nil
}

// GetContact returns one contact.
func (a *Accounts) GetContact(ctx context.Context, tenant, id string) (*Contact, error) {
	return a.Store.GetContact(ctx, tenant, id)
}

// ListContacts returns a page of contacts, newest first.
func (a *Accounts) ListContacts(ctx context.Context, tenant string, q Query) (page.Page[*Contact], error) {
	if q.Index.ExternalID != "" {
		return a.contactByExternalID(ctx, tenant, q)
	}
	return a.Store.ListContacts(ctx, tenant, q)
}

// contactByExternalID is the page of the contact of the person marketing's registry knows by the
// external id, if it has the pair's other field.
func (a *Accounts) contactByExternalID(ctx context.Context, tenant string, q Query) (page.Page[*Contact], error) {
	var none page.Page[*Contact]
	if q.After != "" {
		return none, nil
	}
	customer, err := a.Registry.Find(ctx, q.Index.ExternalID)
	if err != nil || customer == "" {
		return none, err
	}
	id, err := a.Store.ContactOfCustomer(ctx, tenant, customer)
	if errors.Is(err, ErrContactNotFound) {
		return none, nil
	}
	if err != nil {
		return none, err
	}
	c, err := a.Store.GetContact(ctx, tenant, id)
	if errors.Is(err, ErrContactNotFound) || (err == nil && !q.Index.Keeps(id, c)) {
		return none, nil
	}
	if err != nil {
		return none, err
	}
	return page.Page[*Contact]{Items: []*Contact{c}}, nil
}

// UpdateContact changes the fields named by mask (without an etag, on the contact as it is now);
// a stale etag is ABORTED, a taken e-mail ALREADY_EXISTS. A new e-mail joins the contact's
// customer in marketing's registry before the contact is written, so the registry never lags the
// contact and one person stays one customer (a capture, a contact or an import with the new e-mail
// finds them); an e-mail of another customer is refused and nothing is written.
func (a *Accounts) UpdateContact(ctx context.Context, tenant string, in *Contact, mask *fieldmaskpb.FieldMask) (*Contact, error) {
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("contact.id", "must be a contact id (UUID)")
	}
	fields, err := protoupdate.Fields(in, mask, updatableContactFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrContactContention, func() (*Contact, error) {
		existing, err := a.Store.GetContact(ctx, tenant, in.GetId())
		if err != nil {
			return nil, err
		}
		if err := etag.Check(in.GetEtag(), existing.GetEtag(), ErrContactEtag); err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			if err := fields.Unchanged(existing, in); err != nil {
				return nil, err
			}
			return existing, nil
		}
		merged := proto.CloneOf(existing)
		if err := protoupdate.Apply(merged, in, fields); err != nil {
			return nil, err
		}
		if merged.Email, err = NormalizeEmail(merged.GetEmail()); err != nil {
			return nil, err
		}
		if err := protoupdate.Validate(a.Validator, "contact", merged); err != nil {
			return nil, err
		}
		// A contact read again after a lost race may have the e-mail already: no second attach.
		if merged.GetEmail() != existing.GetEmail() {
			if merged.CustomerId, err = a.attachEmail(ctx, tenant, merged); err != nil {
				return nil, err
			}
		}
		merged.UpdateTime = timestamppb.New(a.Now().UTC())
		merged.Etag = etag.Next(existing.GetEtag())
		event, err := a.contactEvent(ctx, salesv1.EventContactUpdated, tenant, merged)
		if err != nil {
			return nil, err
		}
		if err := a.Store.UpdateContact(ctx, tenant, merged, existing, event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}

// attachEmail is the registry's half of a contact's e-mail edit, made before the contact's write:
// the new e-mail joins the contact's customer (the survivor, if a merge took them in and its
// reaction has not moved the contact yet). An e-mail another contact has is refused first, as the
// write would be. If the contact's write then fails (a stale etag, the e-mail taken meanwhile) the
// registry keeps the e-mail for the same person: no second customer, nobody else's e-mail, and an
// edit tried again (or the retry of a write that lost a race) finds it there; taking it back could
// strip an e-mail another record of the person now relies on.
func (a *Accounts) attachEmail(ctx context.Context, tenant string, c *Contact) (string, error) {
	holder, err := a.Store.ListContacts(ctx, tenant, Query{Index: Index{Email: c.GetEmail()}, Request: page.Request{Limit: 1}})
	if err != nil {
		return "", err
	}
	if len(holder.Items) > 0 && holder.Items[0].GetId() != c.GetId() {
		return "", ErrContactEmailExists.With("existing_id", holder.Items[0].GetId())
	}
	return a.Registry.Attach(ctx, c.GetCustomerId(), c.GetEmail())
}

// DeleteContact removes a contact; its customer id stays on its orders. When the person has
// another contact (after a merge), the customer's entry passes to it, so orders and conversions
// still find their contact. Without If-Match, a contact changed meanwhile is read again and
// deleted as it is now.
func (a *Accounts) DeleteContact(ctx context.Context, tenant, id, ifMatch string) error {
	// The heir is found through the index of contacts by customer: complete it for older data.
	if err := a.Store.IndexContactsByCustomer(ctx, tenant); err != nil {
		return err
	}
	_, err := etag.Retry(ErrStale, ErrContactContention, func() (*Contact, error) {
		existing, err := a.Store.GetContact(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrContactEtag); err != nil {
			return nil, err
		}
		heir, err := a.heirOf(ctx, tenant, existing)
		if err != nil {
			return nil, err
		}
		event, err := a.contactEvent(ctx, salesv1.EventContactDeleted, tenant, existing)
		if err != nil {
			return nil, err
		}
		return nil, a.Store.DeleteContact(ctx, tenant, existing, heir, event)
	})
	return err
}

// heirOf is another contact of c's customer, or nil.
func (a *Accounts) heirOf(ctx context.Context, tenant string, c *Contact) (*Contact, error) {
	if c.GetCustomerId() == "" {
		return nil, nil
	}
	found, _, err := a.Store.ContactsOfCustomer(ctx, tenant, c.GetCustomerId(), "", 2)
	for _, other := range found {
		if other.GetId() != c.GetId() {
			return other, err
		}
	}
	return nil, err
}
