package importer

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Step is what a round plans for one row of a batch: an outcome now (a row that changes nothing
// is Skipped, a row that cannot be written Failed) or, with Write set, a write that Commit sends
// and that makes the row Planned (Created or Updated).
type Step[W any] struct {
	// Row is the row's index in the batch.
	Row     int
	Outcome Outcome
	Write   *W
	Planned Result
	// Key is the row's natural key; ID and Etag name the record as the round found it (a skipped
	// row) or as its write makes it.
	Key, ID, Etag string
}

// Rounds are a kind's upsert of a batch in rounds, each planned from fresh reads: a row whose
// write lost a race with a concurrent write (its record changed, its key was taken) is planned
// again in the next round.
type Rounds[W any] struct {
	// Plan reads the records of the rows todo (indexes into the batch) and plans each one.
	Plan func(ctx context.Context, todo []int) ([]Step[W], error)
	// Commit sends the writes, many per round trip, each atomic: one error per write.
	Commit func(ctx context.Context, writes []*W) ([]error, error)
	// Lost reports whether a write's error means a concurrent write came first (plan it again);
	// otherwise a classified error (apierr) fails the row with its message, and any other error
	// is the store failing.
	Lost func(error) bool
	// KeyField names the column a row that never stops losing races is failed on.
	KeyField string
}

// roundsMax bounds the rounds of rows that keep losing races; transitMax the rounds whose
// commit failed in transit (a timeout on a busy store) before the batch fails.
const (
	roundsMax  = 8
	transitMax = 3
)

// Upsert runs the rounds over a batch of n rows and returns each row's outcome. A round whose
// writes failed in transit may have applied them: a row a later round finds exactly as that round
// planned it (the record's id and etag) counts as what it was planned as, not as skipped, so the
// counts stay exact.
func Upsert[W any](ctx context.Context, n int, r Rounds[W]) ([]Outcome, error) {
	out := make([]Outcome, n)
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	sent := map[string]Step[W]{}
	transit := 0
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == roundsMax {
			for _, i := range todo {
				out[i] = Outcome{Err: RowError(r.KeyField, ReasonConflict, "the record kept changing concurrently; import the row again")}
			}
			break
		}
		if attempt > 0 {
			if err := contended(ctx, attempt); err != nil {
				return nil, err
			}
		}
		steps, err := r.Plan(ctx, todo)
		if err != nil {
			return nil, err
		}
		writes := make([]*W, 0, len(steps))
		planned := make([]Step[W], 0, len(steps))
		for _, s := range steps {
			if s.Write == nil {
				out[s.Row] = s.Outcome
				if p, ok := sent[s.Key]; ok && s.Outcome.Result == Skipped && p.ID == s.ID && p.Etag == s.Etag {
					out[s.Row] = Outcome{Result: p.Planned} // this import's own write, from a round cut in transit
				}
				continue
			}
			writes, planned = append(writes, s.Write), append(planned, s)
		}
		if len(writes) == 0 {
			break
		}
		errs, err := r.Commit(ctx, writes)
		if err != nil {
			for _, s := range planned {
				sent[s.Key] = s
			}
			transit++
			if _, classified := apierr.As(err); classified || ctx.Err() != nil || transit >= transitMax {
				return nil, err
			}
			continue
		}
		var retry []int
		for j, werr := range errs {
			s := planned[j]
			switch {
			case werr == nil:
				out[s.Row] = Outcome{Result: s.Planned}
			case r.Lost(werr):
				retry = append(retry, s.Row)
			default:
				e, ok := apierr.As(werr)
				if !ok {
					return nil, werr
				}
				reason := ReasonConflict
				if e.Kind == apierr.InvalidArgument {
					reason = ReasonInvalidValue // a reference to nothing (an unknown account)
				}
				out[s.Row] = Outcome{Err: RowErrorOf(reason, e)}
			}
		}
		todo = retry
	}
	return out, nil
}

// RowErrorOf is a refused record or write as a row error of reason: its first field, named as
// the column is (contact.account_id is accountId), and its description.
func RowErrorOf(reason string, e *apierr.Error) *typev1.ImportRowError {
	field, msg := "", e.Message
	if len(e.Fields) > 0 {
		field, msg = Column(e.Fields[0].Field), e.Fields[0].Description
	}
	return RowError(field, reason, msg)
}

// Column is the column of a field path: its last part in lowerCamelCase, without a list index
// (".contact.given_name" and "tags[2]" are givenName and tags).
func Column(field string) string {
	field, _, _ = strings.Cut(field[strings.LastIndexByte(field, '.')+1:], "[")
	parts := strings.Split(field, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// contended waits a jittered moment, growing with the attempt (up to ~10 ms), before rows that
// lost a race are planned again.
func contended(ctx context.Context, attempt int) error {
	t := time.NewTimer(rand.N(time.Duration(min(attempt, 20)) * 500 * time.Microsecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
