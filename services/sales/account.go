package sales

import (
	"context"
	"net/mail"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/page"
)

// Errors of the account and contact use cases.
var (
	ErrAccountNotFound    = apierr.New(apierr.NotFound, "ACCOUNT_NOT_FOUND", "account not found")
	ErrAccountEtag        = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the account changed since it was read; read it again and retry")
	ErrAccountContention  = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the account kept changing concurrently; retry")
	ErrAccountHasContacts = apierr.New(apierr.FailedPrecondition, "ACCOUNT_HAS_CONTACTS",
		"the account still has contacts; delete or move them first")
	ErrAccountDomainExists = apierr.New(apierr.AlreadyExists, "ACCOUNT_DOMAIN_EXISTS", "another account has this domain")
	ErrUnknownAccount      = apierr.Invalid("account_id", "no account with this id")

	ErrContactNotFound    = apierr.New(apierr.NotFound, "CONTACT_NOT_FOUND", "contact not found")
	ErrContactEtag        = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the contact changed since it was read; read it again and retry")
	ErrContactContention  = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the contact kept changing concurrently; retry")
	ErrContactEmailExists = apierr.New(apierr.AlreadyExists, "CONTACT_EMAIL_EXISTS", "another contact has this e-mail")
	ErrInvalidEmail       = apierr.Invalid("contact.email", "must be a plain e-mail address such as ada@example.com")
	// ErrEmailOfAnotherCustomer refuses an e-mail edit that would give one person's e-mail to
	// another person's contact; its customer_id names the e-mail's customer.
	ErrEmailOfAnotherCustomer = apierr.New(apierr.AlreadyExists, "CUSTOMER_EMAIL_EXISTS",
		"the e-mail belongs to another customer in marketing's identity registry; if they are one person, merge the two customers")
	// ErrContactCustomerGone is an e-mail edit of a contact whose customer marketing no longer
	// has: erased, and the contact about to go with them.
	ErrContactCustomerGone = apierr.New(apierr.NotFound, "CUSTOMER_NOT_FOUND",
		"the contact's customer is no longer in marketing's identity registry (erased)")
)

// AccountStore persists accounts.
type AccountStore interface {
	// CreateAccount stores a new account; ErrAccountDomainExists (with the owner's id) when its
	// domain is taken.
	CreateAccount(ctx context.Context, tenant string, a *Account, event []byte) error
	// UpdateAccount replaces prev with a; ErrStale when prev is not current.
	UpdateAccount(ctx context.Context, tenant string, a, prev *Account, event []byte) error
	// DeleteAccount removes a (as read); ErrStale when it changed, ErrAccountHasContacts when it
	// has contacts at the moment of the write.
	DeleteAccount(ctx context.Context, tenant string, a *Account, event []byte) error
	GetAccount(ctx context.Context, tenant, id string) (*Account, error)
	ListAccounts(ctx context.Context, tenant string, q Query) (page.Page[*Account], error)
}

// ContactStore persists contacts.
type ContactStore interface {
	// CreateContact stores a new contact; ErrContactEmailExists (with the owner's id) when its
	// e-mail is taken, ErrUnknownAccount when its account does not exist.
	CreateContact(ctx context.Context, tenant string, c *Contact, event []byte) error
	// UpdateContact replaces prev with c; ErrStale when prev is not current.
	UpdateContact(ctx context.Context, tenant string, c, prev *Contact, event []byte) error
	// DeleteContact removes c (as read); ErrStale when it changed. heir, when not nil, is another
	// contact of c's customer (as read, ErrStale when it changed), which the customer's entry
	// (ContactOfCustomer) names from then on; without one the entry goes.
	DeleteContact(ctx context.Context, tenant string, c, heir *Contact, event []byte) error
	GetContact(ctx context.Context, tenant, id string) (*Contact, error)
	ListContacts(ctx context.Context, tenant string, q Query) (page.Page[*Contact], error)
	// ContactOfCustomer returns the id of the contact with a customer id; ErrContactNotFound.
	ContactOfCustomer(ctx context.Context, tenant, customerID string) (string, error)
	// IndexContactsByCustomer puts the tenant's contacts written before the index of contacts by
	// customer existed into it, once per tenant (a no-op, one read, after that); erasures and
	// merges read that index.
	IndexContactsByCustomer(ctx context.Context, tenant string) error
}

// Updatable fields (update_mask paths).
var (
	updatableAccountFields = []string{"display_name", "domain", "owner_id", "industry"}
	updatableContactFields = []string{"email", "given_name", "family_name", "phone", "owner_id", "account_id"}
)

// NormalizeEmail trims and lower-cases an e-mail and checks that it is a plain address.
func NormalizeEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", ErrInvalidEmail
	}
	return email, nil
}

// normalizeDomain trims and lower-cases a domain: "Example.COM " and "example.com" are one.
func normalizeDomain(d string) string { return strings.ToLower(strings.TrimSpace(d)) }
