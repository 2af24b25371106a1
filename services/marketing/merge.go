package marketing

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/etag"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// How a merge reaches marketing's own records: MergeCustomers commits the registry's half and
// announces "marketing.customer.merged"; marketing's consumer of its own stream (customerMerged)
// then moves the merged customer's ladder facts, lifecycle, loyalty account and ledger, referral
// codes, first-order claim and lead to the survivor in one atomic write (all of a tenant's
// marketing keys share one slot), and recomputes the survivor's stage from the combined facts.
// The write removes what it moved from the merged customer, so a redelivered event (or a consumer
// that died after the write) finds nothing left to move; one that died before it moves it all.

// MergeRead is what a merge reads of both customers. Snapshot is the store's raw read, which
// CommitMerge writes from and checks is still current.
type MergeRead struct {
	SurvivorLifecycle, MergedLifecycle *CustomerLifecycle
	SurvivorLead, MergedLead           *Lead
	// SurvivorLoyalty, MergedLoyalty are the accounts with the trailing year's earnings; nil for none.
	SurvivorLoyalty, MergedLoyalty *LoyaltyState
	// Combined are the ladder facts of both customers together.
	Combined Facts
	// Pending says the merged customer still has marketing records to move.
	Pending  bool
	Snapshot any
}

// MergeWrite is marketing's half of a merge, committed atomically by CommitMerge: everything of
// the merged customer moves to the survivor and is removed from the merged customer.
type MergeWrite struct {
	Survivor, Merged string
	// Lifecycle is the survivor's new lifecycle (the histories of both, and the stage of the
	// combined facts); nil when neither customer has one.
	Lifecycle *LifecycleWrite
	// SurvivorLead, MergedLead are the leads after the merge (nil: none): the merged customer's
	// lead belongs to the survivor, and both carry the combined consent.
	SurvivorLead, MergedLead *Lead
	// Tier is the survivor's loyalty tier after the balances are added up.
	Tier marketingv1.LoyaltyTier
}

// MergeStore reads and commits marketing's half of a merge.
type MergeStore interface {
	ReadMerge(ctx context.Context, tenant, survivor, merged string, months []string) (*MergeRead, error)
	// CommitMerge commits w over r; ErrStale when any record read changed since.
	CommitMerge(ctx context.Context, tenant string, r *MergeRead, w *MergeWrite) error
}

// CauseMerge is the cause of the stage move a merge makes.
const CauseMerge = "marketing.customer.merged"

// customerMerged moves the merged customer's marketing records to the survivor and restages the
// survivor from the combined facts (never simply the furthest stage of the two, which would let
// an old churned record churn an active buyer).
func (r *Reactions) customerMerged(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	// The survivor erased since (Leads.Erase) took the merged customer's records with theirs:
	// nothing is left to move, and no lifecycle is to start for an erased person.
	if _, err := r.store.GetCustomer(ctx, tenant, survivor); errors.Is(err, ErrCustomerNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	program, err := r.loyalty.Program(ctx, tenant)
	if err != nil {
		return err
	}
	// The merge's stage uses the window read here; the restage below recomputes it with the
	// settings check, should the window change meanwhile.
	settings, err := r.lifecycle.Settings(ctx, tenant)
	if err != nil {
		return err
	}
	for range moveAttempts {
		now := r.now().UTC()
		read, err := r.store.ReadMerge(ctx, tenant, survivor, merged, trailingMonths(now))
		if err != nil {
			return err
		}
		if !read.Pending {
			break
		}
		w, err := r.planMerge(ctx, tenant, survivor, merged, read, program, ChurnWindow(settings), ev.GetId(), now)
		if err != nil {
			return err
		}
		err = r.store.CommitMerge(ctx, tenant, read, w)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	if err := r.store.CancelChurn(ctx, tenant, merged); err != nil {
		return err
	}
	// The stage is in place; this keeps the survivor's churn schedule (and restages if a fact
	// arrived since).
	return r.restage(ctx, tenant, survivor, CauseMerge, "")
}

// planMerge plans the write of a merge from what was read.
func (r *Reactions) planMerge(ctx context.Context, tenant, survivor, merged string, read *MergeRead, program *LoyaltyProgram, window time.Duration, eventID string, now time.Time) (*MergeWrite, error) {
	w := &MergeWrite{Survivor: survivor, Merged: merged}
	if read.SurvivorLifecycle != nil || read.MergedLifecycle != nil {
		lw, err := r.mergedLifecycle(ctx, tenant, survivor, read, window, eventID, now)
		if err != nil {
			return nil, err
		}
		w.Lifecycle = lw
	}
	consent := mostRestrictive(read.SurvivorLead.GetConsent(), read.MergedLead.GetConsent())
	ts := timestamppb.New(now)
	if l := read.SurvivorLead; l != nil {
		w.SurvivorLead = withConsent(l, consent, ts)
	}
	if l := read.MergedLead; l != nil {
		w.MergedLead = withConsent(l, consent, ts)
		w.MergedLead.CustomerId = survivor
	}
	var earned int64
	for _, st := range []*LoyaltyState{read.SurvivorLoyalty, read.MergedLoyalty} {
		if st != nil {
			for _, n := range st.EarnedByMonth {
				earned += n
			}
		}
	}
	w.Tier = TierFor(program, earned)
	return w, nil
}

// mergedLifecycle is the survivor's lifecycle after a merge: both histories in time order, and,
// when the combined facts give another stage, the move there caused by the merge.
func (r *Reactions) mergedLifecycle(ctx context.Context, tenant, survivor string, read *MergeRead, window time.Duration, eventID string, now time.Time) (*LifecycleWrite, error) {
	cur := read.SurvivorLifecycle
	if cur == nil {
		// The survivor never entered the lifecycle: it takes the merged customer's place.
		cur = proto.CloneOf(read.MergedLifecycle)
		cur.CustomerId, cur.History = survivor, nil
	}
	next := proto.CloneOf(cur)
	next.History = slices.Concat(read.SurvivorLifecycle.GetHistory(), read.MergedLifecycle.GetHistory())
	slices.SortStableFunc(next.History, func(a, b *marketingv1.StageMove) int {
		return a.GetTime().AsTime().Compare(b.GetTime().AsTime())
	})
	for _, reason := range read.MergedLifecycle.GetAtRiskReasons() {
		if !slices.Contains(next.AtRiskReasons, reason) {
			next.AtRiskReasons = append(next.AtRiskReasons, reason)
		}
	}
	next.AtRisk = len(next.AtRiskReasons) > 0
	next.UpdateTime, next.Etag = timestamppb.New(now), etag.Next(read.SurvivorLifecycle.GetEtag())
	w := &LifecycleWrite{Next: next}
	if to := StageOf(combinedFacts(read), cur.GetStage(), window, r.now()); to != cur.GetStage() {
		var err error
		if w, err = climbTo(ctx, r.lifecycle.publisher, tenant, survivor, next, LifecycleMove{Stage: to, Cause: CauseMerge, EventID: eventID}, now); err != nil {
			return nil, err
		}
	}
	w.Prev = read.SurvivorLifecycle
	// The funnel keeps entered - exited == customers in every stage. The store stops counting the
	// merged customer in their stage ("in:" -1).
	switch ml := read.MergedLifecycle; {
	case w.Prev == nil && w.Next.GetStage() == cur.GetStage():
		// The survivor carries the merged customer's lifecycle on: counted in its stage from now
		// on, it entered no stage anew and the merged customer left none.
		w.Funnel = map[string]int64{"in:" + stageName(w.Next.GetStage()): 1}
		w.PeriodFunnel, w.FunnelPeriods = nil, nil
	case w.Prev == nil:
		// Carried on, and moved on from the merged customer's stage: the move's counters, whose
		// "in:" -1 of that stage the store already makes.
		w.Funnel["in:"+stageName(cur.GetStage())]++
	case ml != nil:
		// The merged customer's own record leaves its stage: its stay there ends, an exit like
		// any other (the stage's customers fall by one, and so must its entered - exited).
		if w.Funnel == nil {
			w.Funnel, w.PeriodFunnel, w.FunnelPeriods = map[string]int64{}, map[string]int64{}, PeriodsOf(now)
		}
		stay := "stayms:" + stageName(ml.GetStage()) + ":" + strconv.Itoa(stayBucket(now.Sub(ml.GetStageTime().AsTime())))
		w.Funnel[stay]++
		w.PeriodFunnel[stay]++
	}
	return w, nil
}

// combinedFacts are the ladder facts of both customers together. Only a SUSPECT records the
// engaged fact (engaged_reactions.go): a person who entered as a PROSPECT (captured, or a contact
// sales talks to) or went further was engaged all the same, which their stage says. Without it,
// merging a captured lead into an imported SUSPECT would keep the SUSPECT.
func combinedFacts(read *MergeRead) Facts {
	f := read.Combined
	f.Engaged = f.Engaged || pastSuspect(read.SurvivorLifecycle) || pastSuspect(read.MergedLifecycle)
	return f
}

// pastSuspect says a lifecycle has a stage beyond SUSPECT (none moves back to it).
func pastSuspect(lc *CustomerLifecycle) bool {
	switch lc.GetStage() {
	case marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED, marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT:
		return false
	}
	return true
}

// mostRestrictive combines two people's consent per channel: a withdrawal on either side wins
// (a merge never undoes one), otherwise the grant stands. Of two records of the same kind the
// later one is kept.
func mostRestrictive(a, b []*marketingv1.Consent) []*marketingv1.Consent {
	var out []*marketingv1.Consent
	for _, c := range slices.Concat(a, b) {
		i := slices.IndexFunc(out, func(x *marketingv1.Consent) bool { return x.GetChannel() == c.GetChannel() })
		switch {
		case i < 0:
			out = append(out, proto.CloneOf(c))
		case out[i].GetGranted() && !c.GetGranted(),
			out[i].GetGranted() == c.GetGranted() && c.GetUpdateTime().AsTime().After(out[i].GetUpdateTime().AsTime()):
			out[i] = proto.CloneOf(c)
		}
	}
	slices.SortFunc(out, func(x, y *marketingv1.Consent) int { return cmp.Compare(x.GetChannel(), y.GetChannel()) })
	return out
}

// withConsent is l with consent, or l itself when its consent is that already.
func withConsent(l *Lead, consent []*marketingv1.Consent, ts *timestamppb.Timestamp) *Lead {
	next := proto.CloneOf(l)
	next.Consent = consent
	next.UpdateTime, next.Etag = ts, etag.Next(l.GetEtag())
	return next
}

// survivorOf is the customer whose records customer's are: customer itself, or the survivor of
// the merge that took it in. Events about a merged customer that arrive after its merge (orders
// placed before it, say) land on the survivor.
func (r *Reactions) survivorOf(ctx context.Context, tenant, customer string) (string, error) {
	c, err := r.store.GetCustomer(ctx, tenant, customer)
	if errors.Is(err, ErrCustomerNotFound) {
		return customer, nil
	}
	if err != nil {
		return "", err
	}
	if s := c.GetMergedInto(); s != "" {
		return s, nil
	}
	return customer, nil
}
