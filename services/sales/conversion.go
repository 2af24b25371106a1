package sales

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Errors of lead conversion.
var (
	ErrLeadNotFound         = apierr.New(apierr.NotFound, "LEAD_NOT_FOUND", "lead not found")
	ErrLeadAlreadyConverted = apierr.New(apierr.FailedPrecondition, "LEAD_ALREADY_CONVERTED", "the lead is already converted")
	ErrLeadDisqualified     = apierr.New(apierr.FailedPrecondition, "LEAD_DISQUALIFIED", "a disqualified lead cannot be converted")
	ErrMarketingUnavailable = apierr.New(apierr.Unavailable, "MARKETING_UNAVAILABLE", "cannot read the lead from marketing right now; retry")
)

// LeadReader reads marketing's leads: ErrLeadNotFound, or ErrMarketingUnavailable when
// marketing cannot answer.
type LeadReader interface {
	GetLead(ctx context.Context, id string) (*marketingv1.Lead, error)
}

// Conversion is everything a lead conversion writes at once.
type Conversion struct {
	LeadID string
	// NewAccount is the account created from the lead's company; nil when attaching to one or
	// for a consumer.
	NewAccount *Account
	Contact    *Contact
	// ContactExists says Contact is the person's existing contact, which the conversion attaches
	// to (it must still exist) instead of creating.
	ContactExists bool
	// ContactPrev, when set, is the existing contact as read: the conversion changes it into
	// Contact (it joins NewAccount), at that version.
	ContactPrev *Contact
	// Opportunity opens a deal, when asked for.
	Opportunity *OpportunityWrite
}

// Conversions is the lead conversion use case.
type Conversions struct {
	Env
	accounts      *Accounts
	opportunities *Opportunities
	leads         LeadReader
}

// NewConversions returns the use case; leads reaches marketing.
func NewConversions(env Env, leads LeadReader, opportunities *Opportunities) *Conversions {
	return &Conversions{Env: env, accounts: NewAccounts(env), opportunities: opportunities, leads: leads}
}

// ConvertRequest is what a conversion asks for.
type ConvertRequest struct {
	LeadID, AccountID, OwnerID string
	// Opportunity to open, if not nil.
	Opportunity *Opportunity
}

// Convert turns a lead into an account (or attaches to AccountID), a contact with the lead's
// customer id and, when asked, an opportunity, all in one write with the claim on the lead, so a
// lead converts once even under concurrent requests. Nothing is written when marketing cannot
// answer. A write that finds what it read changed (the pipeline, the person's contact) reads again.
func (c *Conversions) Convert(ctx context.Context, tenant string, req ConvertRequest) (*Account, *Contact, *Opportunity, error) {
	for range writeAttempts {
		account, contact, opp, err := c.convertOnce(ctx, tenant, req)
		if !errors.Is(err, ErrStale) {
			return account, contact, opp, err
		}
	}
	return nil, nil, nil, ErrContention
}

func (c *Conversions) convertOnce(ctx context.Context, tenant string, req ConvertRequest) (*Account, *Contact, *Opportunity, error) {
	lead, err := c.leads.GetLead(ctx, req.LeadID)
	if err != nil {
		return nil, nil, nil, err
	}
	switch lead.GetStatus() {
	case marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED:
		return nil, nil, nil, ErrLeadDisqualified
	case marketingv1.LeadStatus_LEAD_STATUS_CONVERTED:
		return nil, nil, nil, ErrLeadAlreadyConverted
	}
	var account *Account
	conv := &Conversion{LeadID: lead.GetId()}
	switch {
	case req.AccountID != "":
		if account, err = c.Store.GetAccount(ctx, tenant, req.AccountID); errors.Is(err, ErrAccountNotFound) {
			return nil, nil, nil, ErrUnknownAccount
		} else if err != nil {
			return nil, nil, nil, err
		}
	case lead.GetCompany() != "":
		account = c.accounts.newAccount(&Account{DisplayName: lead.GetCompany(), OwnerId: req.OwnerID})
		conv.NewAccount = account
	}
	contact, exists, err := c.contactFor(ctx, tenant, lead, account, req.OwnerID)
	if err != nil {
		return nil, nil, nil, err
	}
	conv.Contact, conv.ContactExists = contact, exists
	switch {
	case !exists || req.AccountID != "":
	case contact.GetAccountId() != "":
		// The person is a contact already: the conversion attaches to them, and to their account.
		conv.NewAccount = nil
		if account, err = c.Store.GetAccount(ctx, tenant, contact.GetAccountId()); errors.Is(err, ErrAccountNotFound) {
			account = nil
		} else if err != nil {
			return nil, nil, nil, err
		}
	case conv.NewAccount != nil:
		// The person's contact has no account: the lead's company makes one, and the contact
		// joins it in the same write (at the version read).
		joined := proto.CloneOf(contact)
		joined.AccountId, joined.UpdateTime, joined.Etag = conv.NewAccount.GetId(), timestamppb.New(c.Now().UTC()), etag.Next(contact.GetEtag())
		conv.Contact, conv.ContactPrev, contact = joined, contact, joined
	}

	var opp *Opportunity
	if req.Opportunity != nil {
		in := proto.CloneOf(req.Opportunity)
		in.AccountId, in.ContactId = "", contact.GetId()
		if in.OwnerId == "" {
			in.OwnerId = req.OwnerID
		}
		pipeline, err := c.opportunities.pipeline(ctx, tenant, in.GetPipelineId())
		if err != nil {
			return nil, nil, nil, err
		}
		if opp, err = c.opportunities.open(in, pipeline, contact); err != nil {
			return nil, nil, nil, err
		}
		if conv.Opportunity, err = c.opportunities.creation(ctx, tenant, opp, pipeline); err != nil {
			return nil, nil, nil, err
		}
	}
	events, err := c.events(ctx, tenant, conv, lead)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := c.Store.Convert(ctx, tenant, conv, events); err != nil {
		return nil, nil, nil, err
	}
	return account, contact, opp, nil
}

// contactFor is the contact a lead converts to: the person's contact when sales has one (created
// directly, before or after the capture: the registry gave both the same customer id), else a new
// contact with the lead's customer id.
func (c *Conversions) contactFor(ctx context.Context, tenant string, lead *marketingv1.Lead, account *Account, owner string) (contact *Contact, exists bool, err error) {
	id, err := c.Store.ContactOfCustomer(ctx, tenant, lead.GetCustomerId())
	switch {
	case err == nil:
		contact, err = c.Store.GetContact(ctx, tenant, id)
		return contact, true, err
	case !errors.Is(err, ErrContactNotFound):
		return nil, false, err
	}
	if contact, err = c.accounts.newContact(&Contact{
		AccountId: account.GetId(), Email: lead.GetEmail(), GivenName: lead.GetGivenName(),
		FamilyName: lead.GetFamilyName(), OwnerId: owner,
	}, lead.GetCustomerId()); err != nil {
		return nil, false, err
	}
	contact.LeadId, contact.CampaignId = lead.GetId(), lead.GetCampaignId()
	return contact, false, nil
}

// events are the conversion's events: what it created, then sales.lead.converted.
func (c *Conversions) events(ctx context.Context, tenant string, conv *Conversion, lead *marketingv1.Lead) ([][]byte, error) {
	var out [][]byte
	add := func(body eventv1.Body) error {
		data, err := c.event(ctx, body, tenant, lead.GetCustomerId())
		out = append(out, data)
		return err
	}
	if conv.NewAccount != nil {
		if err := add(salesv1.EventAccountCreated.Of(&salesv1.AccountChanged{AccountId: conv.NewAccount.GetId()})); err != nil {
			return nil, err
		}
	}
	contact := conv.Contact
	changed := &salesv1.ContactChanged{ContactId: contact.GetId(), CustomerId: contact.GetCustomerId(), AccountId: contact.GetAccountId()}
	switch {
	case !conv.ContactExists:
		if err := add(salesv1.EventContactCreated.Of(changed)); err != nil {
			return nil, err
		}
	case conv.ContactPrev != nil:
		if err := add(salesv1.EventContactUpdated.Of(changed)); err != nil {
			return nil, err
		}
	}
	converted := &salesv1.LeadConverted{
		LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), AccountId: contact.GetAccountId(),
		ContactId: contact.GetId(), CampaignId: lead.GetCampaignId(),
	}
	if conv.Opportunity != nil {
		out = append(out, conv.Opportunity.Events...)
		converted.OpportunityId = conv.Opportunity.Opp.GetId()
	}
	if err := add(salesv1.EventLeadConverted.Of(converted)); err != nil {
		return nil, err
	}
	return out, nil
}
