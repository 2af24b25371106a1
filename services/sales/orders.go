package sales

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/page"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Errors of the order use cases.
var (
	ErrOrderNotFound = apierr.New(apierr.NotFound, "ORDER_NOT_FOUND", "order not found")
	// ErrNoContact is an order for a customer marketing knows but sales has no contact of (an
	// imported SUSPECT, a lead never converted): who buys, for which account, is sales' to decide
	// (DESIGN §5: conversion creates the account and contact), so the order is refused with what to
	// do, not made up from the registry.
	ErrNoContact = &apierr.Error{
		Kind: apierr.FailedPrecondition, Reason: "CUSTOMER_HAS_NO_CONTACT",
		Message: "the customer has no sales contact: convert their lead (POST /v1/leads/{id}:convert) or create a contact with their e-mail (POST /v1/contacts), then order",
		Fields: []apierr.FieldViolation{{Field: "order.customer_id",
			Description: "no sales contact has this customer id: convert the customer's lead or create their contact first"}},
	}
)

// OrderStore persists orders.
type OrderStore interface {
	// CreateOrder stores a direct order with the change it makes to its customer's value;
	// ErrUnknownAccount when its account does not exist, ErrStale when the value changed since
	// it was read.
	CreateOrder(ctx context.Context, tenant string, o *Order, value *ValueWrite, events ...[]byte) error
	GetOrder(ctx context.Context, tenant, id string) (*Order, error)
	ListOrders(ctx context.Context, tenant string, q Query) (page.Page[*Order], error)
}

// TimeKey is the sort key of a time in the time indexes: Unix milliseconds, zero-padded.
func TimeKey(t time.Time) string { return fmt.Sprintf("%013d", t.UnixMilli()) }

// Orders are the direct order use cases.
type Orders struct {
	Env
	pricer Pricer
}

// NewOrders returns the use cases; pricer reaches the product service.
func NewOrders(env Env, pricer Pricer) *Orders { return &Orders{Env: env, pricer: pricer} }

// Create places a direct order (a repeat purchase) for a known customer, its lines priced by the
// product service now; it is attributed to the campaign the customer's lead came from. The
// customer must be in marketing's registry, unmerged (404 or CUSTOMER_MERGED otherwise), and have
// a contact (ErrNoContact otherwise).
func (o *Orders) Create(ctx context.Context, tenant string, in *Order) (*Order, error) {
	if err := o.Known.Check(ctx, tenant, in.GetCustomerId(), "order.customer_id"); err != nil {
		return nil, err
	}
	contactID, err := o.Store.ContactOfCustomer(ctx, tenant, in.GetCustomerId())
	if errors.Is(err, ErrContactNotFound) {
		return nil, ErrNoContact
	}
	if err != nil {
		return nil, err
	}
	contact, err := o.Store.GetContact(ctx, tenant, contactID)
	if errors.Is(err, ErrContactNotFound) {
		return nil, ErrNoContact
	}
	if err != nil {
		return nil, err
	}
	currency := cmp.Or(in.GetCurrencyCode(), defaultCurrency)
	lines, err := o.pricer.Price(ctx, currency, requestLines(in.GetLines()))
	if err != nil {
		return nil, notSellableField(err, func(line string) string { return "order.lines[" + line + "].product_id" })
	}
	total, err := linesTotal(currency, lines)
	if err == nil {
		// The revenue every service counts from an order (campaign attribution, value history)
		// is kept in int64 nano units: a total beyond them would be refused there, after the
		// order was placed, so it is refused here, before.
		_, err = money.Int64Nanos(total)
	}
	if errors.Is(err, ErrAmountTooLarge) || errors.Is(err, money.ErrOutOfRange) {
		return nil, ErrOrderTotalTooLarge
	}
	if err != nil {
		return nil, err
	}
	now := timestampOf(o.Now())
	order := &Order{
		Id: uuid.Must(uuid.NewV7()).String(), CustomerId: in.GetCustomerId(), AccountId: cmp.Or(in.GetAccountId(), contact.GetAccountId()),
		Lines: lines, Total: total, CampaignId: contact.GetCampaignId(),
		CurrencyCode: currency, CreateTime: now, UpdateTime: now, Etag: etag.First,
	}
	return o.Place(ctx, tenant, order)
}

// Place writes a priced order with the change it makes to its customer's value, in one commit.
// Two orders of one customer at once serialize on the value: the later is recomputed from the
// earlier's result.
func (o *Orders) Place(ctx context.Context, tenant string, order *Order) (*Order, error) {
	event, err := o.event(ctx, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: order}), tenant, order.GetCustomerId())
	if err != nil {
		return nil, err
	}
	for attempt := range valueAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
		value, valueEvent, err := o.valueWrite(ctx, tenant, order)
		if err != nil {
			return nil, err
		}
		err = o.Store.CreateOrder(ctx, tenant, order, value, event, valueEvent)
		if !errors.Is(err, ErrStale) {
			return order, err
		}
	}
	return nil, ErrContention
}

// Get returns one order.
func (o *Orders) Get(ctx context.Context, tenant, id string) (*Order, error) {
	return o.Store.GetOrder(ctx, tenant, id)
}

// List returns a page of orders, newest first.
func (o *Orders) List(ctx context.Context, tenant string, q Query) (page.Page[*Order], error) {
	return o.Store.ListOrders(ctx, tenant, q)
}
