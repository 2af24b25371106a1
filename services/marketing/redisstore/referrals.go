package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.ReferralStore = (*Store)(nil)

func (k leadKeys) referral(code string) string { return k.Key("referral", code) }

// referralsOf is the sorted set of a customer's referral codes, which a merge moves.
func (k leadKeys) referralsOf(customer string) string { return k.Key("customer-referrals", customer) }

// CreateReferralCode implements marketing.ReferralStore.
func (s *Store) CreateReferralCode(ctx context.Context, tenant string, rc *marketingv1.ReferralCode, event []byte) error {
	k := s.scope(tenant)
	w := commit.New()
	k.expectCustomer(w, rc.GetCustomerId())
	err := w.Save(k.referral(rc.GetCode()), rc, "", "1").
		HSet(k.referral(rc.GetCode()), "customer", rc.GetCustomerId()).
		ZAdd(k.referralsOf(rc.GetCustomerId()), 0, rc.GetCode()).
		Append(k.Stream(), event).Run(ctx, s.rdb)
	if refused := k.customerRefusal(err, rc.GetCustomerId()); refused != nil {
		return refused
	}
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// ReferrerOf implements marketing.ReferralStore.
func (s *Store) ReferrerOf(ctx context.Context, tenant, code string) (string, error) {
	customer, err := s.rdb.HGet(ctx, s.scope(tenant).referral(code), "customer").Result()
	if errors.Is(err, redis.Nil) {
		return "", marketing.ErrUnknownReferralCode
	}
	return customer, err
}
