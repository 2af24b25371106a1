package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.LoyaltyStore = (*Store)(nil)

// A loyalty account is a hash {b: balance, v: version, tier}, a hash of points earned per month,
// and the ledger: a sorted set of entries (protobuf) scored by time.
func (k leadKeys) loyalty(customer string) string       { return k.Key("loyalty", customer) }
func (k leadKeys) loyaltyEarned(customer string) string { return k.Key("loyalty-earned", customer) }
func (k leadKeys) loyaltyLedger(customer string) string { return k.Key("loyalty-ledger", customer) }

const (
	fieldBalance = "b"
	fieldTier    = "tier"
)

// LoyaltyAccount implements marketing.LoyaltyStore: one round trip.
func (s *Store) LoyaltyAccount(ctx context.Context, tenant, customer string, months []string) (*marketing.LoyaltyState, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	acct := pipe.HMGet(ctx, k.loyalty(customer), fieldBalance, commit.FieldVersion, fieldTier)
	earned := pipe.HMGet(ctx, k.loyaltyEarned(customer), months...)
	ledger := pipe.ZRevRange(ctx, k.loyaltyLedger(customer), 0, 19)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	v := acct.Val()
	if v[0] == nil {
		return nil, marketing.ErrNoLoyaltyAccount
	}
	st := &marketing.LoyaltyState{EarnedByMonth: map[string]int64{}}
	st.Balance, _ = strconv.ParseInt(v[0].(string), 10, 64)
	st.Version, _ = v[1].(string)
	if t, ok := v[2].(string); ok {
		n, _ := strconv.Atoi(t)
		st.Tier = marketingv1.LoyaltyTier(n)
	}
	for i, e := range earned.Val() {
		if e != nil {
			st.EarnedByMonth[months[i]], _ = strconv.ParseInt(e.(string), 10, 64)
		}
	}
	for _, raw := range ledger.Val() {
		entry := &marketingv1.LedgerEntry{}
		if err := proto.Unmarshal([]byte(raw), entry); err != nil {
			return nil, fmt.Errorf("redisstore: ledger entry: %w", err)
		}
		st.Ledger = append(st.Ledger, entry)
	}
	return st, nil
}

// CreditPoints implements marketing.LoyaltyStore.
func (s *Store) CreditPoints(ctx context.Context, tenant, customer string, c marketing.LoyaltyCredit) error {
	entry, err := proto.Marshal(c.Entry)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New()
	if c.CheckCustomer {
		k.expectCustomer(w, customer)
	}
	w.ExpectVersion(k.loyalty(customer), c.PrevVersion).
		HIncrBy(k.loyalty(customer), fieldBalance, c.Entry.GetPoints()).
		HSet(k.loyalty(customer), commit.FieldVersion, c.Version).
		HSet(k.loyalty(customer), fieldTier, strconv.Itoa(int(c.Tier))).
		HIncrBy(k.loyaltyEarned(customer), c.Month, c.Entry.GetPoints()).
		ZAdd(k.loyaltyLedger(customer), float64(c.Entry.GetCreateTime().AsTime().UnixMilli()), string(entry))
	for _, ev := range c.Events {
		w.Append(k.Stream(), ev)
	}
	events.Guard(w, k.Scope, c.Applied)
	err = w.Run(ctx, s.rdb)
	if refused := k.customerRefusal(err, customer); refused != nil {
		return refused
	}
	switch {
	case errors.Is(err, commit.ErrVersionMismatch):
		return marketing.ErrStale
	case errors.Is(err, commit.ErrAlreadyApplied):
		return marketing.ErrAlreadyApplied
	}
	return err
}

// RedeemPoints implements marketing.LoyaltyStore: the balance check and the debit are one atomic
// call, so concurrent redemptions never overdraw.
func (s *Store) RedeemPoints(ctx context.Context, tenant, customer string, e *marketingv1.LedgerEntry, event []byte) error {
	entry, err := proto.Marshal(e)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New()
	k.expectCustomer(w, customer)
	err = w.ExpectExists(k.loyalty(customer)).
		Debit(k.loyalty(customer), fieldBalance, -e.GetPoints()).
		ZAdd(k.loyaltyLedger(customer), float64(e.GetCreateTime().AsTime().UnixMilli()), string(entry)).
		Append(k.Stream(), event).
		Run(ctx, s.rdb)
	if refused := k.customerRefusal(err, customer); refused != nil {
		return refused
	}
	if _, ok := errors.AsType[*commit.MissingError](err); ok {
		// The customer is known (checked first) and has earned nothing yet: a balance of 0, which
		// covers no redemption (DESIGN §4: FAILED_PRECONDITION), not a missing resource.
		return marketing.ErrInsufficientPoints.With("balance", "0")
	}
	if short, ok := errors.AsType[*commit.InsufficientError](err); ok {
		return marketing.ErrInsufficientPoints.With("balance", strconv.FormatInt(short.Available, 10))
	}
	return err
}

var _ marketing.LoyaltyProgramStore = (*Store)(nil)

// The tenant's loyalty programme is one record (pkg/commit).
func (k leadKeys) loyaltyProgram() string { return k.Key("loyalty-program") }

// LoyaltyProgram implements marketing.LoyaltyProgramStore: one round trip.
func (s *Store) LoyaltyProgram(ctx context.Context, tenant string) (*marketing.LoyaltyProgram, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).loyaltyProgram(), &marketing.LoyaltyProgram{}, nil)
}

// PutLoyaltyProgram implements marketing.LoyaltyProgramStore.
func (s *Store) PutLoyaltyProgram(ctx context.Context, tenant string, p *marketing.LoyaltyProgram, prevEtag string, event []byte) error {
	k := s.scope(tenant)
	err := commit.New().Save(k.loyaltyProgram(), p, prevEtag, p.GetEtag()).Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}
