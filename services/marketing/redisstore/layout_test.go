package redisstore_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/search"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
)

// A tenant's leads written in the layout before bucketed indexes (each lead index one sorted set of
// text members, the e-mails one hash) are moved into the bucketed indexes at start: every list,
// e-mail lookup and count reads as it did before, the old keys are gone, and a second start
// finds nothing to do.
func TestOldLayoutIsMigratedAtStart(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	campaigns := []string{uuid.Must(uuid.NewV7()).String()}
	leads := f.generatedLeads(t, 300, campaigns, 11)
	queries := []string{"", "status = LEAD_STATUS_ENGAGED", "channel = CHANNEL_ADS", `tags:"vip"`,
		`campaign_id = "` + campaigns[0] + `"`, "score >= 20 AND score <= 40", "|score desc"}
	list := func() map[string][]string {
		out := map[string][]string{}
		for _, s := range queries {
			filter, orderBy, _ := strings.Cut(s, "|")
			q, err := marketing.ParseLeadList(filter, orderBy)
			if err != nil {
				t.Fatal(err)
			}
			q.Limit = 29
			out[s] = f.listAll(t, q)
		}
		return out
	}
	want := list()

	// The old layout, as the store wrote it before: the new keys go, the old ones come.
	scope := f.keys.Scope("marketing", f.tenant)
	newKeys, err := f.rdb.Keys(ctx, scope.Key("lead")+"*#*").Result()
	if err != nil || len(newKeys) < 10 {
		t.Fatalf("bucketed keys of the tenant: %d, %v", len(newKeys), err)
	}
	if err := f.rdb.Del(ctx, newKeys...).Err(); err != nil {
		t.Fatal(err)
	}
	pipe := f.rdb.Pipeline()
	for _, l := range leads {
		id, score := l.GetId(), fmt.Sprintf("%010d:%s", l.GetScore(), l.GetId())
		pipe.ZAdd(ctx, scope.Key("leads"), zm(id))
		pipe.ZAdd(ctx, scope.Key("leads", "status", l.GetStatus().String()), zm(id))
		pipe.ZAdd(ctx, scope.Key("leads-by-score"), zm(score))
		pipe.ZAdd(ctx, scope.Key("leads-by-score", "status", l.GetStatus().String()), zm(score))
		if l.GetChannel() != 0 {
			pipe.ZAdd(ctx, scope.Key("leads", "channel", l.GetChannel().String()), zm(id))
		}
		if l.GetCampaignId() != "" {
			pipe.ZAdd(ctx, scope.Key("leads", "campaign", l.GetCampaignId()), zm(id))
		}
		for _, tag := range l.GetTags() {
			pipe.ZAdd(ctx, scope.Key("leads", "tag", tag), zm(id))
		}
		pipe.HSet(ctx, scope.Key("lead-emails"), l.GetEmail(), id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got := list()[""]; len(got) != 0 {
		t.Fatalf("the old layout read as the new: %d leads listed", len(got))
	}

	if err := f.rdb.Del(ctx, redisstore.LayoutKey).Err(); err != nil {
		t.Fatal(err)
	}
	if err := redisstore.MigrateLayout(ctx, f.rdb, nil); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, list()); diff != "" {
		t.Fatalf("lists after the migration differ (-before +after):\n%s", diff)
	}
	emails := []string{leads[0].GetEmail(), "nobody@example.com", leads[299].GetEmail()}
	ids, err := f.store.LeadIDsByEmail(ctx, f.tenant, emails)
	if err != nil || !slices.Equal(ids, []string{leads[0].GetId(), "", leads[299].GetId()}) {
		t.Fatalf("e-mail lookups after the migration: %q, %v", ids, err)
	}
	old, _ := f.rdb.Keys(ctx, scope.Key("lead")+"*").Result()
	for _, k := range old {
		if !strings.Contains(k, "#") && !strings.Contains(k, ":leads:search:") && !strings.Contains(k, ":lead:") {
			t.Errorf("old-layout key %s is left", k)
		}
	}
	if v := f.rdb.Get(ctx, redisstore.LayoutKey).Val(); v == "" {
		t.Fatal("the migration did not record the layout")
	}
	// A capture of a migrated e-mail finds its lead.
	again, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: leads[5].GetEmail()})
	if err != nil || again.GetId() != leads[5].GetId() {
		t.Fatalf("capture of a migrated e-mail: %v, %v; want lead %s", again.GetId(), err, leads[5].GetId())
	}
}

func zm(member string) redis.Z { return redis.Z{Member: member} }

// TestSearchIndexesAreMigratedToBuckets: search indexes written before they were bucketed (one
// sorted set per field of "<text>\x00<text id>") are moved into bucketed search indexes, from a
// Redis at the "bucketed" layout (its search keys alone) or from one without a layout (with
// everything else): every search reads as before, each old member is moved once, a renamed
// migrated lead leaves its old name, the old keys are gone, and later starts change nothing. A tag
// named like a search index is a tag index all along.
func TestSearchIndexesAreMigratedToBuckets(t *testing.T) {
	for _, layout := range []string{"bucketed", ""} {
		t.Run(cmp.Or(layout, "no layout"), func(t *testing.T) {
			f := setup(t)
			ctx := context.Background()
			scope := f.keys.Scope("marketing", f.tenant)
			leads := f.namedLeads(t, 700, 12) // over 500 members per index: more than one step
			const oddTag = "x:leads:search:name"
			tagged := leads[3].lead
			next := proto.Clone(tagged).(*marketing.Lead)
			next.Tags, next.Etag = []string{oddTag}, "2"
			if err := f.store.UpdateLead(ctx, f.tenant, marketing.LeadWrite{Lead: next, Prev: tagged}); err != nil {
				t.Fatal(err)
			}
			leads[3].lead = next
			queries := []string{"a", "ad", "lov", "nunez", "ada lo", "zzz"}
			searches := func() map[string][]string {
				out := map[string][]string{}
				for _, q := range queries {
					p, _ := search.NewPrefix(q)
					out["name "+q] = f.searchAll(t, marketing.LeadFilter{Name: p}, 50)
					out["company "+q] = f.searchAll(t, marketing.LeadFilter{Company: p}, 50)
				}
				return out
			}
			want := searches()
			if got := want["name lov"]; !slices.Equal(got, wantSearch(leads, func(l namedLead) string { return l.name }, "lov")) {
				t.Fatalf("name lov before the migration: %d leads, not the independent computation", len(got))
			}

			// The search indexes as the store wrote them before, and, without a layout, the odd tag's
			// index too.
			bucketed, err := f.rdb.Keys(ctx, scope.Key("leads", "search")+"*").Result()
			if err != nil || len(bucketed) < 20 {
				t.Fatalf("bucketed search keys: %d, %v", len(bucketed), err)
			}
			if layout == "" {
				tagKeys, err := f.rdb.Keys(ctx, scope.Key("leads", "tag", oddTag)+"#*").Result()
				if err != nil || len(tagKeys) == 0 {
					t.Fatalf("bucketed keys of the odd tag: %q, %v", tagKeys, err)
				}
				bucketed = append(bucketed, tagKeys...)
			}
			if err := f.rdb.Del(ctx, bucketed...).Err(); err != nil {
				t.Fatal(err)
			}
			pipe := f.rdb.Pipeline()
			oldMembers := map[string]int{}
			for _, l := range leads {
				id := l.lead.GetId()
				for field, ms := range map[string][]string{
					"name":    search.Members(id, marketing.NameTexts(l.lead)...),
					"company": search.Members(id, l.lead.GetCompany()),
				} {
					for _, m := range ms {
						pipe.ZAdd(ctx, scope.Key("leads", "search", field), zm(m))
					}
					oldMembers[field] += len(ms)
				}
			}
			stale := scope.Key("leads", "tag", "stale")
			if layout == "" {
				pipe.ZAdd(ctx, scope.Key("leads", "tag", oddTag), zm(next.GetId()))
			} else {
				// A list index in the layout before "bucketed": a Redis at "bucketed" has none,
				// and its migration reads the search indexes alone.
				pipe.ZAdd(ctx, stale, zm(leads[1].lead.GetId()))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if oldMembers["name"] <= 500 || oldMembers["company"] <= 500 {
				t.Fatalf("old members %v: want more than one step's 500 each", oldMembers)
			}
			if got := searches()["name a"]; len(got) != 0 {
				t.Fatalf("the old search indexes read as the new: %d leads found", len(got))
			}

			if err := setLayout(ctx, f.rdb, layout); err != nil {
				t.Fatal(err)
			}
			if err := redisstore.MigrateLayout(ctx, f.rdb, nil); err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(want, searches()); diff != "" {
				t.Fatalf("searches after the migration differ (-before +after):\n%s", diff)
			}
			for field, n := range oldMembers {
				index := scope.Key("leads", "search", field)
				if got, err := commit.BucketCount(ctx, f.rdb, index).Int(); err != nil || got != n {
					t.Errorf("%s: %d members in the bucketed index (%v), want the %d old ones", field, got, err, n)
				}
				if typ := f.rdb.Type(ctx, index).Val(); typ != "none" {
					t.Errorf("old search index %s is left: a %s", index, typ)
				}
			}
			tag := f.listAll(t, marketing.LeadQuery{Filter: marketing.LeadFilter{Tag: oddTag}, Request: page.Request{Limit: 10}})
			if !slices.Equal(tag, []string{next.GetId()}) {
				t.Errorf("tag %q lists %v, want %s", oddTag, tag, next.GetId())
			}
			if got := f.rdb.ZRange(ctx, stale, 0, -1).Val(); layout != "" && !slices.Equal(got, []string{leads[1].lead.GetId()}) {
				t.Errorf("list index %s at the bucketed layout: %q, want it left alone", stale, got)
			}
			if err := f.rdb.Del(ctx, stale).Err(); err != nil { // a start without a layout would move it
				t.Fatal(err)
			}
			if v := f.rdb.Get(ctx, redisstore.LayoutKey).Val(); v != "bucketed-search" {
				t.Fatalf("layout %q after the migration, want bucketed-search", v)
			}

			// Later starts, at this layout or made to think they are at an earlier one, change
			// nothing: bucketed keys are not taken for old ones.
			before := redistest.Take(t, f.rdb)
			for _, again := range []string{"bucketed-search", "bucketed", ""} {
				if err := setLayout(ctx, f.rdb, again); err != nil {
					t.Fatal(err)
				}
				if err := redisstore.MigrateLayout(ctx, f.rdb, nil); err != nil {
					t.Fatal(err)
				}
				if changed := before.Changed(redistest.Take(t, f.rdb)); len(changed) != 0 {
					t.Fatalf("a start at layout %q changed %q", again, changed)
				}
			}

			// A migrated lead renamed leaves its old members: the write removes what the migration wrote.
			renamed := proto.Clone(leads[0].lead).(*marketing.Lead)
			renamed.GivenName, renamed.FamilyName, renamed.Company, renamed.Etag = "Quentin", "Quux", "Qorp", "3"
			if err := f.store.UpdateLead(ctx, f.tenant, marketing.LeadWrite{Lead: renamed, Prev: leads[0].lead}); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{leads[0].name, strings.Fields(leads[0].name)[1], leads[0].company} {
				p, _ := search.NewPrefix(q)
				if slices.Contains(f.searchAll(t, marketing.LeadFilter{Name: p}, 50), renamed.GetId()) ||
					slices.Contains(f.searchAll(t, marketing.LeadFilter{Company: p}, 50), renamed.GetId()) {
					t.Errorf("renamed lead still found by %q", q)
				}
			}
			p, _ := search.NewPrefix("quentin qu")
			if got := f.searchAll(t, marketing.LeadFilter{Name: p}, 50); !slices.Equal(got, []string{renamed.GetId()}) {
				t.Errorf("new name finds %v, want %s", got, renamed.GetId())
			}
			var names int
			for _, l := range leads[1:] {
				names += len(search.Members(l.lead.GetId(), marketing.NameTexts(l.lead)...))
			}
			names += len(search.Members(renamed.GetId(), marketing.NameTexts(renamed)...))
			if got, err := commit.BucketCount(ctx, f.rdb, scope.Key("leads", "search", "name")).Int(); err != nil || got != names {
				t.Errorf("name index after the rename: %d members (%v), want %d", got, err, names)
			}
			// And the tagged lead untagged leaves the odd tag's index, migrated as a tag index.
			untagged := proto.Clone(next).(*marketing.Lead)
			untagged.Tags, untagged.Etag = nil, "3"
			if err := f.store.UpdateLead(ctx, f.tenant, marketing.LeadWrite{Lead: untagged, Prev: next}); err != nil {
				t.Fatal(err)
			}
			if n := f.rdb.Exists(ctx, scope.Key("leads", "tag", oddTag), scope.Key("leads", "tag", oddTag)+"#d").Val(); n != 0 {
				t.Errorf("tag %q: %d keys left after its one lead left it", oddTag, n)
			}
		})
	}
}

// setLayout records layout as the layout of the Redis, none for "".
func setLayout(ctx context.Context, rdb redis.UniversalClient, layout string) error {
	if layout == "" {
		return rdb.Del(ctx, redisstore.LayoutKey).Err()
	}
	return rdb.Set(ctx, redisstore.LayoutKey, layout, 0).Err()
}
