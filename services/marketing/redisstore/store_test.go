package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type fixture struct {
	rdb    redis.UniversalClient
	keys   *keyspace.Space
	store  *redisstore.Store
	leads  *marketing.Leads
	tenant string
}

func setup(t testing.TB) fixture {
	t.Helper()
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys)
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	return fixture{rdb: rdb, keys: keys, store: store, tenant: redistest.Tenant(t),
		leads: marketing.NewLeads(store, pub, validator(t), time.Now)}
}

// streamLen counts the tenant's events: the stream is shared by every tenant of the partition.
func (f fixture) streamLen(t *testing.T) int64 {
	t.Helper()
	msgs, err := f.rdb.XRange(context.Background(), f.keys.Scope("marketing", f.tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range msgs {
		ev, err := events.Decode([]byte(m.Values["e"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() == f.tenant {
			n++
		}
	}
	return n
}

func TestCaptureCreatesThenTouches(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	first, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{
		Email: " Ada@Example.com ", GivenName: "Ada", Channel: typev1.Channel_CHANNEL_WEB,
		Consent: []*marketingv1.Consent{{Channel: typev1.Channel_CHANNEL_EMAIL, Granted: true}},
		Tags:    []string{"webinar"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetEmail() != "ada@example.com" || first.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_NEW ||
		first.GetTouchCount() != 1 || first.GetCustomerId() == "" || first.GetEtag() != "1" {
		t.Fatalf("new lead = %v", first)
	}
	got, err := f.store.GetLead(ctx, f.tenant, first.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, got, protocmp.Transform()); diff != "" {
		t.Fatalf("stored lead differs (-captured +stored):\n%s", diff)
	}

	again, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{
		Email: "ADA@example.com", Company: "Analytical Engines", Channel: typev1.Channel_CHANNEL_EVENT,
		Consent: []*marketingv1.Consent{{Channel: typev1.Channel_CHANNEL_EMAIL, Granted: false, Source: "unsubscribe"}},
		Tags:    []string{"webinar", "event"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetId() != first.GetId() || again.GetCustomerId() != first.GetCustomerId() {
		t.Fatalf("recapture made another lead: %s/%s, want %s/%s", again.GetId(), again.GetCustomerId(), first.GetId(), first.GetCustomerId())
	}
	if again.GetTouchCount() != 2 || again.GetEtag() != "2" || again.GetGivenName() != "Ada" || again.GetCompany() != "Analytical Engines" {
		t.Fatalf("touched lead = %v", again)
	}
	if again.GetChannel() != typev1.Channel_CHANNEL_WEB || again.GetLastTouch().GetChannel() != typev1.Channel_CHANNEL_EVENT {
		t.Fatalf("source channel %v, last touch %v: want WEB kept and EVENT as last touch", again.GetChannel(), again.GetLastTouch().GetChannel())
	}
	if c := again.GetConsent(); len(c) != 1 || c[0].GetGranted() || c[0].GetSource() != "unsubscribe" {
		t.Fatalf("consent = %v, want the e-mail grant replaced by the withdrawal", c)
	}
	if diff := cmp.Diff([]string{"webinar", "event"}, again.GetTags()); diff != "" {
		t.Fatalf("tags (-want +got):\n%s", diff)
	}
	if n := len(f.eventsOfType(t, marketingv1.EventLeadCaptured.Name)); n != 2 || f.streamLen(t) != 4 {
		t.Fatalf("%d captured events of %d, want 2 (one per capture), the customer's registration and lifecycle entry", n, f.streamLen(t))
	}
}

func TestConcurrentCapturesOfOneEmailMakeOneLead(t *testing.T) {
	f := setup(t)
	const writers = 20
	// Two waves: the second finds the lead among the process's recently touched ones, so its
	// touches race on the version kept there; the losers find the lead the usual way.
	for wave := 1; wave <= 2; wave++ {
		var wg sync.WaitGroup
		ids := make([]string, writers)
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				// Vary case and whitespace: all normalize to the same e-mail.
				email := fmt.Sprintf("%sgrace@Example.com ", strings.Repeat(" ", i%3))
				if i%2 == 0 {
					email = strings.ToUpper(email)
				}
				l, err := f.leads.Capture(context.Background(), f.tenant, &marketing.Lead{Email: email})
				errs[i] = err
				if err == nil {
					ids[i] = l.GetId()
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("wave %d, capture %d: %v", wave, i, err)
			}
			if ids[i] != ids[0] {
				t.Fatalf("wave %d: capture %d got lead %s, capture 0 got %s: want one lead", wave, i, ids[i], ids[0])
			}
		}
		leads, err := f.store.ListLeads(context.Background(), f.tenant, marketing.LeadQuery{Request: page.Request{Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if len(leads.Items) != 1 || leads.Items[0].GetTouchCount() != int64(wave*writers) {
			t.Fatalf("wave %d: list = %d leads (touch count %d), want 1 lead with %d touches", wave, len(leads.Items), leads.Items[0].GetTouchCount(), wave*writers)
		}
		if n := len(f.eventsOfType(t, marketingv1.EventLeadCaptured.Name)); n != wave*writers || len(f.eventsOfType(t, marketingv1.EventLifecycleStageChanged.Name)) != 1 {
			t.Fatalf("wave %d: %d captured events, want %d, and one lifecycle entry", wave, n, wave*writers)
		}
	}
}

// A capture costs one round trip for a new e-mail and two for a known one: the refused create
// brings the lead that has the e-mail back with its refusal (no read of its own), then the touch.
// Two captures of one new e-mail at once make one lead touched twice, in three round trips.
func TestCaptureRoundTrips(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	capture := func(email string) *marketing.Lead {
		t.Helper()
		l, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: email, Company: "Acme"})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	first := capture("warm@example.com") // reads the scoring rules, loads the script
	counter := &redistest.Commands{}
	f.rdb.AddHook(counter)

	capture("trips-new@example.com")
	if got := counter.Take(); !slices.Equal(got, []string{"evalsha"}) {
		t.Errorf("a new lead's capture sent %v, want [evalsha]", got)
	}
	again := capture("WARM@example.com")
	if got := counter.Take(); !slices.Equal(got, []string{"evalsha", "evalsha"}) {
		t.Errorf("a known lead's capture sent %v, want [evalsha evalsha] (the refused create, the touch)", got)
	}
	if again.GetId() != first.GetId() || again.GetTouchCount() != 2 || again.GetEtag() != "2" {
		t.Errorf("known lead after its capture: id %s, touches %d, etag %s; want %s, 2, 2", again.GetId(), again.GetTouchCount(), again.GetEtag(), first.GetId())
	}

	var wg sync.WaitGroup
	got := make([]*marketing.Lead, 2)
	for i := range got {
		wg.Go(func() { got[i] = capture("trips-racing@example.com") })
	}
	wg.Wait()
	// The second connection the pair opens says hello first: count the captures' own commands.
	if calls, writes := counter.Count("evalsha"), counter.Scripts(); calls != 3 || writes != 3 {
		t.Errorf("two captures of one new e-mail at once sent %v (%d writes), want 3 evalsha writes", counter.Take(), writes)
	}
	if got[0].GetId() != got[1].GetId() {
		t.Fatalf("two captures of one e-mail at once made leads %s and %s, want one", got[0].GetId(), got[1].GetId())
	}
	stored, err := f.store.GetLead(ctx, f.tenant, got[0].GetId())
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetTouchCount() != 2 || stored.GetEtag() != "2" {
		t.Errorf("the raced lead has %d touches at etag %s, want 2 at 2", stored.GetTouchCount(), stored.GetEtag())
	}
	var created int
	for _, ev := range f.eventsOfType(t, marketingv1.EventLeadCaptured.Name) {
		p := &marketingv1.LeadCaptured{}
		if err := ev.GetPayload().UnmarshalTo(p); err != nil {
			t.Fatal(err)
		}
		if p.GetLeadId() == stored.GetId() && p.GetCreated() {
			created++
		}
	}
	if created != 1 {
		t.Errorf("the raced lead has %d lead.captured events that created it, want 1", created)
	}
}

func TestStaleUpdateWritesNothing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "stale@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	before := f.streamLen(t)
	stale := &marketing.Lead{Id: lead.GetId(), Email: lead.GetEmail(), Etag: "7", Status: marketingv1.LeadStatus_LEAD_STATUS_ENGAGED}
	prev := &marketing.Lead{Id: lead.GetId(), Email: lead.GetEmail(), Etag: "6", Status: marketingv1.LeadStatus_LEAD_STATUS_NEW}
	err = f.store.UpdateLead(ctx, f.tenant, marketing.LeadWrite{Lead: stale, Prev: prev, Events: [][]byte{encodeEvent(t, f.tenant)}})
	if !errors.Is(err, marketing.ErrStale) {
		t.Fatalf("UpdateLead with a stale etag = %v, want ErrStale", err)
	}
	got, err := f.store.GetLead(ctx, f.tenant, lead.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lead, got, protocmp.Transform()); diff != "" {
		t.Fatalf("lead changed by a failed update (-want +got):\n%s", diff)
	}
	engaged, err := f.store.ListLeads(ctx, f.tenant, marketing.LeadQuery{
		Filter: marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_ENGAGED}, Request: page.Request{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(engaged.Items) != 0 || f.streamLen(t) != before {
		t.Fatalf("failed update left %d index entries and %d new events", len(engaged.Items), f.streamLen(t)-before)
	}
}

func TestUpdateMovesStatusIndex(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "move@example.com", Channel: typev1.Channel_CHANNEL_ADS})
	if err != nil {
		t.Fatal(err)
	}
	next := &marketing.Lead{Id: lead.GetId(), Email: lead.GetEmail(), Channel: lead.GetChannel(),
		Status: marketingv1.LeadStatus_LEAD_STATUS_ENGAGED, Etag: "2"}
	if err := f.store.UpdateLead(ctx, f.tenant, marketing.LeadWrite{Lead: next, Prev: lead, Events: [][]byte{encodeEvent(t, f.tenant)}}); err != nil {
		t.Fatal(err)
	}
	count := func(ix marketing.LeadFilter) int {
		leads, err := f.store.ListLeads(ctx, f.tenant, marketing.LeadQuery{Filter: ix, Request: page.Request{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		return len(leads.Items)
	}
	for _, tt := range []struct {
		name string
		ix   marketing.LeadFilter
		want int
	}{
		{"new", marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_NEW}, 0},
		{"engaged", marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_ENGAGED}, 1},
		{"ads", marketing.LeadFilter{Channel: typev1.Channel_CHANNEL_ADS}, 1},
		{"web", marketing.LeadFilter{Channel: typev1.Channel_CHANNEL_WEB}, 0},
	} {
		if got := count(tt.ix); got != tt.want {
			t.Errorf("%s index has %d leads, want %d", tt.name, got, tt.want)
		}
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	var want []string
	for i := range 7 {
		ch := typev1.Channel_CHANNEL_WEB
		if i%2 == 1 {
			ch = typev1.Channel_CHANNEL_SOCIAL
		}
		l, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: fmt.Sprintf("p%d@example.com", i), Channel: ch})
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{l.GetId()}, want...)
	}
	var got []string
	q := marketing.LeadQuery{Request: page.Request{Limit: 3}}
	for pages := 0; ; pages++ {
		leads, err := f.store.ListLeads(ctx, f.tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leads.Items {
			got = append(got, l.GetId())
		}
		if leads.Next == "" {
			if pages != 2 {
				t.Fatalf("got %d pages after the first, want 2", pages)
			}
			break
		}
		q.After = leads.Next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ids across pages (-want +got):\n%s", diff)
	}
	social, err := f.store.ListLeads(ctx, f.tenant, marketing.LeadQuery{
		Filter: marketing.LeadFilter{Channel: typev1.Channel_CHANNEL_SOCIAL}, Request: page.Request{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(social.Items) != 3 || social.Next != "" {
		t.Fatalf("social channel list = %d leads (next %q), want 3 and no next page", len(social.Items), social.Next)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "iso@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	other := redistest.Tenant(t)
	if _, err := f.store.GetLead(ctx, other, lead.GetId()); !errors.Is(err, marketing.ErrLeadNotFound) {
		t.Fatalf("other tenant GetLead = %v, want ErrLeadNotFound", err)
	}
	theirs, err := f.leads.Capture(ctx, other, &marketing.Lead{Email: "iso@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if theirs.GetId() == lead.GetId() {
		t.Fatal("the same e-mail in another tenant resolved to the first tenant's lead")
	}
}

func encodeEvent(t *testing.T, tenant string) []byte {
	t.Helper()
	b, err := proto.Marshal(&eventv1.Event{Id: "test", TenantId: tenant, Type: "test.updated"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validator(t testing.TB) protovalidate.Validator {
	t.Helper()
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCreateOverAnExistingLeadIsRefused: a create names a lead id of its own; should one exist
// already, the create is refused whole: no e-mail claimed, the lead unchanged.
func TestCreateOverAnExistingLeadIsRefused(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	first, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "first@example.com", Channel: typev1.Channel_CHANNEL_WEB})
	if err != nil {
		t.Fatal(err)
	}
	again := proto.CloneOf(first)
	again.Email, again.CustomerId = "again@example.com", uuid.NewString()
	err = f.store.CreateLead(ctx, f.tenant, marketing.LeadWrite{Lead: again})
	if !errors.Is(err, commit.ErrVersionMismatch) {
		t.Fatalf("create over lead %s: %v, want ErrVersionMismatch", first.GetId(), err)
	}
	if ids, err := f.store.LeadIDsByEmail(ctx, f.tenant, []string{"again@example.com"}); err != nil || ids[0] != "" {
		t.Errorf("the refused create claimed its e-mail: %v, %v", ids, err)
	}
	if got, err := f.store.GetLead(ctx, f.tenant, first.GetId()); err != nil || got.GetEmail() != "first@example.com" {
		t.Errorf("the lead after the refused create: %v, %v", got, err)
	}
}

// An erasure planned before a lead of the person appeared (a capture of an e-mail of theirs that
// had no lead) is refused and changes nothing; erasing again takes that lead too. A create for a
// customer the registry no longer has, erased or merged, is refused.
func TestErasureRacingACapture(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	customers := marketing.NewCustomers(f.store, pub, time.Now)
	first, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "pat@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	person := first.GetCustomerId()
	// A contact gives the person a second e-mail, with no lead yet.
	if _, err := customers.Resolve(ctx, f.tenant, marketing.ResolveRequest{Email: "pat.work@example.com", CustomerID: person}); err != nil {
		t.Fatal(err)
	}
	identity, err := f.store.GetCustomer(ctx, f.tenant, person)
	if err != nil {
		t.Fatal(err)
	}
	planned := marketing.Erasure{Leads: []*marketing.Lead{first}, Person: identity, FreeEmails: []string{"pat.work@example.com"}}
	second, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "pat.work@example.com"})
	if err != nil || second.GetCustomerId() != person {
		t.Fatalf("capture of the second e-mail = %v %v, want a lead of %s", second, err, person)
	}
	scope := f.keys.Scope("marketing", f.tenant)
	before := dumpAll(t, f.rdb, scope.Key("*"))
	if err := f.store.ErasePerson(ctx, f.tenant, planned); !errors.Is(err, marketing.ErrStale) {
		t.Fatalf("an erasure planned before the second lead: %v, want ErrStale", err)
	}
	if diff := cmp.Diff(before, dumpAll(t, f.rdb, scope.Key("*"))); diff != "" {
		t.Fatalf("a refused erasure changed state (-before +after):\n%s", diff)
	}
	if err := f.leads.Erase(ctx, f.tenant, first.GetId(), ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{first.GetId(), second.GetId()} {
		if _, err := f.store.GetLead(ctx, f.tenant, id); !errors.Is(err, marketing.ErrLeadNotFound) {
			t.Fatalf("lead %s after the erasure: %v, want ErrLeadNotFound", id, err)
		}
	}

	// A create that read the registry before the erasure (or a merge) committed is refused.
	a, err := customers.Resolve(ctx, f.tenant, marketing.ResolveRequest{Email: "a@example.com", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := customers.Resolve(ctx, f.tenant, marketing.ResolveRequest{Email: "b@example.com", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := customers.Merge(ctx, f.tenant, a.GetCustomerId(), b.GetCustomerId()); err != nil {
		t.Fatal(err)
	}
	for _, customer := range []string{person, b.GetCustomerId()} {
		lead := &marketing.Lead{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Email: "late@example.com", Etag: "1"}
		before := dumpAll(t, f.rdb, scope.Key("*"))
		if err := f.store.CreateLead(ctx, f.tenant, marketing.LeadWrite{Lead: lead, KnownCustomer: true}); !errors.Is(err, marketing.ErrPersonStale) {
			t.Fatalf("a create for gone customer %s: %v, want ErrPersonStale", customer, err)
		}
		if diff := cmp.Diff(before, dumpAll(t, f.rdb, scope.Key("*"))); diff != "" {
			t.Fatalf("a refused create changed state (-before +after):\n%s", diff)
		}
	}
	// The capture that meets this refusal asks the registry again: a new customer.
	late, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "pat@example.com"})
	if err != nil || late.GetCustomerId() == person || late.GetTouchCount() != 1 {
		t.Fatalf("capture after the erasure = %v %v, want a new lead of a new customer", late, err)
	}
}

// dumpAll is every key matching pattern with its DUMP, to compare states.
func dumpAll(t *testing.T, rdb redis.UniversalClient, pattern string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		d, err := rdb.Dump(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[iter.Val()] = d
	}
	if err := iter.Err(); err != nil || len(out) == 0 {
		t.Fatalf("%d keys match %s: %v", len(out), pattern, err)
	}
	return out
}
