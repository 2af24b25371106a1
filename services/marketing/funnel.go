package marketing

import (
	"context"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// The funnel is a hash of counters, kept by every move in the move's own commit:
//
//	in:<STAGE>             customers in the stage now
//	entered:<STAGE>        times a customer entered it
//	moved:<FROM>:<TO>      moves between two stages
//	stay:<STAGE>:<bucket>  stays in the stage that ended, by length (see stayBucket)
//
// so reading the funnel is one HGETALL of a bounded hash, whatever the number of customers.
const (
	stayBucketsPerDoubling = 4
	stayBucketBase         = time.Minute
	stayBuckets            = 100 // up to about 2^25 minutes: 60 years
)

// stayBucket is the histogram bucket of a stay: bucket b holds stays from base*2^(b/4) up to
// base*2^((b+1)/4); shorter stays fall in bucket 0.
func stayBucket(d time.Duration) int {
	if d < stayBucketBase {
		return 0
	}
	b := int(math.Floor(stayBucketsPerDoubling * math.Log2(float64(d)/float64(stayBucketBase))))
	return min(b, stayBuckets-1)
}

// bucketMiddle is the geometric middle of a bucket: within 2^(1/8) (9 %) of any stay in it.
func bucketMiddle(b int) time.Duration {
	return time.Duration(float64(stayBucketBase) * math.Exp2((float64(b)+0.5)/stayBucketsPerDoubling))
}

func stageName(s Stage) string { return s.String()[len("LIFECYCLE_STAGE_"):] }

// funnelMove is the counter increments of one move; from is UNSPECIFIED for an entry, stayed the
// time spent in from.
func funnelMove(from, to Stage, stayed time.Duration) map[string]int64 {
	inc := map[string]int64{"in:" + stageName(to): 1, "entered:" + stageName(to): 1}
	if from != marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED {
		inc["in:"+stageName(from)] = -1
		inc["moved:"+stageName(from)+":"+stageName(to)]++
		inc["stay:"+stageName(from)+":"+strconv.Itoa(stayBucket(stayed))]++
	}
	return inc
}

// Funnel returns the tenant's lifecycle funnel from its counters.
func (l *Lifecycle) Funnel(ctx context.Context, tenant string) (*marketingv1.LifecycleFunnel, error) {
	n, err := l.store.FunnelCounters(ctx, tenant)
	if err != nil {
		return nil, err
	}
	f := &marketingv1.LifecycleFunnel{}
	for _, s := range AllStages {
		row := &marketingv1.StageStatistics{Stage: s, Customers: n["in:"+stageName(s)], Entered: n["entered:"+stageName(s)]}
		var stays []int64
		for b := range stayBuckets {
			stays = append(stays, n["stay:"+stageName(s)+":"+strconv.Itoa(b)])
			row.Exited += stays[b]
		}
		if row.Exited > 0 {
			row.MedianTimeInStage = durationpb.New(bucketMiddle(medianBucket(stays, row.Exited)))
		}
		f.Stages = append(f.Stages, row)
		for _, to := range AllStages {
			moves := n["moved:"+stageName(s)+":"+stageName(to)]
			if moves > 0 {
				f.Conversions = append(f.Conversions, &marketingv1.StageConversion{From: s, To: to, Moves: moves,
					Rate: float64(moves) / float64(max(row.Entered, moves))})
			}
		}
	}
	return f, nil
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
