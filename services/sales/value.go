package sales

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/money"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// CustomerValue is what a customer is worth. Stored, it holds the facts kept with every order
// (counts, money per currency, order times); the figures that depend on the clock or on the whole
// tenant (averages, lifetime value, RFM, type) are filled on read by salesv1.EvaluateValue.
type CustomerValue = salesv1.CustomerValue

// valueAttempts bounds the retries of an order racing other orders of the same customer on its
// value: each retry is a fresh read and one commit, and a burst of a customer's orders at once
// must all land.
const valueAttempts = 64

// backoff waits before a retry of a write that lost a race: a random time up to attempt
// milliseconds, so a burst of writers on one record spreads out instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ValueStore keeps the customers' value facts and the tenant-wide rankings over them.
type ValueStore interface {
	// CustomerValue reads a customer's stored facts (nil when the customer has no order) and
	// whether sales knows the customer at all (a contact or an order).
	CustomerValue(ctx context.Context, tenant, customer string) (facts *CustomerValue, known bool, err error)
	// ValueRanks reads where the facts stand among the tenant's customers, and the tenant's
	// history, in one round trip.
	ValueRanks(ctx context.Context, tenant string, facts *CustomerValue) (Ranks, error)
}

// ValueWrite is the change of one customer's facts that an order makes, written with the order.
type ValueWrite struct {
	Prev, Next *CustomerValue
	// Span and Repeat change the tenant's history: the sum of its repeat customers' spans
	// (first to last order, in milliseconds) and their number.
	SpanDelta, RepeatDelta int64
}

// Ranks are a customer's standing among the tenant's ranked customers, and the tenant's history.
type Ranks = salesv1.ValueRanks

// Values is the customer value use case.
type Values struct{ env Env }

// NewValues returns the use case.
func NewValues(env Env) *Values { return &Values{env: env} }

// maxMergeHops bounds how many merges a read follows from a merged customer to its survivor.
const maxMergeHops = 8

// Get reads a customer's value: ErrCustomerNotFound when sales knows neither a contact nor an
// order of theirs, the survivor's when the customer was merged. Two round trips, whatever the
// number of customers.
func (v *Values) Get(ctx context.Context, tenant, customer string) (*CustomerValue, error) {
	facts, known, err := v.env.Store.CustomerValue(ctx, tenant, customer)
	for hops := 0; err == nil && !known; hops++ {
		// No orders here: a customer marketing knows is worth nothing yet (POTENTIAL), anyone
		// else is not a customer, and a merged one's value is the survivor's, whom the merge
		// gave its orders (the answer's customerId names them).
		err = v.env.Known.Check(ctx, tenant, customer, "customer_id")
		refusal, _ := apierr.As(err)
		if !errors.Is(err, customerref.ErrMerged) || refusal == nil || hops == maxMergeHops {
			break
		}
		customer = refusal.Metadata["merged_into"]
		facts, known, err = v.env.Store.CustomerValue(ctx, tenant, customer)
	}
	if err != nil {
		return nil, err
	}
	if facts == nil {
		return salesv1.EvaluateValue(&CustomerValue{CustomerId: customer}, Ranks{}, v.env.Now()), nil
	}
	ranks, err := v.env.Store.ValueRanks(ctx, tenant, facts)
	if err != nil {
		return nil, err
	}
	return salesv1.EvaluateValue(facts, ranks, v.env.Now()), nil
}

// valueWrite computes the change an order makes to its customer's facts, read now.
func (e Env) valueWrite(ctx context.Context, tenant string, o *Order) (*ValueWrite, []byte, error) {
	prev, _, err := e.Store.CustomerValue(ctx, tenant, o.GetCustomerId())
	if err != nil {
		return nil, nil, err
	}
	w, err := AddOrder(prev, o)
	if err != nil {
		return nil, nil, err
	}
	event, err := e.event(ctx, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: w.Next}), tenant, o.GetCustomerId())
	return w, event, err
}

// AddOrder is the change order o makes to the facts prev (nil: the customer's first order).
func AddOrder(prev *CustomerValue, o *Order) (*ValueWrite, error) {
	next := &CustomerValue{CustomerId: o.GetCustomerId(), FirstSeenTime: firstSeen(o.GetCustomerId())}
	if prev != nil {
		next = proto.CloneOf(prev)
	}
	next.Etag = etag.Next(prev.GetEtag())
	if prev == nil {
		next.Etag = etag.First
	}
	at := o.GetCreateTime()
	next.OrderCount++
	if discounted(o) {
		next.DiscountedOrderCount++
	}
	next.Recurring = next.Recurring || slices.ContainsFunc(o.GetLines(), (*OrderLine).GetRecurring)
	if next.FirstOrderTime == nil || at.AsTime().Before(next.FirstOrderTime.AsTime()) {
		next.FirstOrderTime = at
	}
	if next.LastOrderTime == nil || at.AsTime().After(next.LastOrderTime.AsTime()) {
		next.LastOrderTime = at
	}
	if err := addRevenue(next, o.GetTotal()); err != nil {
		return nil, err
	}
	next.MainCurrency = mainCurrency(next.Currencies)
	w := &ValueWrite{Prev: prev, Next: next, SpanDelta: salesv1.RepeatSpan(next) - salesv1.RepeatSpan(prev)}
	if prev.GetOrderCount() == 1 {
		w.RepeatDelta = 1
	}
	return w, nil
}

func addRevenue(v *CustomerValue, total *typev1.Money) error {
	code := total.GetCurrencyCode()
	i, found := slices.BinarySearchFunc(v.Currencies, code, func(c *salesv1.CurrencyValue, code string) int {
		return cmp.Compare(c.GetCurrencyCode(), code)
	})
	if !found {
		v.Currencies = slices.Insert(v.Currencies, i, &salesv1.CurrencyValue{CurrencyCode: code, Revenue: money.Zero(code)})
	}
	c := v.Currencies[i]
	sum, err := money.Add(c.GetRevenue(), total)
	if err != nil {
		return err
	}
	c.OrderCount++
	c.Revenue = sum
	return nil
}

// discounted is whether any line of o carries a discount.
func discounted(o *Order) bool {
	return slices.ContainsFunc(o.GetLines(), func(l *OrderLine) bool { return l.GetDiscountPercent() > 0 })
}

// mainCurrency is the currency of most orders, the earliest code on a tie.
func mainCurrency(cs []*salesv1.CurrencyValue) string {
	main := ""
	var most int64
	for _, c := range cs {
		if c.GetOrderCount() > most {
			main, most = c.GetCurrencyCode(), c.GetOrderCount()
		}
	}
	return main
}

// firstSeen is the time in a UUIDv7 customer id: when marketing first saw the person.
func firstSeen(customer string) *timestamppb.Timestamp {
	id, err := uuid.Parse(customer)
	if err != nil || id.Version() != 7 {
		return nil
	}
	sec, nsec := id.Time().UnixTime()
	return timestampOf(time.Unix(sec, nsec))
}
