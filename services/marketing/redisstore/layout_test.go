package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

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
