package rpc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
	"github.com/crmcycle/crm/services/integration/server"
)

func isEtagMismatch(err error) bool {
	return status.Code(err) == codes.Aborted && reasonOf(err) == "ETAG_MISMATCH"
}

// TestWebhookEndpointEtag: RotateWebhookSecret and DeleteWebhookEndpoint with a stale etag (REST:
// If-Match) are ABORTED ETAG_MISMATCH and change nothing; with the current one they go through.
func TestWebhookEndpointEtag(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	rc := newReceiver(t, ok200)
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	c, ctx := s.client()
	get := func() (*integrationv1.WebhookEndpoint, error) {
		r, err := c.GetWebhookEndpoint(ctx, &integrationv1.GetWebhookEndpointRequest{Id: ep.GetId()})
		return r.GetWebhookEndpoint(), err
	}
	changes := func() int {
		return len(s.suite.Events(t, server.Name, s.tenant, integrationv1.EventWebhookEndpointSecretRotated.Name)) +
			len(s.suite.Events(t, server.Name, s.tenant, integrationv1.EventWebhookEndpointDeleted.Name))
	}
	// Still signed with the secret it was created with: a stale rotation (without an overlap) did not rotate.
	signsWithTheFirstSecret := func() bool {
		rc.setSecret(ep.GetSecret())
		test, err := c.TestWebhookEndpoint(ctx, &integrationv1.TestWebhookEndpointRequest{Id: ep.GetId()})
		if err != nil || test.GetAttempt().GetStatusCode() != http.StatusOK {
			t.Fatalf(":test: %v, %v", test, err)
		}
		return len(rc.unsigned()) == 0
	}
	update := &integrationv1.UpdateWebhookEndpointRequest{
		WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), Description: "etag 2"}, UpdateMask: mask("description")}
	if _, err := c.UpdateWebhookEndpoint(ctx, update); err != nil {
		t.Fatal(err)
	}
	before, err := get()
	if err != nil || before.GetEtag() == ep.GetEtag() {
		t.Fatalf("updated endpoint: %v, %v", before, err)
	}
	stale, events := ep.GetEtag(), changes()
	// An update without a mask whose endpoint sets nothing changes nothing: no new etag; at a
	// stale etag it is refused like any other.
	same, err := c.UpdateWebhookEndpoint(ctx, &integrationv1.UpdateWebhookEndpointRequest{WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId()}})
	if err != nil || !proto.Equal(same.GetWebhookEndpoint(), before) {
		t.Fatalf("nothing to update: %v, %v; want unchanged %v", same, err, before)
	}
	_, err = c.UpdateWebhookEndpoint(ctx, &integrationv1.UpdateWebhookEndpointRequest{WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), Etag: stale}})
	if !isEtagMismatch(err) {
		t.Fatalf("nothing to update at a stale etag: %v, want ABORTED ETAG_MISMATCH", err)
	}

	_, err = c.RotateWebhookSecret(ctx, &integrationv1.RotateWebhookSecretRequest{Id: ep.GetId(), Etag: stale})
	if !isEtagMismatch(err) {
		t.Fatalf("rotate with a stale etag: %v, want ABORTED ETAG_MISMATCH", err)
	}
	_, err = c.DeleteWebhookEndpoint(ctx, &integrationv1.DeleteWebhookEndpointRequest{Id: ep.GetId(), Etag: stale})
	if !isEtagMismatch(err) {
		t.Fatalf("delete with a stale etag: %v, want ABORTED ETAG_MISMATCH", err)
	}
	if after, err := get(); err != nil || !proto.Equal(after, before) {
		t.Fatalf("after stale etags: %v, %v; want unchanged %v", after, err, before)
	}
	if n := changes(); n != events {
		t.Fatalf("stale etags emitted %d events", n-events)
	}
	if !signsWithTheFirstSecret() {
		t.Fatal("a rotation with a stale etag rotated the secret")
	}

	rotated, err := c.RotateWebhookSecret(ctx, &integrationv1.RotateWebhookSecretRequest{Id: ep.GetId(), Etag: before.GetEtag()})
	if r := rotated.GetWebhookEndpoint(); err != nil || r.GetSecret() == ep.GetSecret() || r.GetEtag() != etag.Next(before.GetEtag()) {
		t.Fatalf("rotate with the current etag: %v, %v", rotated, err)
	}
	if signsWithTheFirstSecret() {
		t.Fatal("the rotation with the current etag kept the first secret")
	}
	current := &integrationv1.DeleteWebhookEndpointRequest{Id: ep.GetId(), Etag: rotated.GetWebhookEndpoint().GetEtag()}
	if _, err := c.DeleteWebhookEndpoint(ctx, current); err != nil {
		t.Fatalf("delete with the current etag: %v", err)
	}
	if _, err := get(); status.Code(err) != codes.NotFound {
		t.Fatalf("get after delete: %v, want NOT_FOUND", err)
	}
}

// TestWebhookSecretRotationEtagRace: two rotations sent at once with the endpoint's current etag:
// exactly one rotates, the other is ABORTED ETAG_MISMATCH.
func TestWebhookSecretRotationEtagRace(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	ep := s.createEndpoint(t, newReceiver(t, ok200).URL, "sales.*")
	c, ctx := s.client()
	for round := range 10 {
		current := ep.GetEtag()
		var results [2]*integrationv1.RotateWebhookSecretResponse
		rotate := func(i int) func() error {
			return func() (err error) {
				results[i], err = c.RotateWebhookSecret(ctx, &integrationv1.RotateWebhookSecretRequest{Id: ep.GetId(), Etag: current})
				return err
			}
		}
		errs := servicetest.AtOnce(rotate(0), rotate(1))
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err != nil && !isEtagMismatch(err):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if winner < 0 || errs[1-winner] == nil {
			t.Fatalf("round %d: %v, want one rotation and one ABORTED ETAG_MISMATCH", round, errs)
		}
		ep = results[winner].GetWebhookEndpoint()
		if ep.GetEtag() != etag.Next(current) {
			t.Fatalf("round %d: etag %s after the rotation of %s", round, ep.GetEtag(), current)
		}
	}
}

// TestConcurrentRotationsKeepThePreviousSecret: two rotations sent at once without an etag both
// go through, one after the other; both secrets they replaced still sign during their overlaps
// (the endpoint's first secret, then the earlier rotation's), written in each rotation's own
// atomic write: a rotation sends its one script call and no other write.
func TestConcurrentRotationsKeepThePreviousSecret(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()
	sent := &redistest.Commands{Only: func(ctx context.Context) bool {
		method, _ := grpc.Method(ctx)
		return strings.HasSuffix(method, "/RotateWebhookSecret")
	}}
	s.suite.Redis.AddHook(sent)
	rc := newReceiver(t, ok200)
	for round := range 10 { // an endpoint per round: each keeps at most 2 previous secrets
		ep := s.createEndpoint(t, rc.URL, "sales.*")
		previous := redisstore.PreviousSecretKey(s.suite.Deps.Keys.Scope(server.Name, s.tenant), ep.GetId())
		var results [2]*integrationv1.WebhookEndpoint
		rotate := func(i int) func() error {
			return func() error {
				r, err := c.RotateWebhookSecret(ctx, &integrationv1.RotateWebhookSecretRequest{Id: ep.GetId(), OverlapSeconds: 3600})
				results[i] = r.GetWebhookEndpoint()
				return err
			}
		}
		errs := servicetest.AtOnce(rotate(0), rotate(1))
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v", round, errs)
		}
		earlier, later := results[0], results[1]
		if etag.Next(later.GetEtag()) == earlier.GetEtag() {
			earlier, later = later, earlier
		}
		if etag.Next(earlier.GetEtag()) != later.GetEtag() {
			t.Fatalf("round %d: etags %s and %s, want one after the other", round, earlier.GetEtag(), later.GetEtag())
		}
		got, err := s.suite.Redis.Get(ctx, previous).Result()
		if f := strings.Fields(got); err != nil || len(f) != 4 || f[0] != ep.GetSecret() || f[2] != earlier.GetSecret() {
			t.Fatalf("round %d: the previous secrets are %q (%v), want the first secret's and the earlier rotation's", round, got, err)
		}
	}
	for _, name := range sent.Take() {
		switch name {
		case "set", "del", "setex", "psetex", "expire", "pexpire":
			t.Fatalf("a rotation sent %q beside its write", name)
		}
	}
}
