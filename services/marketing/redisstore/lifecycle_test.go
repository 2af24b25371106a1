package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/apierr"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

const (
	prospect = marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT
	first    = marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
	repeat   = marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER
	client   = marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
	advocate = marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE
	churned  = marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED
)

func (f fixture) lifecycle(now func() time.Time) *marketing.Lifecycle {
	return marketing.NewLifecycle(f.store, f.publisher(), now)
}

func TestCaptureEntersProspectAndRedeliveryMovesOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lc := f.lifecycle(time.Now)
	lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "life@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := lc.Get(ctx, f.tenant, lead.GetCustomerId())
	if err != nil {
		t.Fatal(err)
	}
	captured := f.eventsOfType(t, marketingv1.EventLeadCaptured.Name)[0].GetId()
	if got.GetStage() != prospect || len(got.GetHistory()) != 1 || got.GetHistory()[0].GetCauseEventId() != captured {
		t.Fatalf("lifecycle after capture = %v, want PROSPECT entered by the capture event %s", got, captured)
	}
	order := marketing.LifecycleMove{Stage: first, Cause: "sales.order.placed", EventID: uuid.NewString()}
	for range 3 {
		if got, err = lc.Move(ctx, f.tenant, lead.GetCustomerId(), order); err != nil {
			t.Fatal(err)
		}
	}
	funnel, err := lc.Funnel(ctx, f.tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetHistory()) != 2 || funnel.GetStages()[2].GetEntered() != 1 || len(f.eventsOfType(t, marketingv1.EventLifecycleStageChanged.Name)) != 2 {
		t.Fatalf("after one order delivered three times: history %v, FIRST_TIME entered %d; want 2 moves, 1 entry",
			got.GetHistory(), funnel.GetStages()[2].GetEntered())
	}
	if _, err := lc.Move(ctx, f.tenant, lead.GetCustomerId(), marketing.LifecycleMove{Stage: prospect, Cause: "x"}); !errors.Is(err, marketing.ErrLifecycleMove) {
		t.Fatalf("backward move: %v, want ErrLifecycleMove", err)
	}
	if _, err := lc.SetAtRisk(ctx, f.tenant, uuid.NewString(), "nps-detractor", "", ""); !errors.Is(err, marketing.ErrLifecycleNotFound) {
		t.Fatalf("at risk for an unknown customer: %v, want ErrLifecycleNotFound", err)
	}
	for _, step := range []struct {
		set, reason string
		want        []string
	}{{"set", "nps-detractor", []string{"nps-detractor"}}, {"set", "sla-breach", []string{"nps-detractor", "sla-breach"}},
		{"set", "sla-breach", []string{"nps-detractor", "sla-breach"}}, {"clear", "nps-detractor", []string{"sla-breach"}}, {"clear", "", nil}} {
		if step.set == "set" {
			got, err = lc.SetAtRisk(ctx, f.tenant, lead.GetCustomerId(), step.reason, "", "")
		} else {
			got, err = lc.ClearAtRisk(ctx, f.tenant, lead.GetCustomerId(), step.reason, "", "")
		}
		if err != nil || !slices.Equal(got.GetAtRiskReasons(), step.want) || got.GetAtRisk() != (len(step.want) > 0) {
			t.Fatalf("%s %q: %v %v, want reasons %v", step.set, step.reason, got, err, step.want)
		}
	}
	if n := len(f.eventsOfType(t, marketingv1.EventLifecycleAtRiskChanged.Name)); n != 4 {
		t.Fatalf("%d at_risk_changed events, want 4 (the repeated reason changed nothing)", n)
	}
}

func TestConcurrentLifecycleMovesKeepAConsistentHistory(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lc := f.lifecycle(time.Now)
	customer := uuid.NewString()
	if _, err := lc.Move(ctx, f.tenant, customer, marketing.LifecycleMove{Stage: prospect, Cause: "import"}); err != nil {
		t.Fatal(err)
	}
	targets := []marketing.Stage{first, repeat, client, advocate, churned}
	redelivered := uuid.NewString()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			m := marketing.LifecycleMove{Stage: targets[i%len(targets)], Cause: "race", EventID: uuid.NewString()}
			if i%4 == 0 { // ten deliveries of one event
				m = marketing.LifecycleMove{Stage: first, Cause: "race", EventID: redelivered}
			}
			if _, err := lc.Move(ctx, f.tenant, customer, m); err != nil {
				if e, ok := apierr.As(err); !ok || e.Reason != "LIFECYCLE_MOVE" {
					t.Errorf("move: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got, err := lc.Get(ctx, f.tenant, customer)
	if err != nil {
		t.Fatal(err)
	}
	funnel, err := lc.Funnel(ctx, f.tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	h := got.GetHistory()
	var inStage int64
	for _, s := range funnel.GetStages() {
		inStage += s.GetCustomers()
	}
	var moves int64
	for _, c := range funnel.GetConversions() {
		moves += c.GetMoves()
	}
	redeliveries := 0
	for i, m := range h {
		if i > 0 && (m.GetFrom() != h[i-1].GetTo() || !marketing.CanMoveStage(m.GetFrom(), m.GetTo())) {
			t.Fatalf("history breaks at %d: %v", i, h)
		}
		if m.GetCauseEventId() == redelivered {
			redeliveries++
		}
	}
	if h[len(h)-1].GetTo() != got.GetStage() || inStage != 1 || moves != int64(len(h)-1) || redeliveries > 1 ||
		len(f.eventsOfType(t, marketingv1.EventLifecycleStageChanged.Name)) != len(h) {
		t.Fatalf("history %v ends at %v (stage %v); funnel counts %d customers, %d moves; redelivered event applied %d times",
			h, h[len(h)-1].GetTo(), got.GetStage(), inStage, moves, redeliveries)
	}
}

func TestFunnelMatchesAnIndependentComputation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lc := f.lifecycle(c.Now)
	rng := rand.New(rand.NewPCG(3, 4))
	paths := [][]marketing.Stage{
		{prospect}, {prospect, first}, {prospect, first, repeat}, {prospect, client, advocate},
		{prospect, first, churned}, {prospect, first, churned, repeat}, {first, repeat, client},
	}
	customers := make([]string, 300)
	plans := make([][]marketing.Stage, len(customers))
	for i := range customers {
		customers[i], plans[i] = uuid.NewString(), paths[rng.IntN(len(paths))]
	}
	wantIn, wantEntered, wantMoves := map[marketing.Stage]int64{}, map[marketing.Stage]int64{}, map[[2]marketing.Stage]int64{}
	stays := map[marketing.Stage][]time.Duration{}
	// Customers advance in rounds, so stays of one stage have varied, known lengths.
	for round := range 4 {
		for i, customer := range customers {
			if round >= len(plans[i]) {
				continue
			}
			stay := time.Duration(1+rng.IntN(90*24*60)) * time.Minute
			c.advance(stay)
			to := plans[i][round]
			cur, err := lc.Get(ctx, f.tenant, customer)
			if err == nil {
				wantIn[cur.GetStage()]--
				wantMoves[[2]marketing.Stage{cur.GetStage(), to}]++
				stays[cur.GetStage()] = append(stays[cur.GetStage()], c.Now().Sub(cur.GetStageTime().AsTime()))
			}
			if _, err := lc.Move(ctx, f.tenant, customer, marketing.LifecycleMove{Stage: to, Cause: "test"}); err != nil {
				t.Fatal(err)
			}
			wantIn[to]++
			wantEntered[to]++
		}
	}
	funnel, err := lc.Funnel(ctx, f.tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range funnel.GetStages() {
		s := row.GetStage()
		if row.GetCustomers() != wantIn[s] || row.GetEntered() != wantEntered[s] || row.GetExited() != int64(len(stays[s])) {
			t.Errorf("%v: %d in, %d entered, %d exited; want %d, %d, %d", s, row.GetCustomers(), row.GetEntered(), row.GetExited(),
				wantIn[s], wantEntered[s], len(stays[s]))
		}
		if len(stays[s]) == 0 {
			if row.GetMedianTimeInStage() != nil {
				t.Errorf("%v: median %v without exits", s, row.GetMedianTimeInStage())
			}
			continue
		}
		sorted := slices.Clone(stays[s])
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		exact := sorted[(len(sorted)-1)/2]
		got := row.GetMedianTimeInStage().AsDuration()
		if ratio := math.Abs(math.Log2(float64(got) / float64(exact))); ratio > 1.0/8+1e-9 {
			t.Errorf("%v: median %v, exact %v: off by more than a half bucket", s, got, exact)
		}
	}
	var conversions []string
	for _, cv := range funnel.GetConversions() {
		pair := [2]marketing.Stage{cv.GetFrom(), cv.GetTo()}
		rate := float64(wantMoves[pair]) / float64(wantEntered[cv.GetFrom()])
		if cv.GetMoves() != wantMoves[pair] || math.Abs(cv.GetRate()-rate) > 1e-12 {
			t.Errorf("%v -> %v: %d moves at %v, want %d at %v", cv.GetFrom(), cv.GetTo(), cv.GetMoves(), cv.GetRate(), wantMoves[pair], rate)
		}
		conversions = append(conversions, fmt.Sprint(pair))
	}
	if len(conversions) != len(wantMoves) {
		t.Errorf("%d conversions reported, want %d", len(conversions), len(wantMoves))
	}
}

// TestPeriodFunnelsMatchAnIndependentComputation moves generated customers along the ladder under
// a controlled clock across seven months, stays from a millisecond to weeks, then checks the
// funnel of every month and quarter (and an empty one) against the moves themselves.
func TestPeriodFunnelsMatchAnIndependentComputation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	lc := f.lifecycle(c.Now)
	rng := rand.New(rand.NewPCG(14, 11))
	ladder := []marketing.Stage{prospect, first, repeat, client, advocate}
	type move struct {
		from, to marketing.Stage
		stay     time.Duration
		at       time.Time
	}
	var moves []move
	customers := make([]string, 200)
	for i := range customers {
		customers[i] = uuid.NewString()
	}
	current := map[string]*marketing.CustomerLifecycle{}
	for c.Now().Before(start.AddDate(0, 7, 0)) {
		i := rng.IntN(len(customers))
		stay := time.Duration(1+rng.IntN(5)) * time.Millisecond // a burst: stays of milliseconds
		if rng.IntN(3) > 0 {
			stay = time.Duration(rng.Int64N(int64(10 * 24 * time.Hour)))
		}
		c.advance(stay)
		cur := current[customers[i]]
		to := prospect
		if cur != nil {
			k := slices.Index(ladder, cur.GetStage())
			if k == len(ladder)-1 {
				continue
			}
			to = ladder[k+1+rng.IntN(len(ladder)-k-1)]
		}
		next, err := lc.Move(ctx, f.tenant, customers[i], marketing.LifecycleMove{Stage: to, Cause: "test"})
		if err != nil {
			t.Fatal(err)
		}
		m := move{to: to, at: c.Now()}
		if cur != nil {
			m.from, m.stay = cur.GetStage(), c.Now().Sub(cur.GetStageTime().AsTime())
		}
		moves = append(moves, m)
		current[customers[i]] = next
	}

	periods := []string{"2025-12", "2026-Q1", "2026-Q2", "2026-Q3"}
	for m := range 8 {
		periods = append(periods, start.AddDate(0, m, 0).Format("2006-01"))
	}
	for _, p := range periods {
		got, err := lc.Funnel(ctx, f.tenant, p)
		if err != nil {
			t.Fatal(err)
		}
		entered, exited, onward := map[marketing.Stage]int64{}, map[marketing.Stage][]time.Duration{}, map[marketing.Stage]int64{}
		pairs := map[[2]marketing.Stage]int64{}
		for _, m := range moves {
			if !slices.Contains(marketing.PeriodsOf(m.at), p) {
				continue
			}
			entered[m.to]++
			if m.from != 0 {
				exited[m.from] = append(exited[m.from], m.stay)
				pairs[[2]marketing.Stage{m.from, m.to}]++
				onward[m.from]++
			}
		}
		if got.GetPeriod() != p || len(got.GetConversions()) != len(pairs) {
			t.Errorf("%s: period %q, %d conversions; want %d", p, got.GetPeriod(), len(got.GetConversions()), len(pairs))
		}
		for _, cv := range got.GetConversions() {
			if want := pairs[[2]marketing.Stage{cv.GetFrom(), cv.GetTo()}]; cv.GetMoves() != want {
				t.Errorf("%s: %v -> %v: %d moves, want %d", p, cv.GetFrom(), cv.GetTo(), cv.GetMoves(), want)
			}
		}
		for _, row := range got.GetStages() {
			s := row.GetStage()
			if row.GetEntered() != entered[s] || row.GetExited() != int64(len(exited[s])) || row.GetCustomers() != 0 {
				t.Errorf("%s %v: entered %d, exited %d, customers %d; want %d, %d, 0", p, s, row.GetEntered(), row.GetExited(), row.GetCustomers(),
					entered[s], len(exited[s]))
			}
			if want := float64(onward[s]) / float64(max(entered[s], onward[s], 1)); math.Abs(row.GetConversionRate()-want) > 1e-12 {
				t.Errorf("%s %v: conversion %v, want %v", p, s, row.GetConversionRate(), want)
			}
			if len(exited[s]) == 0 {
				if row.GetMedianTimeInStage() != nil {
					t.Errorf("%s %v: a median without exits", p, s)
				}
				continue
			}
			checkMedian(t, fmt.Sprint(p, " ", s), exited[s], row.GetMedianTimeInStage().AsDuration(), got.GetMedianRelativeError())
		}
		if p == "2025-12" && (len(got.GetConversions()) != 0 || slices.ContainsFunc(got.GetStages(), func(r *marketingv1.StageStatistics) bool { return r.GetEntered() > 0 })) {
			t.Errorf("the empty period counts moves: %v", got)
		}
	}

	// The series is the same funnels, oldest first, ending with the period asked for.
	series, err := lc.FunnelSeries(ctx, f.tenant, "2026-06", 6)
	if err != nil {
		t.Fatal(err)
	}
	for i, fn := range series {
		one, _ := lc.Funnel(ctx, f.tenant, start.AddDate(0, i, 0).Format("2006-01"))
		if fn.GetPeriod() != one.GetPeriod() || fmt.Sprint(fn) != fmt.Sprint(one) {
			t.Errorf("series[%d] = %v, want %v", i, fn.GetPeriod(), one.GetPeriod())
		}
	}
}

// TestMillisecondStayIsReportedAsSuch: a stay of 3 ms is a median of about 3 ms, within the
// stated bound, not a minute.
func TestMillisecondStayIsReportedAsSuch(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)}
	lc := f.lifecycle(c.Now)
	for _, stay := range []time.Duration{3 * time.Millisecond, 400 * time.Microsecond} {
		customer := uuid.NewString()
		if _, err := lc.Move(ctx, f.tenant, customer, marketing.LifecycleMove{Stage: prospect, Cause: "test"}); err != nil {
			t.Fatal(err)
		}
		c.advance(stay)
		if _, err := lc.Move(ctx, f.tenant, customer, marketing.LifecycleMove{Stage: first, Cause: "test"}); err != nil {
			t.Fatal(err)
		}
		got, err := lc.Funnel(ctx, f.tenant, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		median := got.GetStages()[slices.Index(marketing.AllStages, prospect)].GetMedianTimeInStage().AsDuration()
		checkMedian(t, fmt.Sprint(stay, " stay"), []time.Duration{stay}, median, got.GetMedianRelativeError())
		f = setup(t)
		lc = f.lifecycle(c.Now)
	}
}

// checkMedian checks a histogram median against the exact one within the stated bound: relative
// from 1 ms up, half a millisecond below.
func checkMedian(t *testing.T, what string, stays []time.Duration, got time.Duration, bound float64) {
	t.Helper()
	sorted := slices.Clone(stays)
	slices.Sort(sorted)
	exact := sorted[(len(sorted)-1)/2]
	if exact < time.Millisecond {
		if got < 0 || got > time.Millisecond {
			t.Errorf("%s: median %v, exact %v: more than half a millisecond off", what, got, exact)
		}
		return
	}
	if rel := math.Abs(float64(got)-float64(exact)) / float64(exact); rel > bound+1e-9 {
		t.Errorf("%s: median %v, exact %v: off by %.4f, over the bound %.4f", what, got, exact, rel, bound)
	}
}
