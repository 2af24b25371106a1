package integration_test

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmcycle/crm/services/integration"
)

func post(c *http.Client, url string) (*http.Response, error) {
	return c.Post(url, "application/json", bytes.NewReader([]byte(`{}`)))
}

// TestSSRFGuard sends through the webhook client without allow-private: every loopback, private
// and link-local target is refused on the address actually dialed, a name included, before any
// byte is sent; and no client follows a redirect.
func TestSSRFGuard(t *testing.T) {
	var hits atomic.Int64
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	t.Cleanup(local.Close)
	_, port, _ := net.SplitHostPort(local.Listener.Addr().String())
	guarded := integration.NewHTTPClient(time.Second, false)

	targets := map[string]string{
		"127.0.0.1":                      local.URL,
		"::1":                            "http://[::1]:" + port,
		"10/8":                           "http://10.1.2.3/hook",
		"192.168/16":                     "http://192.168.0.10/hook",
		"cloud metadata 169.254.169.254": "http://169.254.169.254/latest/meta-data/",
		"IPv4-mapped loopback":           "http://[::ffff:127.0.0.1]:" + port,
		"a name resolving to loopback":   "http://localhost:" + port,
	}
	for name, url := range targets {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			resp, err := post(guarded, url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("POST %s answered %d, want it refused", url, resp.StatusCode)
			}
			if !errors.Is(err, integration.ErrPrivateAddress) {
				t.Fatalf("POST %s: %v, want ErrPrivateAddress", url, err)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("refused after %v: the check must come before connecting", d)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback receiver got %d requests, want none", n)
	}

	// A redirect is an answer, not an instruction: even with private targets allowed, the client
	// does not follow it (it could lead anywhere the guard would refuse).
	var followed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { followed.Add(1) }))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	for _, c := range []*http.Client{integration.NewHTTPClient(time.Second, true), guarded} {
		resp, err := post(c, redirect.URL)
		if err == nil {
			if resp.StatusCode != http.StatusTemporaryRedirect {
				t.Errorf("redirect answered %d, want the 307 itself", resp.StatusCode)
			}
			resp.Body.Close()
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect's target got %d requests, want none", n)
	}

	// With allow-private, the loopback receiver is reached.
	resp, err := post(integration.NewHTTPClient(time.Second, true), local.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("allow-private: %v", err)
	}
	resp.Body.Close()
}

func TestMatches(t *testing.T) {
	tests := []struct {
		filter []string
		typ    string
		want   bool
	}{
		{nil, "sales.order.placed", true},
		{[]string{"*"}, "sales.order.placed", true},
		{[]string{"sales.*"}, "sales.order.placed", true},
		{[]string{"sales.*"}, "salesforce.order.placed", false},
		{[]string{"sales.order.*"}, "sales.order.placed", true},
		{[]string{"sales.order.*"}, "sales.opportunity.won", false},
		{[]string{"support.ticket.created"}, "support.ticket.created", true},
		{[]string{"support.ticket.created"}, "support.ticket.closed", false},
		{[]string{"product.*", "support.nps.recorded"}, "support.nps.recorded", true},
	}
	for _, tt := range tests {
		if got := integration.Matches(tt.filter, tt.typ); got != tt.want {
			t.Errorf("Matches(%v, %q) = %v, want %v", tt.filter, tt.typ, got, tt.want)
		}
	}
}
