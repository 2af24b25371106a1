package sales

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/page"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Customer is the customer 360.
type Customer = salesv1.Customer

// ErrCustomerNotFound means no service knows the customer.
var ErrCustomerNotFound = apierr.New(apierr.NotFound, "CUSTOMER_NOT_FOUND", "no customer with this id")

// ErrNotKnown is what a section source returns when its service knows nothing of the customer:
// the section is then available and empty.
var ErrNotKnown = errors.New("sales: the service does not know the customer")

// MarketingView reads a customer's marketing side.
type MarketingView interface {
	Lifecycle(ctx context.Context, customer string) (*marketingv1.CustomerLifecycle, error)
	Loyalty(ctx context.Context, customer string) (*marketingv1.LoyaltyAccount, error)
}

// ProductView reads a customer's product side.
type ProductView interface {
	Subscriptions(ctx context.Context, customer string, limit int) ([]*productv1.Subscription, error)
	Entitlements(ctx context.Context, customer string, limit int) ([]*productv1.Entitlement, error)
	Adoption(ctx context.Context, customer string) (*productv1.Adoption, error)
}

// SupportView reads a customer's support side.
type SupportView interface {
	Tickets(ctx context.Context, customer string, limit int) ([]*supportv1.Ticket, error)
	// NpsResponses returns the customer's latest NPS answers, newest first.
	NpsResponses(ctx context.Context, customer string, limit int) ([]*supportv1.NpsResponse, error)
}

// TimelineView reads a customer's latest events.
type TimelineView interface {
	Latest(ctx context.Context, customer string, limit int) ([]*integrationv1.TimelineEntry, error)
}

// Limits of the 360's lists: it is a summary, each list links to its own paged route.
const (
	recentOrdersShown  = 20
	openDealsShown     = 20
	subscriptionsShown = 50
	ticketsRead        = 100
	openTicketsShown   = 20
	timelineShown      = 20
	npsShown           = 5
)

// Customers is the customer 360 use case.
type Customers struct {
	env       Env
	marketing MarketingView
	product   ProductView
	support   SupportView
	timeline  TimelineView
	// deadline bounds the whole fan-out: a slow service costs its section, not the call.
	deadline time.Duration
}

// NewCustomers returns the use case.
func NewCustomers(env Env, marketing MarketingView, product ProductView, support SupportView, timeline TimelineView, deadline time.Duration) *Customers {
	return &Customers{env: env, marketing: marketing, product: product, support: support, timeline: timeline, deadline: deadline}
}

// Get reads the five sections in parallel under one deadline. A section whose service fails is
// UNAVAILABLE with the reason; the call fails only when no section knows the customer.
func (c *Customers) Get(ctx context.Context, tenant, customer string) (*Customer, error) {
	survivor, err := c.env.Store.SurvivorOf(ctx, tenant, customer)
	if err != nil {
		return nil, err
	}
	if survivor != "" {
		out, err := c.get(ctx, tenant, survivor)
		if err != nil {
			return nil, err
		}
		out.CustomerId, out.MergedInto = customer, survivor
		return out, nil
	}
	return c.get(ctx, tenant, customer)
}

func (c *Customers) get(ctx context.Context, tenant, customer string) (*Customer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	// A customer marketing's registry does not have is not a customer, whatever traces of the id
	// other services hold. A merged one shows what is left under its id; marketing unavailable
	// leaves the judgement to the sections, as before.
	if err := c.env.Known.Check(ctx, tenant, customer, "customer_id"); errors.Is(err, customerref.ErrNotFound) {
		return nil, err
	}
	out := &Customer{
		CustomerId: customer,
		Profile:    &salesv1.ProfileSection{},
		Marketing:  &salesv1.MarketingSection{},
		Deals:      &salesv1.DealsSection{},
		Product:    &salesv1.ProductSection{},
		Support:    &salesv1.SupportSection{},
		Timeline:   &salesv1.TimelineSection{},
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		known bool
	)
	section := func(status *salesv1.SectionStatus, reason *string, read func() (bool, error)) {
		wg.Go(func() {
			found, err := read()
			mu.Lock()
			defer mu.Unlock()
			known = known || found
			*status = salesv1.SectionStatus_SECTION_STATUS_AVAILABLE
			if err != nil {
				*status, *reason = salesv1.SectionStatus_SECTION_STATUS_UNAVAILABLE, unavailableReason(err)
			}
		})
	}
	p, m, d, pr, s := out.Profile, out.Marketing, out.Deals, out.Product, out.Support
	var contact *Contact
	section(&p.Status, &p.Reason, func() (bool, error) {
		var err error
		contact, p.Account, err = c.profile(ctx, tenant, customer)
		p.Contact = contact
		return contact != nil, err
	})
	section(&m.Status, &m.Reason, func() (bool, error) {
		var err error
		m.Lifecycle, m.Loyalty, err = c.marketingSide(ctx, customer)
		return m.GetLifecycle() != nil || m.GetLoyalty() != nil, err
	})
	section(&pr.Status, &pr.Reason, func() (bool, error) {
		var err error
		pr.Subscriptions, pr.Entitlements, pr.Adoption, err = c.productSide(ctx, customer)
		return len(pr.GetSubscriptions())+len(pr.GetEntitlements()) > 0, err
	})
	section(&s.Status, &s.Reason, func() (bool, error) {
		tickets, err := c.support.Tickets(ctx, customer, ticketsRead)
		if err != nil {
			return false, err
		}
		s.OpenTickets, s.RatedTickets, s.CsatAverage = summarizeTickets(tickets)
		if s.NpsResponses, err = c.support.NpsResponses(ctx, customer, npsShown); err != nil {
			return len(tickets) > 0, err
		}
		if len(s.NpsResponses) > 0 {
			s.NpsCategory = s.NpsResponses[0].GetCategory()
		}
		return len(tickets) > 0 || len(s.NpsResponses) > 0, nil
	})
	// The timeline says what happened, not who the customer is: it neither makes the customer
	// known nor, missing (integration not deployed), turns an unknown customer into a found one.
	tl := out.Timeline
	section(&tl.Status, &tl.Reason, func() (bool, error) {
		var err error
		tl.Entries, err = c.timeline.Latest(ctx, customer, timelineShown)
		if errors.Is(err, ErrNotKnown) {
			err = nil
		}
		return false, err
	})
	wg.Wait()
	// Deals need the contact's account, read above; sales' own store answers fast.
	section(&d.Status, &d.Reason, func() (bool, error) {
		var err error
		d.RecentOrders, d.OpenOpportunities, err = c.deals(ctx, tenant, customer, contact.GetAccountId())
		if err != nil {
			return len(d.GetRecentOrders()) > 0, err
		}
		d.Value, err = NewValues(c.env).Get(ctx, tenant, customer)
		if errors.Is(err, ErrCustomerNotFound) {
			d.Value, err = nil, nil
		}
		return len(d.GetRecentOrders()) > 0, err
	})
	wg.Wait()
	if !known && allAvailable(out) {
		return nil, ErrCustomerNotFound
	}
	return out, nil
}

func (c *Customers) profile(ctx context.Context, tenant, customer string) (*Contact, *Account, error) {
	id, err := c.env.Store.ContactOfCustomer(ctx, tenant, customer)
	if errors.Is(err, ErrContactNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	contact, err := c.env.Store.GetContact(ctx, tenant, id)
	if err != nil || contact.GetAccountId() == "" {
		return contact, nil, err
	}
	account, err := c.env.Store.GetAccount(ctx, tenant, contact.GetAccountId())
	return contact, account, err
}

func (c *Customers) marketingSide(ctx context.Context, customer string) (*marketingv1.CustomerLifecycle, *marketingv1.LoyaltyAccount, error) {
	lifecycle, err := c.marketing.Lifecycle(ctx, customer)
	if err != nil && !errors.Is(err, ErrNotKnown) {
		return nil, nil, err
	}
	loyalty, err := c.marketing.Loyalty(ctx, customer)
	if err != nil && !errors.Is(err, ErrNotKnown) {
		return lifecycle, nil, err
	}
	return lifecycle, loyalty, nil
}

func (c *Customers) productSide(ctx context.Context, customer string) ([]*productv1.Subscription, []*productv1.Entitlement, *productv1.Adoption, error) {
	// The two lists are independent reads: side by side, the section costs one call's latency.
	var subs []*productv1.Subscription
	var ents []*productv1.Entitlement
	var g errgroup.Group
	g.Go(func() (err error) { subs, err = c.product.Subscriptions(ctx, customer, subscriptionsShown); return err })
	g.Go(func() (err error) { ents, err = c.product.Entitlements(ctx, customer, subscriptionsShown); return err })
	if err := g.Wait(); err != nil || len(subs)+len(ents) == 0 {
		return subs, nil, nil, err
	}
	adoption, err := c.product.Adoption(ctx, customer)
	if errors.Is(err, ErrNotKnown) {
		err = nil
	}
	return subs, ents, adoption, err
}

func (c *Customers) deals(ctx context.Context, tenant, customer, account string) ([]*Order, []*Opportunity, error) {
	ix, err := ParseOrderFilter(fmt.Sprintf("customer_id = %q", customer))
	if err != nil {
		return nil, nil, err
	}
	orders, err := c.env.Store.ListOrders(ctx, tenant, Query{Index: ix, Request: page.Request{Limit: recentOrdersShown}})
	if err != nil || account == "" {
		return orders.Items, nil, err
	}
	ix, err = ParseOpportunityFilter(fmt.Sprintf("account_id = %q", account))
	if err != nil {
		return orders.Items, nil, err
	}
	opps, err := c.env.Store.ListOpportunities(ctx, tenant, Query{Index: ix, Request: page.Request{Limit: openDealsShown}})
	var open []*Opportunity
	for _, o := range opps.Items {
		if o.GetStatus() == StatusOpen {
			open = append(open, o)
		}
	}
	return orders.Items, open, err
}

// summarizeTickets keeps the open tickets and averages the CSAT of the rated ones.
func summarizeTickets(tickets []*supportv1.Ticket) (open []*supportv1.Ticket, rated int32, average float64) {
	var sum int32
	for _, t := range tickets {
		switch t.GetStatus() {
		case supportv1.TicketStatus_TICKET_STATUS_SOLVED, supportv1.TicketStatus_TICKET_STATUS_CLOSED:
		default:
			if len(open) < openTicketsShown {
				open = append(open, t)
			}
		}
		if score := t.GetCsat().GetScore(); score > 0 {
			rated++
			sum += score
		}
	}
	if rated > 0 {
		average = float64(sum) / float64(rated)
	}
	return open, rated, average
}

func allAvailable(c *Customer) bool {
	for _, s := range []salesv1.SectionStatus{c.GetProfile().GetStatus(), c.GetMarketing().GetStatus(),
		c.GetDeals().GetStatus(), c.GetProduct().GetStatus(), c.GetSupport().GetStatus()} {
		if s != salesv1.SectionStatus_SECTION_STATUS_AVAILABLE {
			return false
		}
	}
	return true
}

// unavailableReason says why a section is missing without leaking internals.
func unavailableReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the service did not answer within the deadline"
	case errors.Is(err, ErrServiceUnavailable):
		return "the service is unavailable"
	case errors.Is(err, ErrSectionForbidden):
		return "the API key lacks the read scope of the service"
	}
	return "the service failed to answer"
}

// ErrServiceUnavailable is what section sources return when their service cannot be reached.
var ErrServiceUnavailable = errors.New("sales: service unavailable")

// ErrSectionForbidden is what section sources return when the caller's key may not read there.
var ErrSectionForbidden = errors.New("sales: the caller may not read the service")
