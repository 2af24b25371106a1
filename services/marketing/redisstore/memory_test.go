package redisstore_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/search/searchtest"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// memoryOf sums MEMORY USAGE (every element counted) of the keys matching pattern that keep says.
func memoryOf(t *testing.T, rdb redis.UniversalClient, pattern string, keep func(string) bool) (bytes, keys int64) {
	t.Helper()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		if !keep(iter.Val()) {
			continue
		}
		n, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		bytes, keys = bytes+n, keys+1
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return bytes, keys
}

// TestMemoryPerLead measures what DESIGN §10 bounds at 600 bytes a lead: its record, its identity
// entry (the e-mail index) and its list indexes, with MEMORY USAGE as bench/run.sh does, for
// leads captured as the bench captures them (a new e-mail, a given name, a channel: five list
// index entries). The search indexes are bounded apart (150 bytes).
func TestMemoryPerLead(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	const n = 1000
	for range n {
		in := &marketing.Lead{Email: "g-" + uuid.NewString() + "@example.com", GivenName: "Ada", Channel: typev1.Channel_CHANNEL_WEB}
		if _, err := f.leads.Capture(ctx, f.tenant, in); err != nil {
			t.Fatal(err)
		}
	}
	prefix := f.keys.Scope("marketing", f.tenant).Key("")
	all := func(string) bool { return true }
	record, records := memoryOf(t, f.rdb, prefix+"lead:*", all)
	identity, _ := memoryOf(t, f.rdb, prefix+"lead-emails*", all)
	lists, listKeys := memoryOf(t, f.rdb, prefix+"leads*", func(k string) bool { return !strings.Contains(k, ":leads:search:") })
	search, _ := memoryOf(t, f.rdb, prefix+"leads:search:*", all)
	if records != n {
		t.Fatalf("%d lead records, want %d", records, n)
	}
	perLead := float64(record+identity+lists) / n
	t.Logf("per lead: %.0f B = record %.0f + identity %.0f + list indexes %.0f (%d keys); search indexes %.0f",
		perLead, float64(record)/n, float64(identity)/n, float64(lists)/n, listKeys, float64(search)/n)
	if perLead > 600 {
		t.Errorf("%.0f bytes a lead, want at most 600", perLead)
	}
	if s := float64(search) / n; s > 150 {
		t.Errorf("search indexes: %.0f bytes a lead, want at most 150", s)
	}
}

// TestSearchMemoryPerLeadStaysFlat measures the name and company search indexes per lead at 1,000
// and 5,000 leads, for leads captured as the bench captures them (the given name "Ada": one member
// each) and for leads with generated given, family and company names (three to six members each):
// DESIGN §10 bounds them at 150 bytes a lead, whatever the tenant's size.
func TestSearchMemoryPerLeadStaysFlat(t *testing.T) {
	for _, shape := range []struct {
		name string
		lead func(rng *rand.Rand) *marketing.Lead
	}{
		{"bench", func(*rand.Rand) *marketing.Lead { return &marketing.Lead{GivenName: "Ada"} }},
		{"generated names", func(rng *rand.Rand) *marketing.Lead {
			return &marketing.Lead{GivenName: searchtest.Pick(rng, searchtest.Given).Text,
				FamilyName: searchtest.Pick(rng, searchtest.Family).Text, Company: searchtest.Pick(rng, searchtest.Companies).Text}
		}},
	} {
		t.Run(shape.name, func(t *testing.T) {
			f := setup(t)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(7, 150))
			prefix := f.keys.Scope("marketing", f.tenant).Key("leads", "search") + ":*"
			all := func(string) bool { return true }
			written := 0
			for _, n := range []int{1000, 5000} {
				for ; written < n; written++ {
					in := shape.lead(rng)
					in.Email, in.Channel = "s-"+uuid.NewString()+"@example.com", typev1.Channel_CHANNEL_WEB
					if _, err := f.leads.Capture(ctx, f.tenant, in); err != nil {
						t.Fatal(err)
					}
				}
				search, keys := memoryOf(t, f.rdb, prefix, all)
				perLead := float64(search) / float64(n)
				t.Logf("%d leads: search indexes %.0f B a lead (%d keys)", n, perLead, keys)
				if perLead > 150 {
					t.Errorf("%d leads: search indexes %.0f bytes a lead, want at most 150", n, perLead)
				}
			}
		})
	}
}
