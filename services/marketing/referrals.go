package marketing

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/events"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Errors of referrals.
var (
	ErrUnknownReferralCode = apierr.Invalid("lead.referral_code", "no referral code like this in the tenant")
	ErrReferralContention  = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "could not find a free referral code; retry")
)

// ReferralStore keeps referral codes, unique per tenant.
type ReferralStore interface {
	// CreateReferralCode stores a new code; ErrStale if the code is taken.
	CreateReferralCode(ctx context.Context, tenant string, rc *marketingv1.ReferralCode, event []byte) error
	// ReferrerOf returns the customer a code belongs to; ErrUnknownReferralCode if none.
	ReferrerOf(ctx context.Context, tenant, code string) (string, error)
}

// Referrals are the referral use cases.
type Referrals struct {
	store     ReferralStore
	publisher events.Publisher
	now       func() time.Time
}

// NewReferrals returns the use cases over store.
func NewReferrals(store ReferralStore, publisher events.Publisher, now func() time.Time) *Referrals {
	return &Referrals{store: store, publisher: publisher, now: now}
}

// Create makes a new code for a customer: 8 characters of base32, 40 random bits.
func (r *Referrals) Create(ctx context.Context, tenant, customer string) (*marketingv1.ReferralCode, error) {
	for range moveAttempts {
		b := make([]byte, 5)
		_, _ = rand.Read(b)
		rc := &marketingv1.ReferralCode{Code: base32.StdEncoding.EncodeToString(b), CustomerId: customer,
			CreateTime: timestamppb.New(r.now().UTC())}
		_, event, err := r.publisher.Envelope(ctx, marketingv1.EventReferralCodeCreated.Of(rc), tenant, customer, r.now())
		if err != nil {
			return nil, err
		}
		err = r.store.CreateReferralCode(ctx, tenant, rc, event)
		if errors.Is(err, ErrStale) {
			continue // taken: draw again
		}
		if err != nil {
			return nil, err
		}
		return rc, nil
	}
	return nil, ErrReferralContention
}
