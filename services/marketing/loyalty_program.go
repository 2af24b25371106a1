package marketing

import (
	"context"
	"math/big"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/protoupdate"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// LoyaltyProgram is a tenant's earn rate and tier thresholds.
type LoyaltyProgram = marketingv1.LoyaltyProgram

// Errors of the loyalty programme.
var (
	ErrLoyaltyProgramEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the loyalty programme changed since it was read; read it again and retry")
	ErrLoyaltyProgramContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
		"the loyalty programme kept changing concurrently; retry")
	ErrOrderCurrency  = apierr.Invalid("total.currency_code", "the loyalty programme earns points in another currency")
	ErrPointsTooLarge = apierr.Invalid("total", "the order earns more points than a balance holds")
)

// updatableProgramFields are the fields UpdateLoyaltyProgram may change (its update_mask paths).
var updatableProgramFields = []string{"points_per_unit", "currency_code", "silver_points", "gold_points", "platinum_points"}

// DefaultLoyaltyProgram is a tenant's programme until it changes it: a point per unit of any
// currency, SILVER at 1,000 points a year, GOLD at 5,000, PLATINUM at 20,000.
func DefaultLoyaltyProgram() *LoyaltyProgram {
	return &LoyaltyProgram{PointsPerUnit: 1, SilverPoints: 1_000, GoldPoints: 5_000, PlatinumPoints: 20_000, Etag: defaultRulesEtag}
}

// TierFor is the tier points earned over the trailing year reach under a programme.
func TierFor(p *LoyaltyProgram, earned int64) marketingv1.LoyaltyTier {
	switch {
	case earned >= p.GetPlatinumPoints():
		return marketingv1.LoyaltyTier_LOYALTY_TIER_PLATINUM
	case earned >= p.GetGoldPoints():
		return marketingv1.LoyaltyTier_LOYALTY_TIER_GOLD
	case earned >= p.GetSilverPoints():
		return marketingv1.LoyaltyTier_LOYALTY_TIER_SILVER
	}
	return marketingv1.LoyaltyTier_LOYALTY_TIER_BRONZE
}

// PointsForOrder is what an order total earns under a programme: points_per_unit for every whole
// unit, computed exactly on nano units and rounded down; nothing for a zero or negative total.
// An order in a currency the programme does not earn in is ErrOrderCurrency.
func PointsForOrder(p *LoyaltyProgram, total *typev1.Money) (int64, error) {
	if c := p.GetCurrencyCode(); c != "" && c != total.GetCurrencyCode() {
		return 0, ErrOrderCurrency
	}
	nanos := money.Nanos(total)
	if nanos.Sign() <= 0 {
		return 0, nil
	}
	points := new(big.Int).Mul(nanos, big.NewInt(p.GetPointsPerUnit()))
	points.Quo(points, big.NewInt(money.NanosPerUnit))
	if !points.IsInt64() {
		return 0, ErrPointsTooLarge
	}
	return points.Int64(), nil
}

// LoyaltyProgramStore keeps a tenant's loyalty programme.
type LoyaltyProgramStore interface {
	// LoyaltyProgram returns the tenant's programme; nil when it never set one.
	LoyaltyProgram(ctx context.Context, tenant string) (*LoyaltyProgram, error)
	// PutLoyaltyProgram stores p if the stored one is still at prevEtag ("" for none); ErrStale
	// otherwise.
	PutLoyaltyProgram(ctx context.Context, tenant string, p *LoyaltyProgram, prevEtag string, event []byte) error
}

// Program returns the tenant's loyalty programme, the default until it sets its own.
func (l *Loyalty) Program(ctx context.Context, tenant string) (*LoyaltyProgram, error) {
	p, err := l.store.LoyaltyProgram(ctx, tenant)
	if err != nil || p != nil {
		return p, err
	}
	return DefaultLoyaltyProgram(), nil
}

// PointsForOrder is what an order total earns under the tenant's programme, for the reaction to
// sales.order.placed.
func (l *Loyalty) PointsForOrder(ctx context.Context, tenant string, total *typev1.Money) (int64, error) {
	p, err := l.Program(ctx, tenant)
	if err != nil {
		return 0, err
	}
	return PointsForOrder(p, total)
}

// UpdateProgram changes the fields named by mask (when it is empty, the fields `in` sets). An etag
// that is not the current one is ABORTED; the merged programme is validated as a whole.
func (l *Loyalty) UpdateProgram(ctx context.Context, tenant string, in *LoyaltyProgram, mask *fieldmaskpb.FieldMask) (*LoyaltyProgram, error) {
	if in == nil {
		return nil, apierr.Invalid("loyalty_program", "required")
	}
	update, err := protoupdate.Fields(in, mask, updatableProgramFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrLoyaltyProgramContention, func() (*LoyaltyProgram, error) {
		existing, err := l.Program(ctx, tenant)
		if err != nil {
			return nil, err
		}
		merged, err := protoupdate.Merge(l.validator, "loyalty_program", existing, in, update, ErrLoyaltyProgramEtag)
		if err != nil {
			return nil, err
		}
		if len(update.Fields) == 0 { // nothing to change: no write, no new etag
			return existing, nil
		}
		now := l.now().UTC()
		merged.UpdateTime = timestamppb.New(now)
		merged.Etag = etag.Next(existing.GetEtag())
		_, event, err := l.publisher.Envelope(ctx, marketingv1.EventLoyaltyProgramUpdated.Of(merged), tenant, "", now)
		if err != nil {
			return nil, err
		}
		prev := existing.GetEtag()
		if prev == defaultRulesEtag {
			prev = ""
		}
		if err := l.store.PutLoyaltyProgram(ctx, tenant, merged, prev, event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}
