// Package marketing is stage 1 of the CRM cycle: reach and lead generation. This package holds the
// domain rules and use cases; redisstore persists them and rpc exposes them over gRPC.
package marketing

import (
	"context"
	"errors"
	"net/mail"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Lead is the stored and served form of a lead: the contract's message, so nothing is lost between
// the store (protobuf binary) and the wire.
type Lead = marketingv1.Lead

// Errors of the lead use cases.
var (
	ErrLeadNotFound = apierr.New(apierr.NotFound, "LEAD_NOT_FOUND", "lead not found")
	ErrContention   = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the lead kept changing concurrently; retry")
	ErrInvalidEmail = apierr.Invalid("lead.email", "must be a plain e-mail address such as ada@example.com")
)

// ErrStale means the lead changed between read and write.
var ErrStale = errors.New("marketing: lead changed since it was read")

// ErrPersonStale means the customer of a LeadWrite.Person changed between read and write, or the
// known customer of a create (LeadWrite.KnownCustomer) was erased or merged.
var ErrPersonStale = errors.New("marketing: the lead's customer changed since it was read")

// EmailTakenError means another lead already has the e-mail.
type EmailTakenError struct {
	LeadID string
	// Lead is that lead as the refused write found it, when the store read it in the same call
	// (nil otherwise: read it).
	Lead *Lead
}

func (e *EmailTakenError) Error() string { return "marketing: e-mail belongs to lead " + e.LeadID }

// Store persists leads with their indexes and outbox events, each write in one atomic call.
type Store interface {
	// CreateLead stores the new lead w.Lead; *EmailTakenError if the e-mail is taken (with the
	// lead that has it, read in the same round trip), ErrUnknownCampaign if w.Campaign does not
	// exist.
	CreateLead(ctx context.Context, tenant string, w LeadWrite) error
	// UpdateLead replaces w.Prev with w.Lead; ErrStale if w.Prev is not current,
	// ErrUnknownCampaign if w.Campaign does not exist, w.Person's errors (see LeadWrite).
	UpdateLead(ctx context.Context, tenant string, w LeadWrite) error
	// ErasePerson commits e: every lead of the person (each as read: its etag is checked) with its
	// index entries, their identity and their merged customers' with every record marketing keeps
	// of them (lifecycle, ladder facts, loyalty, referral codes, value), and e.Events; ErrStale if a
	// lead or an identity changed, or a lead of e.FreeEmails appeared.
	ErasePerson(ctx context.Context, tenant string, e Erasure) error
	// MergedInto returns the customers merged into survivor, directly or through another merged
	// customer.
	MergedInto(ctx context.Context, tenant, survivor string) ([]string, error)
	// GetCustomer returns a customer's identity or ErrCustomerNotFound.
	GetCustomer(ctx context.Context, tenant, id string) (*Customer, error)
	// GetLead returns a lead or ErrLeadNotFound.
	GetLead(ctx context.Context, tenant, id string) (*Lead, error)
	// GetLeads reads leads by id in one round trip; nil where there is none.
	GetLeads(ctx context.Context, tenant string, ids []string) ([]*Lead, error)
	// ReferrerOf returns the customer a referral code belongs to; ErrUnknownReferralCode if none.
	ReferrerOf(ctx context.Context, tenant, code string) (string, error)
	// ListLeads returns a page of up to q.Limit leads matching q.Filter in q's order; its Next is
	// the cursor (After) of the next page, empty when there is none.
	ListLeads(ctx context.Context, tenant string, q LeadQuery) (page.Page[*Lead], error)
	// ScoringRules returns the tenant's scoring rules; nil when it never set any.
	ScoringRules(ctx context.Context, tenant string) (*ScoringRules, error)
	// LeadIDsByEmail returns the lead of each normalized e-mail ("" for none), in one round trip.
	LeadIDsByEmail(ctx context.Context, tenant string, emails []string) ([]string, error)
	// MatchIdentities returns who each key belongs to in the registry, in one round trip.
	MatchIdentities(ctx context.Context, tenant string, keys []IdentityKey) ([]IdentityMatch, error)
	// ImportLeads commits writes (creates, and updates where Prev is set) in one round trip, each
	// atomic, and returns each one's error as CreateLead or UpdateLead would.
	ImportLeads(ctx context.Context, tenant string, writes []LeadWrite) ([]error, error)
}

// LeadWrite is one change of a lead, committed atomically with its indexes, counters and events.
// A lead that becomes MARKETING_QUALIFIED counts as an MQL of its source campaign in the same write.
type LeadWrite struct {
	Lead *Lead
	// Prev is the lead as read, for an update; its etag must still be current.
	Prev   *Lead
	Events [][]byte
	// Campaign, when set, must exist: the capture or engagement came through it.
	Campaign string
	// Touch counts the write as a capture through Campaign: a touch, and a lead when it is new.
	Touch bool
	// Customer, when set, is the person's new identity, registered with the lead (a capture of a
	// person the registry did not know); *IdentityTakenError if the registry knows the e-mail.
	Customer *Customer
	// Lifecycle, when set, is the customer's lifecycle change committed with the lead.
	Lifecycle *LifecycleWrite
	// Person, when set on an update, is the change of the lead's customer in the registry committed
	// with the lead (an e-mail edit claims the new e-mail for them): *IdentityTakenError if another
	// customer has it, ErrPersonStale if Person.Prev is no longer current.
	Person *CustomerWrite
	// ScoredWith, when set, are the scoring rules the lead was scored with: the write fails with
	// ErrRulesChanged, writing nothing, if the tenant's rules are no longer those (Capture keeps the
	// rules between calls and checks them this way instead of reading them on every call).
	ScoredWith *ScoringRules
	// KnownCustomer, on a create without Customer, makes the write check that Lead.CustomerId is
	// still in the registry and not merged: ErrPersonStale if an erasure or a merge committed since
	// the registry was read, so no lead is created for an erased or merged customer.
	KnownCustomer bool
	// Applied, when set, is the causing event's effect: a write whose effect was applied before
	// changes nothing and fails with ErrAlreadyApplied (the redelivery guard, events.Guard).
	Applied events.Effect
}

// Erasure is the erasure of a person (the right to be forgotten), committed atomically.
type Erasure struct {
	// Leads are the person's leads as read.
	Leads []*Lead
	// Person is their identity as read; nil when the registry has none.
	Person *Customer
	// Merged are the customers merged into Person that the erasure found, as read (the merge's
	// reaction may not have moved their records yet): they go too.
	Merged []*Customer
	// FreeEmails are the person's e-mails no lead had when read: the erasure fails with ErrStale
	// if one has a lead since (a capture of the person committed meanwhile), and is read again.
	FreeEmails []string
	Events     [][]byte
}

// LeadQuery is one page of a lead list.
type LeadQuery struct {
	Filter LeadFilter
	// ByScore lists highest score first (then newest); otherwise newest first.
	ByScore bool
	page.Request
}

// NormalizeEmail trims and lower-cases an e-mail and checks that it is a plain address.
func NormalizeEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", ErrInvalidEmail
	}
	return email, nil
}
