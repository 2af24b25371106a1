package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// scaleLeads is the tenant size issue 4 asks lists and segments to page correctly at.
const scaleLeads = 100_000

// TestListsAndSegmentsPageOver100kLeads writes 100,000 leads through the store (8 writers at once),
// then pages through every lead newest first, every lead by score, and an e-mail segment, checking
// each against an independent computation: no lead missing, none listed twice, the order right.
func TestListsAndSegmentsPageOver100kLeads(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	leads := make([]*marketing.Lead, scaleLeads)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 100))
			for i := w; i < scaleLeads; i += 8 {
				lead := &marketing.Lead{
					Id: uuid.Must(uuid.NewV7()).String(), CustomerId: uuid.Must(uuid.NewV7()).String(),
					Email: fmt.Sprintf("scale%d@example.com", i), Status: marketingv1.LeadStatus_LEAD_STATUS_NEW,
					Channel: typev1.Channel(1 + rng.IntN(7)), Score: int32(rng.IntN(100)), Etag: "1",
				}
				if rng.IntN(2) == 0 {
					lead.Consent = []*marketingv1.Consent{{Channel: typev1.Channel_CHANNEL_EMAIL, Granted: rng.IntN(3) > 0}}
				}
				if err := f.store.CreateLead(ctx, f.tenant, marketing.LeadWrite{Lead: lead}); err != nil {
					errs <- err
					return
				}
				leads[i] = lead
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	t.Run("every lead, newest first", func(t *testing.T) {
		want := make([]string, 0, scaleLeads)
		for _, l := range leads {
			want = append(want, l.GetId())
		}
		slices.Sort(want) // UUIDv7: the id order is the creation order
		slices.Reverse(want)
		if got := f.listAll(t, marketing.LeadQuery{Request: page.Request{Limit: 1000}}); !slices.Equal(got, want) {
			t.Fatalf("listed %d leads, want the %d created, newest first", len(got), len(want))
		}
	})

	t.Run("every lead by score", func(t *testing.T) {
		score := map[string]int32{}
		for _, l := range leads {
			score[l.GetId()] = l.GetScore()
		}
		got := f.listAll(t, marketing.LeadQuery{ByScore: true, Request: page.Request{Limit: 1000}})
		seen := map[string]bool{}
		for i, id := range got {
			if seen[id] {
				t.Fatalf("lead %s listed twice", id)
			}
			seen[id] = true
			if i > 0 && score[id] > score[got[i-1]] {
				t.Fatalf("position %d: score %d after %d", i, score[id], score[got[i-1]])
			}
		}
		if len(seen) != scaleLeads {
			t.Fatalf("listed %d distinct leads by score, want %d", len(seen), scaleLeads)
		}
	})

	t.Run("an e-mail segment lists exactly the consented leads", func(t *testing.T) {
		segments := marketing.NewSegments(f.store, f.publisher(), time.Now)
		seg, err := segments.Create(ctx, f.tenant, &marketing.Segment{DisplayName: "mailable",
			ContactChannel: typev1.Channel_CHANNEL_EMAIL, Rule: &marketingv1.SegmentRule{}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, l := range leads {
			if granted(l, typev1.Channel_CHANNEL_EMAIL) {
				want[l.GetId()] = true
			}
		}
		got := map[string]bool{}
		var cursor *marketing.MemberCursor
		for {
			members, next, err := segments.Members(ctx, f.tenant, seg.GetId(), cursor, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range members {
				if got[l.GetId()] || !want[l.GetId()] {
					t.Fatalf("lead %s listed twice or without e-mail consent", l.GetId())
				}
				got[l.GetId()] = true
			}
			if next == nil {
				break
			}
			cursor = next
		}
		if len(got) != len(want) {
			t.Fatalf("segment listed %d leads, want the %d with e-mail consent", len(got), len(want))
		}
	})
}
