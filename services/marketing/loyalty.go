package marketing

import (
	"context"
	"errors"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Errors of the loyalty use cases.
var (
	ErrNoLoyaltyAccount   = apierr.New(apierr.NotFound, "LOYALTY_ACCOUNT_NOT_FOUND", "the customer has no loyalty account (no points earned yet)")
	ErrInsufficientPoints = apierr.New(apierr.FailedPrecondition, "INSUFFICIENT_POINTS", "the balance does not cover the redemption")
	ErrLoyaltyContention  = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the loyalty account kept changing concurrently; retry")
)

// LoyaltyState is a loyalty account as stored.
type LoyaltyState struct {
	Balance int64
	// Version changes with every credit (credits compare and set it; redemptions do not need to).
	Version string
	Tier    marketingv1.LoyaltyTier
	// EarnedByMonth is the points earned per month ("200601"), for the months asked.
	EarnedByMonth map[string]int64
	Ledger        []*marketingv1.LedgerEntry
}

// LoyaltyCredit is one credit to book.
type LoyaltyCredit struct {
	Entry       *marketingv1.LedgerEntry
	Month       string
	PrevVersion string
	Version     string
	Tier        marketingv1.LoyaltyTier
	Events      [][]byte
	// Applied, when set, is the causing event's effect: a credit whose effect was applied before
	// changes nothing and fails with ErrAlreadyApplied (the redelivery guard, events.Guard).
	Applied events.Effect
	// CheckCustomer refuses the credit, inside its commit, unless the registry has the customer
	// unmerged (customerref's NOT_FOUND or CUSTOMER_MERGED): a request's credit. A reaction's is
	// about a customer the causing service checked.
	CheckCustomer bool
}

// LoyaltyStore keeps loyalty accounts and the programme.
type LoyaltyStore interface {
	LoyaltyProgramStore
	// LoyaltyAccount reads an account with the earnings of months; ErrNoLoyaltyAccount if none.
	LoyaltyAccount(ctx context.Context, tenant, customer string, months []string) (*LoyaltyState, error)
	// CreditPoints books a credit if the account is still at c.PrevVersion ("" for a new one);
	// ErrStale otherwise.
	CreditPoints(ctx context.Context, tenant, customer string, c LoyaltyCredit) error
	// RedeemPoints books a debit atomically; ErrInsufficientPoints (also for a customer with no
	// account yet: a balance of 0), and customerref's refusals unless the registry has the
	// customer unmerged.
	RedeemPoints(ctx context.Context, tenant, customer string, entry *marketingv1.LedgerEntry, event []byte) error
}

// Loyalty are the loyalty use cases.
type Loyalty struct {
	store     LoyaltyStore
	publisher events.Publisher
	validator protovalidate.Validator
	now       func() time.Time
}

// NewLoyalty returns the use cases over store.
func NewLoyalty(store LoyaltyStore, publisher events.Publisher, validator protovalidate.Validator, now func() time.Time) *Loyalty {
	return &Loyalty{store: store, publisher: publisher, validator: validator, now: now}
}

// trailingMonths are the twelve months ending with t's, as "200601".
func trailingMonths(t time.Time) []string {
	first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	months := make([]string, 12)
	for i := range months {
		months[i] = first.AddDate(0, -i, 0).Format("200601")
	}
	return months
}

// Account returns a customer's account with its tier as of now.
func (l *Loyalty) Account(ctx context.Context, tenant, customer string) (*marketingv1.LoyaltyAccount, error) {
	st, err := l.store.LoyaltyAccount(ctx, tenant, customer, trailingMonths(l.now().UTC()))
	if err != nil {
		return nil, err
	}
	program, err := l.Program(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return account(customer, st, program), nil
}

func account(customer string, st *LoyaltyState, program *LoyaltyProgram) *marketingv1.LoyaltyAccount {
	var earned int64
	for _, n := range st.EarnedByMonth {
		earned += n
	}
	return &marketingv1.LoyaltyAccount{
		CustomerId: customer, PointsBalance: st.Balance, PointsEarnedTrailingYear: earned,
		Tier: TierFor(program, earned), Ledger: st.Ledger,
	}
}

// Credit adds points, moving the tier when the trailing year's earnings cross a threshold. The
// customer must be in the registry, unmerged (checked inside the credit's commit).
func (l *Loyalty) Credit(ctx context.Context, tenant, customer string, points int64, reason string) (*marketingv1.LedgerEntry, *marketingv1.LoyaltyAccount, error) {
	return l.credit(ctx, tenant, customer, points, reason, events.Effect{})
}

// credit books a credit; applied, when set, makes it once per causing event's effect.
func (l *Loyalty) credit(ctx context.Context, tenant, customer string, points int64, reason string, applied events.Effect) (*marketingv1.LedgerEntry, *marketingv1.LoyaltyAccount, error) {
	program, err := l.Program(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	for range moveAttempts {
		now := l.now().UTC()
		months := trailingMonths(now)
		st, err := l.store.LoyaltyAccount(ctx, tenant, customer, months)
		if errors.Is(err, ErrNoLoyaltyAccount) {
			st, err = &LoyaltyState{Tier: marketingv1.LoyaltyTier_LOYALTY_TIER_BRONZE, EarnedByMonth: map[string]int64{}}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		entry := &marketingv1.LedgerEntry{Id: uuid.Must(uuid.NewV7()).String(), Points: points, Reason: reason, CreateTime: timestamppb.New(now)}
		after := &LoyaltyState{Balance: st.Balance + points, EarnedByMonth: map[string]int64{}, Ledger: append([]*marketingv1.LedgerEntry{entry}, st.Ledger...)}
		for m, n := range st.EarnedByMonth {
			after.EarnedByMonth[m] = n
		}
		after.EarnedByMonth[months[0]] += points
		acct := account(customer, after, program)
		credit := LoyaltyCredit{Entry: entry, Month: months[0], PrevVersion: st.Version, Version: etag.Next(st.Version), Tier: acct.GetTier(),
			Applied: applied, CheckCustomer: applied.EventID == ""} // no causing event: a request's credit
		if err := l.book(ctx, tenant, customer, marketingv1.EventLoyaltyPointsCredited, entry, &credit.Events); err != nil {
			return nil, nil, err
		}
		if stored := st.Tier; stored != acct.GetTier() {
			_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventLoyaltyTierChanged.Of(
				&marketingv1.LoyaltyTierChanged{CustomerId: customer, From: stored, To: acct.GetTier()}), tenant, customer, now)
			if err != nil {
				return nil, nil, err
			}
			credit.Events = append(credit.Events, ev)
		}
		err = l.store.CreditPoints(ctx, tenant, customer, credit)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if len(acct.Ledger) > ledgerShown {
			acct.Ledger = acct.Ledger[:ledgerShown]
		}
		return entry, acct, nil
	}
	return nil, nil, ErrLoyaltyContention
}

// ledgerShown is how many ledger entries an account shows.
const ledgerShown = 20

// Redeem takes points for a reward; the balance never goes below zero.
func (l *Loyalty) Redeem(ctx context.Context, tenant, customer string, points int64, reward string) (*marketingv1.LedgerEntry, *marketingv1.LoyaltyAccount, error) {
	entry := &marketingv1.LedgerEntry{Id: uuid.Must(uuid.NewV7()).String(), Points: -points, Reason: reward, CreateTime: timestamppb.New(l.now().UTC())}
	var evs [][]byte
	if err := l.book(ctx, tenant, customer, marketingv1.EventLoyaltyPointsRedeemed, entry, &evs); err != nil {
		return nil, nil, err
	}
	if err := l.store.RedeemPoints(ctx, tenant, customer, entry, evs[0]); err != nil {
		return nil, nil, err
	}
	acct, err := l.Account(ctx, tenant, customer)
	if err != nil {
		return nil, nil, err
	}
	return entry, acct, nil
}

func (l *Loyalty) book(ctx context.Context, tenant, customer string, eventType eventv1.Type[*marketingv1.LoyaltyPointsBooked], entry *marketingv1.LedgerEntry, evs *[][]byte) error {
	_, ev, err := l.publisher.Envelope(ctx, eventType.Of(
		&marketingv1.LoyaltyPointsBooked{CustomerId: customer, Entry: proto.CloneOf(entry)}), tenant, customer, l.now())
	if err != nil {
		return err
	}
	*evs = append(*evs, ev)
	return nil
}
