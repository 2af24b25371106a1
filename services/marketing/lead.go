// Package marketing is stage 1 of the CRM cycle: reach and lead generation. This package holds the
// domain rules and use cases; redisstore persists them and rpc exposes them over gRPC.
package marketing

import (
	"context"
	"errors"
	"net/mail"
	"regexp"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Lead is the stored and served form of a lead: the contract's message, so nothing is lost between
// the store (protobuf binary) and the wire.
type Lead = marketingv1.Lead

// Errors of the lead use cases.
var (
	ErrLeadNotFound  = apierr.New(apierr.NotFound, "LEAD_NOT_FOUND", "lead not found")
	ErrContention    = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the lead kept changing concurrently; retry")
	ErrInvalidEmail  = apierr.Invalid("lead.email", "must be a plain e-mail address such as ada@example.com")
	ErrInvalidFilter = apierr.Invalid("filter",
		`supported filters: status = LEAD_STATUS_<X>, channel = CHANNEL_<X>`)
)

// ErrStale means the lead changed between read and write.
var ErrStale = errors.New("marketing: lead changed since it was read")

// EmailTakenError means another lead already has the e-mail.
type EmailTakenError struct{ LeadID string }

func (e *EmailTakenError) Error() string { return "marketing: e-mail belongs to lead " + e.LeadID }

// Store persists leads with their indexes and outbox events, each write in one atomic call.
type Store interface {
	// CreateLead stores the new lead w.Lead; *EmailTakenError if the e-mail is taken,
	// ErrUnknownCampaign if w.Campaign does not exist.
	CreateLead(ctx context.Context, tenant string, w LeadWrite) error
	// UpdateLead replaces w.Prev with w.Lead; ErrStale if w.Prev is not current,
	// ErrUnknownCampaign if w.Campaign does not exist.
	UpdateLead(ctx context.Context, tenant string, w LeadWrite) error
	// EraseLead removes lead (as read: its etag is checked) and its index entries, and appends
	// event; ErrStale if it changed.
	EraseLead(ctx context.Context, tenant string, lead *Lead, event []byte) error
	// GetLead returns a lead or ErrLeadNotFound.
	GetLead(ctx context.Context, tenant, id string) (*Lead, error)
	// ReferrerOf returns the customer a referral code belongs to; ErrUnknownReferralCode if none.
	ReferrerOf(ctx context.Context, tenant, code string) (string, error)
	// ListLeads returns up to q.Limit leads of an index, newest first, and the cursor (After) of
	// the next page, empty when there is none.
	ListLeads(ctx context.Context, tenant string, q LeadQuery) (leads []*Lead, next string, err error)
	// ScoringRules returns the tenant's scoring rules; nil when it never set any.
	ScoringRules(ctx context.Context, tenant string) (*ScoringRules, error)
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
}

// LeadIndex names a secondary index: all leads (zero value), or leads with one status or channel.
type LeadIndex struct {
	Status  marketingv1.LeadStatus
	Channel typev1.Channel
}

// LeadQuery is one page of a list.
type LeadQuery struct {
	Index LeadIndex
	// After is the id of the last lead of the previous page; empty for the first page.
	After string
	Limit int
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

var filterPattern = regexp.MustCompile(`^\s*(status|channel)\s*=\s*"?([A-Z_]+)"?\s*$`)

// ParseLeadFilter parses the AIP-160 filters the lead indexes support.
func ParseLeadFilter(filter string) (LeadIndex, error) {
	status, channel, err := parseIndexFilter(filter, marketingv1.LeadStatus_value, ErrInvalidFilter)
	return LeadIndex{Status: marketingv1.LeadStatus(status), Channel: channel}, err
}

// parseIndexFilter parses `status = <STATUS>` or `channel = CHANNEL_<X>`, the one-field filters
// an index answers, with statuses the names of the resource's status enum.
func parseIndexFilter(filter string, statuses map[string]int32, invalid error) (int32, typev1.Channel, error) {
	if strings.TrimSpace(filter) == "" {
		return 0, 0, nil
	}
	m := filterPattern.FindStringSubmatch(filter)
	if m == nil {
		return 0, 0, invalid
	}
	values := typev1.Channel_value
	if m[1] == "status" {
		values = statuses
	}
	v, ok := values[m[2]]
	if !ok || v == 0 {
		return 0, 0, invalid
	}
	if m[1] == "status" {
		return v, 0, nil
	}
	return 0, typev1.Channel(v), nil
}
