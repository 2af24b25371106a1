package sales

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/protoupdate"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// AccountColumns are the documented columns of an account import: displayName and domain are
// required, the domain (trimmed, lower-cased) is the account's natural key. Other columns are
// ignored, so a file the accounts export wrote imports as it is.
var AccountColumns = []string{"displayName", "domain", "ownerId", "industry"}

// ContactColumns are the documented columns of a contact import: email is required and, with the
// optional externalId (the person's id in the integrating system), names the person; accountId
// must be an existing account's id.
var ContactColumns = []string{"email", "givenName", "familyName", "phone", "ownerId", "accountId", "externalId"}

// AccountWrite is an imported account's creation (Prev nil) or change, with its event.
type AccountWrite struct {
	Account, Prev *Account
	Event         []byte
}

// ContactWrite is an imported contact's creation (Prev nil) or change, with its event.
type ContactWrite struct {
	Contact, Prev *Contact
	Event         []byte
}

// Person is someone a contact import resolves through marketing's registry.
type Person struct{ Email, ExternalID string }

// Resolved is a person's customer id, or why the registry refused the person (Err).
type Resolved struct {
	CustomerID string
	Err        *apierr.Error
}

// ImportStore is what imports need of the store: batched reads of the natural keys and batched
// writes (many per round trip, each atomic with its indexes and event).
type ImportStore interface {
	// AccountIDsByDomain returns the account of each normalized domain ("" for none).
	AccountIDsByDomain(ctx context.Context, tenant string, domains []string) ([]string, error)
	// ContactIDsByEmail returns the contact of each normalized e-mail ("" for none).
	ContactIDsByEmail(ctx context.Context, tenant string, emails []string) ([]string, error)
	// ContactIDsByCustomer returns the contact of each customer ("" for none).
	ContactIDsByCustomer(ctx context.Context, tenant string, customers []string) ([]string, error)
	// ImportAccounts and ImportContacts commit writes, one error per write as the single
	// writes return them (ErrStale, the unique conflicts, ErrUnknownAccount); the error is the
	// round trip's.
	ImportAccounts(ctx context.Context, tenant string, writes []*AccountWrite) ([]error, error)
	ImportContacts(ctx context.Context, tenant string, writes []*ContactWrite) ([]error, error)
}

// lostRace reports whether an imported write failed because a concurrent write came first.
func lostRace(err error) bool {
	return errors.Is(err, ErrStale) || errors.Is(err, ErrAccountDomainExists) || errors.Is(err, ErrContactEmailExists)
}

// AccountImport is the account kind of an import: an upsert on the normalized domain.
func (a *Accounts) AccountImport() importer.Kind[*Account] {
	return importer.Kind[*Account]{
		Name: "accounts", Columns: AccountColumns, Required: []string{"displayName", "domain"},
		Parse:   a.parseAccount,
		Key:     func(in *Account) string { return in.GetDomain() },
		KeyName: "domain",
		Apply:   a.ImportAccounts,
	}
}

func (a *Accounts) parseAccount(row importer.Row) (*Account, *typev1.ImportRowError) {
	in := &Account{DisplayName: row.Value("displayName"), Domain: normalizeDomain(row.Value("domain")),
		OwnerId: row.Value("ownerId"), Industry: row.Value("industry")}
	if in.GetDomain() == "" || strings.ContainsAny(in.GetDomain(), " /@") || !strings.Contains(in.GetDomain(), ".") {
		return nil, importer.RowError("domain", importer.ReasonInvalidValue, "must be a domain such as example.com")
	}
	if err := protoupdate.Validate(a.Validator, "", in); err != nil {
		return nil, rowError(err)
	}
	return in, nil
}

// rowError is a validation error as a row error.
func rowError(err error) *typev1.ImportRowError {
	if e, ok := apierr.As(err); ok {
		return importer.RowErrorOf(importer.ReasonInvalidValue, e)
	}
	return importer.RowError("", importer.ReasonInvalidValue, err.Error())
}

// ImportAccounts upserts a batch of accounts with distinct domains: a new domain makes an account,
// a known one gets the row's non-empty fields; an account that holds them all already is skipped,
// writing nothing. Each round reads the batch in two round trips and writes it in one.
func (a *Accounts) ImportAccounts(ctx context.Context, tenant string, rows []*Account) ([]importer.Outcome, error) {
	return importer.Upsert(ctx, len(rows), importer.Rounds[AccountWrite]{
		KeyField: "domain",
		Lost:     lostRace,
		Commit: func(ctx context.Context, writes []*AccountWrite) ([]error, error) {
			return a.Store.ImportAccounts(ctx, tenant, writes)
		},
		Plan: func(ctx context.Context, todo []int) ([]importer.Step[AccountWrite], error) {
			domains := make([]string, len(todo))
			for j, i := range todo {
				domains[j] = rows[i].GetDomain()
			}
			ids, err := a.Store.AccountIDsByDomain(ctx, tenant, domains)
			if err != nil {
				return nil, err
			}
			existing, err := readMany(ctx, a.Store, tenant, "account", ids, func() *Account { return &Account{} })
			if err != nil {
				return nil, err
			}
			steps := make([]importer.Step[AccountWrite], len(todo))
			for j, i := range todo {
				in, prev := rows[i], existing[j]
				s := importer.Step[AccountWrite]{Row: i, Key: in.GetDomain()}
				var next *Account
				event := salesv1.EventAccountCreated
				if prev == nil {
					next, s.Planned = a.newAccount(in), importer.Created
				} else {
					next = proto.CloneOf(prev)
					setNonEmpty(&next.DisplayName, in.GetDisplayName())
					setNonEmpty(&next.OwnerId, in.GetOwnerId())
					setNonEmpty(&next.Industry, in.GetIndustry())
					if proto.Equal(next, prev) {
						s.Outcome, s.ID, s.Etag, s.Updated = importer.Outcome{Result: importer.Skipped}, prev.GetId(), prev.GetEtag(), prev.GetUpdateTime().AsTime()
						steps[j] = s
						continue
					}
					next.UpdateTime, next.Etag = timestamppb.New(a.Now().UTC()), etag.Next(prev.GetEtag())
					s.Planned, event = importer.Updated, salesv1.EventAccountUpdated
				}
				ev, err := a.event(ctx, event.Of(&salesv1.AccountChanged{AccountId: next.GetId()}), tenant, "")
				if err != nil {
					return nil, err
				}
				s.Write, s.ID, s.Etag, s.Updated = &AccountWrite{Account: next, Prev: prev, Event: ev}, next.GetId(), next.GetEtag(), next.GetUpdateTime().AsTime()
				steps[j] = s
			}
			return steps, nil
		},
	})
}

// ContactImport is the contact kind of an import: an upsert on the normalized e-mail, the person
// resolved through marketing's registry by e-mail and external id, with the caller's key (so it
// needs marketing.read).
func (a *Accounts) ContactImport() importer.Kind[ImportedContact] {
	return importer.Kind[ImportedContact]{
		Name: "contacts", Columns: ContactColumns, Required: []string{"email"},
		Parse:   a.parseContact,
		Key:     func(in ImportedContact) string { return in.Contact.GetEmail() },
		KeyName: "e-mail",
		Apply:   a.ImportContacts,
		Needs:   []string{"marketing.read"},
	}
}

// ImportedContact is one parsed row of a contact import.
type ImportedContact struct {
	Contact    *Contact // email, names, phone, owner, account
	ExternalID string
}

func (a *Accounts) parseContact(row importer.Row) (ImportedContact, *typev1.ImportRowError) {
	email, err := NormalizeEmail(row.Value("email"))
	if err != nil {
		return ImportedContact{}, importer.RowError("email", importer.ReasonInvalidEmail, "must be a plain e-mail address such as ada@example.com")
	}
	in := &Contact{Email: email, GivenName: row.Value("givenName"), FamilyName: row.Value("familyName"),
		Phone: row.Value("phone"), OwnerId: row.Value("ownerId"), AccountId: row.Value("accountId")}
	if err := protoupdate.Validate(a.Validator, "", in); err != nil {
		return ImportedContact{}, rowError(err)
	}
	externalID := row.Value("externalId")
	if len(externalID) > 128 {
		return ImportedContact{}, importer.RowError("externalId", importer.ReasonInvalidValue, "must be at most 128 characters")
	}
	return ImportedContact{Contact: in, ExternalID: externalID}, nil
}

// ImportContacts upserts a batch of contacts with distinct e-mails. Each round resolves the
// batch's people in one ResolveCustomers call (registering the unknown ones with origin IMPORT,
// so they enter the lifecycle as SUSPECTs, and adding an external id a known person lacks); a
// contact is then found by its e-mail, else by its person (an external id known under another
// e-mail: the contact takes the row's e-mail). A new person makes a contact; a known contact gets
// the row's non-empty fields; one that holds them all is skipped, writing nothing.
func (a *Accounts) ImportContacts(ctx context.Context, tenant string, rows []ImportedContact) ([]importer.Outcome, error) {
	return importer.Upsert(ctx, len(rows), importer.Rounds[ContactWrite]{
		KeyField: "email",
		Lost:     lostRace,
		Commit: func(ctx context.Context, writes []*ContactWrite) ([]error, error) {
			return a.Store.ImportContacts(ctx, tenant, writes)
		},
		Plan: func(ctx context.Context, todo []int) ([]importer.Step[ContactWrite], error) {
			return a.planContacts(ctx, tenant, rows, todo)
		},
	})
}

func (a *Accounts) planContacts(ctx context.Context, tenant string, rows []ImportedContact, todo []int) ([]importer.Step[ContactWrite], error) {
	// A row naming an account that does not exist fails before its person is registered (the
	// write checks the account again).
	accounts := make([]string, len(todo))
	for j, i := range todo {
		accounts[j] = rows[i].Contact.GetAccountId()
	}
	found, err := readMany(ctx, a.Store, tenant, "account", accounts, func() *Account { return &Account{} })
	if err != nil {
		return nil, err
	}
	steps := make([]importer.Step[ContactWrite], 0, len(todo))
	known := make([]int, 0, len(todo))
	for j, i := range todo {
		if accounts[j] != "" && found[j] == nil {
			steps = append(steps, importer.Step[ContactWrite]{Row: i, Outcome: importer.Outcome{Err: rowError(ErrUnknownAccount)}})
			continue
		}
		known = append(known, i)
	}
	if len(known) == 0 {
		return steps, nil
	}
	todo = known
	people := make([]Person, len(todo))
	emails := make([]string, len(todo))
	for j, i := range todo {
		people[j] = Person{Email: rows[i].Contact.GetEmail(), ExternalID: rows[i].ExternalID}
		emails[j] = people[j].Email
	}
	resolved, err := a.Registry.ResolveImported(ctx, people)
	if err != nil {
		return nil, err
	}
	ids, err := a.Store.ContactIDsByEmail(ctx, tenant, emails)
	if err != nil {
		return nil, err
	}
	customers := make([]string, len(todo))
	for j := range todo {
		if ids[j] == "" {
			customers[j] = resolved[j].CustomerID
		}
	}
	byCustomer, err := a.Store.ContactIDsByCustomer(ctx, tenant, customers)
	if err != nil {
		return nil, err
	}
	for j := range todo {
		if ids[j] == "" {
			ids[j] = byCustomer[j]
		}
	}
	existing, err := readMany(ctx, a.Store, tenant, "contact", ids, func() *Contact { return &Contact{} })
	if err != nil {
		return nil, err
	}
	for j, i := range todo {
		in, prev := rows[i].Contact, existing[j]
		s := importer.Step[ContactWrite]{Row: i, Key: in.GetEmail()}
		if r := resolved[j]; r.Err != nil {
			field := ""
			if r.Err.Reason == "CUSTOMER_IDENTITY_CONFLICT" {
				field = "externalId"
			}
			s.Outcome = importer.Outcome{Err: importer.RowError(field, importer.ReasonConflict, r.Err.Message)}
			steps = append(steps, s)
			continue
		}
		var next *Contact
		event := salesv1.EventContactCreated
		if prev == nil {
			next, _ = a.newContact(in, resolved[j].CustomerID)
			s.Planned = importer.Created
		} else {
			next = proto.CloneOf(prev)
			next.Email = in.GetEmail()
			setNonEmpty(&next.GivenName, in.GetGivenName())
			setNonEmpty(&next.FamilyName, in.GetFamilyName())
			setNonEmpty(&next.Phone, in.GetPhone())
			setNonEmpty(&next.OwnerId, in.GetOwnerId())
			setNonEmpty(&next.AccountId, in.GetAccountId())
			if proto.Equal(next, prev) {
				s.Outcome, s.ID, s.Etag, s.Updated = importer.Outcome{Result: importer.Skipped}, prev.GetId(), prev.GetEtag(), prev.GetUpdateTime().AsTime()
				steps = append(steps, s)
				continue
			}
			next.UpdateTime, next.Etag = timestamppb.New(a.Now().UTC()), etag.Next(prev.GetEtag())
			s.Planned, event = importer.Updated, salesv1.EventContactUpdated
		}
		ev, err := a.contactEvent(ctx, event, tenant, next)
		if err != nil {
			return nil, err
		}
		s.Write, s.ID, s.Etag, s.Updated = &ContactWrite{Contact: next, Prev: prev, Event: ev}, next.GetId(), next.GetEtag(), next.GetUpdateTime().AsTime()
		steps = append(steps, s)
	}
	return steps, nil
}

// setNonEmpty sets *dst to src unless src is empty: an import's empty cell keeps the value.
func setNonEmpty(dst *string, src string) {
	if src != "" {
		*dst = src
	}
}

// readMany reads the records of kind with ids in one round trip: nil where the id is "" or
// names no record.
func readMany[T proto.Message](ctx context.Context, store Store, tenant, kind string, ids []string, newMsg func() T) ([]T, error) {
	out := make([]T, len(ids))
	var at []int
	var want []string
	var msgs []proto.Message
	for i, id := range ids {
		if _, err := uuid.Parse(id); err == nil {
			out[i] = newMsg()
			at, want, msgs = append(at, i), append(want, id), append(msgs, out[i])
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	found, err := store.ReadMany(ctx, tenant, kind, want, msgs)
	if err != nil {
		return nil, err
	}
	var zero T
	for j, i := range at {
		if !found[j] {
			out[i] = zero
		}
	}
	return out, nil
}
