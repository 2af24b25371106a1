package marketing

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/crmcycle/crm/pkg/apierr"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// The funnel is a hash of counters, kept by every move in the move's own commit:
//
//	in:<STAGE>               customers in the stage now (all time only)
//	entered:<STAGE>          times a customer entered it
//	moved:<FROM>:<TO>        moves between two stages
//	stayms:<STAGE>:<bucket>  stays in the stage that ended, by length (see stayBucket)
//
// once for all time and again for the move's calendar month and quarter (UTC), so reading a
// funnel is one HGETALL of a bounded hash, whatever the number of customers or moves.
const (
	stayBucketsPerDoubling = 4
	stayBucketBase         = time.Millisecond
	stayBuckets            = 168 // up to 2^41.75 ms: about 100 years
)

// MedianRelativeError is the bound of a median of 1 ms or more read from the stay histogram: the
// geometric middle of a bucket a quarter of a doubling wide is within 2^(1/8) - 1 of any stay in it.
var MedianRelativeError = math.Exp2(1.0/(2*stayBucketsPerDoubling)) - 1

// stayBucket is the histogram bucket of a stay: bucket 0 holds stays under 1 ms, bucket b >= 1
// those from 2^((b-1)/4) ms up to 2^(b/4) ms.
func stayBucket(d time.Duration) int {
	if d < stayBucketBase {
		return 0
	}
	b := 1 + int(math.Floor(stayBucketsPerDoubling*math.Log2(float64(d)/float64(stayBucketBase))))
	return min(b, stayBuckets-1)
}

// bucketMiddle is what a bucket reports: 0.5 ms for bucket 0, else its geometric middle.
func bucketMiddle(b int) time.Duration {
	if b == 0 {
		return stayBucketBase / 2
	}
	return time.Duration(float64(stayBucketBase) * math.Exp2((float64(b)-0.5)/stayBucketsPerDoubling))
}

func stageName(s Stage) string { return s.String()[len("LIFECYCLE_STAGE_"):] }

// funnelMove is the counter increments of one move; from is UNSPECIFIED for an entry, stayed the
// time spent in from.
func funnelMove(from, to Stage, stayed time.Duration) map[string]int64 {
	inc := map[string]int64{"in:" + stageName(to): 1, "entered:" + stageName(to): 1}
	if from != marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED {
		inc["in:"+stageName(from)] = -1
		inc["moved:"+stageName(from)+":"+stageName(to)]++
		inc["stayms:"+stageName(from)+":"+strconv.Itoa(stayBucket(stayed))]++
	}
	return inc
}

// periodCounters are the increments a period counts: all but the customers in a stage now.
func periodCounters(all map[string]int64) map[string]int64 {
	out := maps.Clone(all)
	maps.DeleteFunc(out, func(field string, _ int64) bool { return strings.HasPrefix(field, "in:") })
	return out
}

// PeriodsOf names the calendar month and quarter of t in UTC: "2026-11" and "2026-Q4".
func PeriodsOf(t time.Time) []string {
	t = t.UTC()
	return []string{t.Format("2006-01"), fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())+2)/3)}
}

// ErrBadPeriod is a period that is neither "YYYY-MM" nor "YYYY-Qn".
var ErrBadPeriod = apierr.Invalid("period", `a period is a month "2026-11" or a quarter "2026-Q4"`)

// period is a calendar month or quarter: its first month and its length in months.
type period struct {
	start  time.Time
	months int
}

func parsePeriod(s string) (period, error) {
	if y, q, ok := strings.Cut(s, "-Q"); ok {
		year, err1 := strconv.Atoi(y)
		n, err2 := strconv.Atoi(q)
		if err1 != nil || err2 != nil || len(y) != 4 || n < 1 || n > 4 {
			return period{}, ErrBadPeriod
		}
		return period{time.Date(year, time.Month(3*n-2), 1, 0, 0, 0, 0, time.UTC), 3}, nil
	}
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return period{}, ErrBadPeriod
	}
	return period{t, 1}, nil
}

func (p period) String() string {
	if p.months == 3 {
		return fmt.Sprintf("%d-Q%d", p.start.Year(), (int(p.start.Month())+2)/3)
	}
	return p.start.Format("2006-01")
}

// Funnel returns the tenant's lifecycle funnel from its counters: of all time when period is
// empty, else of the moves made in that month or quarter.
func (l *Lifecycle) Funnel(ctx context.Context, tenant, period string) (*marketingv1.LifecycleFunnel, error) {
	if period != "" {
		fs, err := l.funnels(ctx, tenant, []string{period})
		if err != nil {
			return nil, err
		}
		return fs[0], nil
	}
	n, err := l.store.FunnelCounters(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return funnelOf(n, true), nil
}

// FunnelSeries returns the funnels of count periods ending with last (the current month when
// empty), oldest first, in one read.
func (l *Lifecycle) FunnelSeries(ctx context.Context, tenant, last string, count int) ([]*marketingv1.LifecycleFunnel, error) {
	if last == "" {
		last = PeriodsOf(l.now())[0]
	}
	end, err := parsePeriod(last)
	if err != nil {
		return nil, err
	}
	names := make([]string, count)
	for i := range count {
		names[i] = period{end.start.AddDate(0, -end.months*(count-1-i), 0), end.months}.String()
	}
	return l.funnels(ctx, tenant, names)
}

func (l *Lifecycle) funnels(ctx context.Context, tenant string, periods []string) ([]*marketingv1.LifecycleFunnel, error) {
	for _, p := range periods {
		if _, err := parsePeriod(p); err != nil {
			return nil, err
		}
	}
	counters, err := l.store.PeriodFunnelCounters(ctx, tenant, periods)
	if err != nil {
		return nil, err
	}
	out := make([]*marketingv1.LifecycleFunnel, len(periods))
	for i, n := range counters {
		out[i] = funnelOf(n, false)
		out[i].Period = periods[i]
	}
	return out, nil
}

// funnelOf reads a funnel from its counters; customers in a stage only for all time.
func funnelOf(n map[string]int64, allTime bool) *marketingv1.LifecycleFunnel {
	f := &marketingv1.LifecycleFunnel{MedianRelativeError: MedianRelativeError}
	for i, s := range AllStages {
		row := &marketingv1.StageStatistics{Stage: s, Entered: n["entered:"+stageName(s)]}
		if allTime {
			row.Customers = n["in:"+stageName(s)]
		}
		var stays []int64
		for b := range stayBuckets {
			stays = append(stays, n["stayms:"+stageName(s)+":"+strconv.Itoa(b)])
			row.Exited += stays[b]
		}
		if row.Exited > 0 {
			row.MedianTimeInStage = durationpb.New(bucketMiddle(medianBucket(stays, row.Exited)))
		}
		var onward int64
		for j, to := range AllStages {
			moves := n["moved:"+stageName(s)+":"+stageName(to)]
			if moves > 0 {
				f.Conversions = append(f.Conversions, &marketingv1.StageConversion{From: s, To: to, Moves: moves,
					Rate: float64(moves) / float64(max(row.Entered, moves))})
			}
			if j > i && to != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
				onward += moves
			}
		}
		if onward > 0 {
			row.ConversionRate = float64(onward) / float64(max(row.Entered, onward))
		}
		f.Stages = append(f.Stages, row)
	}
	return f
}

// medianBucket is the bucket holding the ceil(total/2)-th shortest stay.
func medianBucket(counts []int64, total int64) int {
	var seen int64
	for b, c := range counts {
		if seen += c; seen >= (total+1)/2 {
			return b
		}
	}
	return len(counts) - 1
}
