package integration_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/redistest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

// pings is a receiver keeping the last ping; signedBy checks it with one secret (Standard
// Webhooks: HMAC-SHA256 of "<id>.<timestamp>.<body>", any of the space-separated signatures
// matching), without the timestamp's tolerance: the test's clock moves hours.
type pings struct {
	mu                    sync.Mutex
	id, timestamp, header string
	body                  []byte
}

func (p *pings) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.id, p.timestamp, p.header, p.body = r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body
	p.mu.Unlock()
}

func (p *pings) signedBy(secret string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(p.id + "." + p.timestamp + "."))
	mac.Write(p.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(p.header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// TestEachWebhookRotationKeepsItsOverlap rotates an endpoint's secret twice under a controlled
// clock: deliveries are signed with every secret still in its own overlap (a second rotation used
// to drop the first secret at once), a third rotation with overlap is refused while both previous
// secrets sign, and each previous secret stops signing when its own overlap ends.
func TestEachWebhookRotationKeepsItsOverlap(t *testing.T) {
	clk := &clock{t: time.Now()}
	r := recorderOn(t, redistest.Client(t), clk.Now)
	ctx := context.Background()
	tenant := redistest.Tenant(t)
	rc := &pings{}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: srv.URL, EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	ping := func() {
		t.Helper()
		if a, err := r.endpoints.Test(ctx, tenant, ep.GetId()); err != nil || a.GetStatusCode() != http.StatusOK {
			t.Fatalf(":test: %v, %v", a, err)
		}
	}
	start := clk.Now()
	second, err := r.endpoints.RotateSecret(ctx, tenant, ep.GetId(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(start.Add(10 * time.Minute))
	third, err := r.endpoints.RotateSecret(ctx, tenant, ep.GetId(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := third.GetPreviousSecretExpireTime().AsTime(), start.Add(70*time.Minute); !got.Equal(want) {
		t.Errorf("previous_secret_expire_time %v, want the last previous secret's end %v", got, want)
	}
	ping()
	secrets := []string{ep.GetSecret(), second.GetSecret(), third.GetSecret()}
	for i, s := range secrets {
		if !rc.signedBy(s) {
			t.Errorf("after two rotations with an hour's overlap: not signed with secret %d", i)
		}
	}

	_, err = r.endpoints.RotateSecret(ctx, tenant, ep.GetId(), time.Hour, "")
	if e, ok := apierr.As(err); !ok || e.Kind != apierr.FailedPrecondition || e.Reason != "TOO_MANY_SECRETS" {
		t.Fatalf("a third rotation with overlap: %v, want FAILED_PRECONDITION TOO_MANY_SECRETS", err)
	}
	if got, err := r.endpoints.Get(ctx, tenant, ep.GetId()); err != nil || got.GetEtag() != third.GetEtag() {
		t.Fatalf("the refused rotation changed the endpoint: %v, %v", got, err)
	}

	clk.Set(start.Add(time.Hour + time.Second))
	ping()
	if rc.signedBy(secrets[0]) || !rc.signedBy(secrets[1]) || !rc.signedBy(secrets[2]) {
		t.Errorf("after the first overlap: signed by %v %v %v, want all but the first",
			rc.signedBy(secrets[0]), rc.signedBy(secrets[1]), rc.signedBy(secrets[2]))
	}
	clk.Set(start.Add(70*time.Minute + time.Second))
	ping()
	if rc.signedBy(secrets[1]) || !rc.signedBy(secrets[2]) {
		t.Errorf("after every overlap: want only the current secret to sign")
	}
	rotated, err := r.endpoints.RotateSecret(ctx, tenant, ep.GetId(), time.Hour, "")
	if err != nil {
		t.Fatalf("a rotation once the overlaps ended: %v", err)
	}
	// Without overlap, only the new secret signs from then on: a leaked one is shut out at once.
	last, err := r.endpoints.RotateSecret(ctx, tenant, ep.GetId(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	ping()
	if rc.signedBy(secrets[2]) || rc.signedBy(rotated.GetSecret()) || !rc.signedBy(last.GetSecret()) {
		t.Errorf("after a rotation without overlap: want only its new secret to sign")
	}
}

// TestConcurrentWebhookRotationsKeepEverySecret: rotations racing each keep the secret they
// replaced (etag-conditional writes, retried), so every secret handed out still signs.
func TestConcurrentWebhookRotationsKeepEverySecret(t *testing.T) {
	r := recorderOn(t, redistest.Client(t), time.Now)
	ctx := context.Background()
	tenant := redistest.Tenant(t)
	rc := &pings{}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: srv.URL, EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{ep.GetSecret(), "", ""}
	var wg sync.WaitGroup
	for i := 1; i < len(secrets); i++ {
		wg.Go(func() {
			rotated, err := r.endpoints.RotateSecret(ctx, tenant, ep.GetId(), time.Hour, "")
			if err != nil {
				t.Error(err)
				return
			}
			secrets[i] = rotated.GetSecret()
		})
	}
	wg.Wait()
	if _, err := r.endpoints.Test(ctx, tenant, ep.GetId()); err != nil {
		t.Fatal(err)
	}
	for i, s := range secrets {
		if !rc.signedBy(s) {
			t.Errorf("after concurrent rotations: not signed with secret %d", i)
		}
	}
}
