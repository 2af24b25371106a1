package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.MergeStore = (*Store)(nil)

// mergeSide is one customer's raw marketing records as a merge reads them.
type mergeSide struct {
	orders              []redis.Z
	recurring, flags    map[string]string
	earned              map[string]string
	ledger              []redis.Z
	codes               []*marketingv1.ReferralCode
	codeVersions        []string
	balance             int64
	loyaltyVer, firstOf string
	hasLoyalty          bool
	value               *salesv1.CustomerValue
}

func (m *mergeSide) hasFacts() bool {
	return len(m.orders) > 0 || len(m.recurring) > 0 || len(m.flags) > 0
}

type mergeSnapshot struct{ survivor, merged mergeSide }

// readSide reads a customer's raw records in one pipeline (all in the tenant's slot), then its
// referral codes.
func (s *Store) readSide(ctx context.Context, k leadKeys, customer string) (mergeSide, error) {
	var (
		orders, ledger   *redis.ZSliceCmd
		recurring, flags *redis.MapStringStringCmd
		earned           *redis.MapStringStringCmd
		loyalty          *redis.SliceCmd
		first            *redis.StringCmd
		codes            *redis.StringSliceCmd
		value            commit.Stored
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		orders = p.ZRangeWithScores(ctx, k.factOrders(customer), 0, -1)
		recurring = p.HGetAll(ctx, k.factRecurring(customer))
		flags = p.HGetAll(ctx, k.facts(customer))
		earned = p.HGetAll(ctx, k.loyaltyEarned(customer))
		ledger = p.ZRangeWithScores(ctx, k.loyaltyLedger(customer), 0, -1)
		loyalty = p.HMGet(ctx, k.loyalty(customer), fieldBalance, commit.FieldVersion)
		first = p.HGet(ctx, k.firstOrders(), customer)
		codes = p.ZRange(ctx, k.referralsOf(customer), 0, -1)
		value = commit.Read(ctx, p, k.customerValue(customer))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return mergeSide{}, err
	}
	side := mergeSide{orders: orders.Val(), recurring: recurring.Val(), flags: flags.Val(), earned: earned.Val(),
		ledger: ledger.Val(), firstOf: first.Val()}
	if b, ok := loyalty.Val()[0].(string); ok {
		side.hasLoyalty = true
		side.balance, _ = strconv.ParseInt(b, 10, 64)
		side.loyaltyVer, _ = loyalty.Val()[1].(string)
	}
	v := &salesv1.CustomerValue{}
	if found, err := value.Decode(v); err != nil {
		return mergeSide{}, err
	} else if found {
		side.value = v
	}
	keys := make([]string, len(codes.Val()))
	for i, c := range codes.Val() {
		keys[i] = k.referral(c)
	}
	if len(keys) > 0 {
		pipe := s.rdb.Pipeline()
		reads := make([]commit.Stored, len(keys))
		for i, key := range keys {
			reads[i] = commit.Read(ctx, pipe, key)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return mergeSide{}, err
		}
		for _, r := range reads {
			rc := &marketingv1.ReferralCode{}
			found, err := r.Decode(rc)
			if err != nil {
				return mergeSide{}, err
			}
			if found {
				side.codes, side.codeVersions = append(side.codes, rc), append(side.codeVersions, r.Version())
			}
		}
	}
	return side, nil
}

// ReadMerge implements marketing.MergeStore.
func (s *Store) ReadMerge(ctx context.Context, tenant, survivor, merged string, months []string) (*marketing.MergeRead, error) {
	k := s.scope(tenant)
	snap := &mergeSnapshot{}
	var err error
	if snap.survivor, err = s.readSide(ctx, k, survivor); err != nil {
		return nil, err
	}
	if snap.merged, err = s.readSide(ctx, k, merged); err != nil {
		return nil, err
	}
	r := &marketing.MergeRead{Snapshot: snap}
	if r.SurvivorLifecycle, err = s.optionalLifecycle(ctx, tenant, survivor); err != nil {
		return nil, err
	}
	if r.MergedLifecycle, err = s.optionalLifecycle(ctx, tenant, merged); err != nil {
		return nil, err
	}
	if r.SurvivorLead, err = s.optionalLead(ctx, tenant, survivor); err != nil {
		return nil, err
	}
	if r.MergedLead, err = s.optionalLead(ctx, tenant, merged); err != nil {
		return nil, err
	}
	if r.SurvivorLoyalty, err = s.optionalLoyalty(ctx, tenant, survivor, months); err != nil {
		return nil, err
	}
	if r.MergedLoyalty, err = s.optionalLoyalty(ctx, tenant, merged, months); err != nil {
		return nil, err
	}
	m := &snap.merged
	r.Pending = m.hasFacts() || m.hasLoyalty || len(m.codes) > 0 || m.firstOf != "" || m.value != nil ||
		r.MergedLifecycle != nil || r.MergedLead != nil
	r.Combined = factsOf(combineOrders(snap.survivor.orders, m.orders), combineRecurring(snap.survivor.recurring, m.recurring),
		combineFlags(snap.survivor.flags, m.flags))
	r.Combined.Version = snap.survivor.flags["v"]
	return r, nil
}

func (s *Store) optionalLifecycle(ctx context.Context, tenant, customer string) (*marketing.CustomerLifecycle, error) {
	lc, err := s.Lifecycle(ctx, tenant, customer)
	if errors.Is(err, marketing.ErrLifecycleNotFound) {
		return nil, nil
	}
	return lc, err
}

func (s *Store) optionalLead(ctx context.Context, tenant, customer string) (*marketing.Lead, error) {
	l, err := s.LeadOfCustomer(ctx, tenant, customer)
	if errors.Is(err, marketing.ErrLeadNotFound) {
		return nil, nil
	}
	return l, err
}

func (s *Store) optionalLoyalty(ctx context.Context, tenant, customer string, months []string) (*marketing.LoyaltyState, error) {
	st, err := s.LoyaltyAccount(ctx, tenant, customer, months)
	if errors.Is(err, marketing.ErrNoLoyaltyAccount) {
		return nil, nil
	}
	return st, err
}

// combineOrders is both customers' orders; an order both have keeps the survivor's time.
func combineOrders(survivor, merged []redis.Z) []redis.Z {
	out := append([]redis.Z{}, survivor...)
	for _, z := range merged {
		if !hasMember(survivor, z.Member) {
			out = append(out, z)
		}
	}
	return out
}

func hasMember(zs []redis.Z, member any) bool {
	for _, z := range zs {
		if z.Member == member {
			return true
		}
	}
	return false
}

// combineRecurring is both customers' recurring subscriptions; an end is final, so an ended
// state wins over an active one.
func combineRecurring(survivor, merged map[string]string) map[string]string {
	out := make(map[string]string, len(survivor)+len(merged))
	for id, st := range survivor {
		out[id] = st
	}
	for id, st := range merged {
		if cur, ok := out[id]; !ok || cur == subscriptionActive {
			out[id] = st
		}
	}
	return out
}

// combineFlags is both customers' flags (a flag only turns on).
func combineFlags(survivor, merged map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{survivor, merged} {
		for f, v := range m {
			if f != commit.FieldVersion && v == "1" {
				out[f] = "1"
			}
		}
	}
	return out
}

// CommitMerge implements marketing.MergeStore: one atomic write of everything that moves.
func (s *Store) CommitMerge(ctx context.Context, tenant string, r *marketing.MergeRead, mw *marketing.MergeWrite) error {
	k := s.scope(tenant)
	snap := r.Snapshot.(*mergeSnapshot)
	sv, mg := &snap.survivor, &snap.merged
	survivor, merged := mw.Survivor, mw.Merged
	w := commit.New()

	// The ladder's facts, checked at the versions read.
	w.ExpectVersion(k.facts(survivor), sv.flags[commit.FieldVersion]).ExpectVersion(k.facts(merged), mg.flags[commit.FieldVersion])
	changed := false
	for _, z := range mg.orders {
		if !hasMember(sv.orders, z.Member) {
			w.ZAdd(k.factOrders(survivor), z.Score, z.Member.(string))
			changed = true
		}
	}
	for id, st := range combineRecurring(sv.recurring, mg.recurring) {
		if sv.recurring[id] != st {
			w.HSet(k.factRecurring(survivor), id, st)
			changed = true
		}
	}
	for f := range combineFlags(nil, mg.flags) {
		if sv.flags[f] != "1" {
			w.HSet(k.facts(survivor), f, "1")
			changed = true
		}
	}
	if changed {
		w.HIncrBy(k.facts(survivor), commit.FieldVersion, 1)
	}
	w.Delete(k.facts(merged)).Delete(k.factOrders(merged)).Delete(k.factRecurring(merged))

	// The lifecycle: the merged customer's leaves its stage; the survivor's carries both histories.
	if ml := r.MergedLifecycle; ml != nil {
		w.ExpectVersion(k.lifecycle(merged), ml.GetEtag()).Delete(k.lifecycle(merged)).
			Move(k.lifecycleIndexes(ml), nil).
			HIncrBy(k.funnel(), "in:"+ml.GetStage().String()[len("LIFECYCLE_STAGE_"):], -1)
	}
	if mw.Lifecycle != nil {
		k.putLifecycle(w, *mw.Lifecycle)
	}

	// Loyalty: balances, earnings and ledgers add up. The debit of the merged balance refuses if
	// a redemption got in since the read; the version check catches a credit.
	if mg.hasLoyalty {
		w.ExpectVersion(k.loyalty(merged), mg.loyaltyVer)
		if mg.balance > 0 {
			w.Debit(k.loyalty(merged), fieldBalance, mg.balance)
		}
		w.ExpectVersion(k.loyalty(survivor), sv.loyaltyVer).
			HIncrBy(k.loyalty(survivor), fieldBalance, mg.balance).
			HSet(k.loyalty(survivor), commit.FieldVersion, etag.Next(sv.loyaltyVer)).
			HSet(k.loyalty(survivor), fieldTier, strconv.Itoa(int(mw.Tier)))
		for month, n := range mg.earned {
			points, _ := strconv.ParseInt(n, 10, 64)
			w.HIncrBy(k.loyaltyEarned(survivor), month, points)
		}
		for _, z := range mg.ledger {
			w.ZAdd(k.loyaltyLedger(survivor), z.Score, z.Member.(string))
		}
		w.Delete(k.loyalty(merged)).Delete(k.loyaltyEarned(merged)).Delete(k.loyaltyLedger(merged))
	}

	// Referral codes now name the survivor.
	for i, rc := range mg.codes {
		moved := &marketingv1.ReferralCode{Code: rc.GetCode(), CustomerId: survivor, CreateTime: rc.GetCreateTime()}
		w.Save(k.referral(rc.GetCode()), moved, mg.codeVersions[i], etag.Next(mg.codeVersions[i])).
			HSet(k.referral(rc.GetCode()), "customer", survivor).
			ZAdd(k.referralsOf(survivor), 0, rc.GetCode())
	}
	w.Delete(k.referralsOf(merged))

	// The first order claimed: the survivor's, else the merged customer's.
	if mg.firstOf != "" {
		if sv.firstOf == "" {
			w.HSet(k.firstOrders(), survivor, mg.firstOf)
		}
		w.HDel(k.firstOrders(), merged)
	}

	// What sales said the merged customer is worth: sales restates the survivor's value after
	// the merge; the merged customer's leaves the rankings and the repeat customers' history
	// (which sums the kept values, so the restated survivor counts the combined orders once).
	if v := mg.value; v != nil {
		w.ExpectVersion(k.customerValue(merged), v.GetEtag()).Delete(k.customerValue(merged)).Move(k.valueMembers(v), nil)
		if span := salesv1.RepeatSpan(v); span != 0 {
			w.HIncrBy(k.valueHistory(), fieldSpanSum, -span)
		}
		if v.GetOrderCount() >= 2 {
			w.HIncrBy(k.valueHistory(), fieldRepeat, -1)
		}
	}

	// Leads: the merged customer's lead belongs to the survivor; both carry the combined consent.
	if l := mw.MergedLead; l != nil {
		prev := r.MergedLead
		w.Save(k.lead(l.GetId()), l, prev.GetEtag(), l.GetEtag()).Move(k.indexes(prev), k.indexes(l)).
			HDel(k.customerLeads(), merged)
		if mw.SurvivorLead == nil {
			w.HSet(k.customerLeads(), survivor, l.GetId())
		}
	}
	if l := mw.SurvivorLead; l != nil {
		prev := r.SurvivorLead
		w.Save(k.lead(l.GetId()), l, prev.GetEtag(), l.GetEtag()).Move(k.indexes(prev), k.indexes(l))
	}

	err := w.Run(ctx, s.rdb)
	if _, short := errors.AsType[*commit.InsufficientError](err); short || errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}
