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
	// row) or as its write makes it, and Updated is its update time: a new record's id is minted for
	// its write, and the time tells an update from a concurrent import's identical one.
	Key, ID, Etag string
	Updated       time.Time
}

// mark is a record exactly as one write makes it.
type mark struct {
	id, etag string
	updated  time.Time
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

// roundsMax bounds the rounds of rows that keep losing races.
const roundsMax = 8

// Upsert runs the rounds over a batch of n rows and returns each row's outcome. A round the store
// failed (its reads, or its writes in transit) is planned again, up to TransitAttempts times; its
// writes may have been applied, even after the next round's reads: a row a later round finds
// exactly as a failed round planned it (the record's id, etag and update time) counts as what it
// was planned as, not as skipped, so the counts stay exact.
func Upsert[W any](ctx context.Context, n int, r Rounds[W]) ([]Outcome, error) {
	out := make([]Outcome, n)
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	sent := map[mark]Result{}
	lost, transit := 0, 0
	for round := 0; len(todo) > 0; round++ {
		if lost == roundsMax {
			for _, i := range todo {
				out[i] = Outcome{Err: RowError(r.KeyField, ReasonConflict, "the record kept changing concurrently; import the row again")}
			}
			break
		}
		if round > 0 {
			if err := contended(ctx, round); err != nil {
				return nil, err
			}
		}
		retry, err := upsertRound(ctx, r, todo, out, sent)
		if err != nil {
			transit++
			if _, classified := apierr.As(err); classified || ctx.Err() != nil || transit >= TransitAttempts {
				return nil, err
			}
			continue
		}
		if len(retry) > 0 {
			lost++
		}
		todo = retry
	}
	return out, nil
}

// upsertRound plans and commits the rows todo, and returns those that lost a race. When the store
// fails once the writes are sent, it records them in sent and returns the error.
func upsertRound[W any](ctx context.Context, r Rounds[W], todo []int, out []Outcome, sent map[mark]Result) ([]int, error) {
	steps, err := r.Plan(ctx, todo)
	if err != nil {
		return nil, err
	}
	writes := make([]*W, 0, len(steps))
	planned := make([]Step[W], 0, len(steps))
	for _, s := range steps {
		if s.Write == nil {
			out[s.Row] = s.Outcome
			if p, ok := sent[mark{s.ID, s.Etag, s.Updated}]; ok && s.Outcome.Result == Skipped {
				out[s.Row] = Outcome{Result: p} // this import's own write, from a round cut in transit
			}
			continue
		}
		writes, planned = append(writes, s.Write), append(planned, s)
	}
	if len(writes) == 0 {
		return nil, nil
	}
	// Once sent, a round the store failed is planned again, its applied writes with it.
	failed := func(err error) error {
		for _, s := range planned {
			sent[mark{s.ID, s.Etag, s.Updated}] = s.Planned
		}
		return err
	}
	errs, err := r.Commit(ctx, writes)
	if err != nil {
		if _, classified := apierr.As(err); classified {
			return nil, err
		}
		return nil, failed(err)
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
				return nil, failed(werr)
			}
			reason := ReasonConflict
			if e.Kind == apierr.InvalidArgument {
				reason = ReasonInvalidValue // a reference to nothing (an unknown account)
			}
			out[s.Row] = Outcome{Err: RowErrorOf(reason, e)}
		}
	}
	return retry, nil
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
