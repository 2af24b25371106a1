package marketing

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/crmcycle/crm/pkg/batch"
)

// captureChunk is how many new leads one store call of CaptureMany writes before it looks at the
// call's deadline again.
const captureChunk = 64

// CaptureMany is Capture of each lead, with its own result, in order (BatchCreateLeads). The
// leads of new e-mails are written together, each still its own atomic write, 32 to a script call
// (the store's ImportLeads): as a Capture each, 1,000 of them cost 1,000 script calls, and on the
// embedded store, whose Lua runs in Go one call at a time, that took 3-5 s, up to the gateway's
// deadline (2.3-3.0 s of CPU for 1,000 new leads; 0.6-0.8 s written together). What that write refuses (the e-mail or the person known, the rules changed: nothing
// written), an e-mail the batch repeats, and a referral then go through Capture one by one, as
// before. Items not started when the deadline nears are batch.ErrNotAttempted, having written
// nothing; a store failure is the error of the items it cut.
func (l *Leads) CaptureMany(ctx context.Context, tenant string, ins []*Lead) ([]*Lead, []error) {
	out, errs := make([]*Lead, len(ins)), make([]error, len(ins))
	start, cancel := batch.StartBy(ctx)
	defer cancel()
	var fresh, one []int // items for the write together, and for Capture
	emails := make([]string, len(ins))
	seen := map[string]bool{}
	for i, in := range ins {
		email, err := NormalizeEmail(in.GetEmail())
		if err != nil || in.GetReferralCode() != "" || seen[email] {
			one = append(one, i)
			continue
		}
		seen[email], emails[i] = true, email
		fresh = append(fresh, i)
	}
	rules, err := l.captureRules(ctx, tenant, false)
	var slowest time.Duration // the longest chunk written so far
	for from := 0; from < len(fresh); from += captureChunk {
		chunk := fresh[from:min(from+captureChunk, len(fresh))]
		if err != nil || start.Err() != nil || !timeFor(ctx, 2*slowest) {
			for _, i := range chunk {
				errs[i] = cmp.Or[error](err, batch.ErrNotAttempted)
			}
			continue
		}
		var refused []int
		began := time.Now()
		refused, err = l.createMany(ctx, tenant, ins, emails, chunk, rules, out)
		slowest = max(slowest, time.Since(began))
		one = append(one, refused...)
		if err != nil {
			for _, i := range chunk {
				errs[i] = err
			}
		}
	}
	slices.Sort(one) // request order: a repeated e-mail's touches follow its first capture
	leads, cerrs := batch.Each(ctx, start, one, func(ctx context.Context, i int) (*Lead, error) {
		return l.Capture(ctx, tenant, ins[i])
	})
	for j, i := range one {
		if errs[i] == nil {
			out[i], errs[i] = leads[j], cerrs[j]
		}
	}
	return out, errs
}

// timeFor reports whether ctx leaves need before its deadline: a chunk is started only when
// twice the slowest one so far still fits, so a machine that slows down mid-batch (the embedded
// store's Lua runs in Go and shares the CPU) still answers before the deadline, the items left
// not attempted.
func timeFor(ctx context.Context, need time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > need
}

// createMany writes the new leads of the items chunk in one store call, setting out for those
// written, and returns the items it refused.
func (l *Leads) createMany(ctx context.Context, tenant string, ins []*Lead, emails []string, chunk []int, rules *ScoringRules, out []*Lead) ([]int, error) {
	now := l.now().UTC()
	writes := make([]LeadWrite, len(chunk))
	for j, i := range chunk {
		w, err := l.createWrite(ctx, tenant, ins[i], emails[i], "", "", rules, now)
		if err != nil {
			return nil, err
		}
		writes[j] = w
	}
	werrs, err := l.store.ImportLeads(ctx, tenant, writes)
	if err != nil {
		return nil, err
	}
	var refused []int
	for j, i := range chunk {
		if werrs[j] == nil {
			out[i] = writes[j].Lead
		} else {
			refused = append(refused, i)
		}
	}
	return refused, nil
}
