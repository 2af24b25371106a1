package rpc_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestLeadFilterForms: ListLeads and ListCampaigns take the one AIP-160 grammar, field names in
// proto or JSON case, quoted values kept whole, and refuse what their indexes cannot serve with
// INVALID_ARGUMENT naming the field.
func TestLeadFilterForms(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	camp := sys.createCampaign(t, key, campaignBody)["id"].(string)
	both := sys.captureLead(t, key, `{"email":"both@example.com","tags":["a AND b"],"campaignId":"`+camp+`"}`)["id"].(string)
	a := sys.captureLead(t, key, `{"email":"a@example.com","tags":["a"],"channel":"CHANNEL_ADS"}`)["id"].(string)

	ids := func(path string) (int, []string, string) {
		r := sys.Do(t, http.MethodGet, path, key, nil)
		var out []string
		if r.Status == http.StatusOK {
			for _, field := range []string{"leads", "campaigns"} {
				list, _ := r.JSON(t)[field].([]any)
				for _, x := range list {
					out = append(out, x.(map[string]any)["id"].(string))
				}
			}
		}
		return r.Status, out, string(r.Body)
	}
	for _, c := range []struct {
		path string
		want []string
	}{
		{"/v1/leads?filter=" + url.QueryEscape(`tags:"a AND b"`), []string{both}},
		{"/v1/leads?filter=" + url.QueryEscape(`tags:a`), []string{a}},
		{"/v1/leads?filter=" + url.QueryEscape(`campaignId = "`+strings.ToUpper(camp)+`"`), []string{both}},
		{"/v1/leads?filter=" + url.QueryEscape(`channel = CHANNEL_ADS`), []string{a}},
		{"/v1/leads?filter=" + url.QueryEscape(`status = LEAD_STATUS_NEW AND (score >= 0 AND score <= 0)`), []string{a, both}},
		{"/v1/campaigns?filter=" + url.QueryEscape(`channel = CHANNEL_EMAIL`), []string{camp}},
		{"/v1/campaigns?filter=" + url.QueryEscape(`status = CAMPAIGN_STATUS_ACTIVE`), nil},
	} {
		if code, got, body := ids(c.path); code != http.StatusOK || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %d %v %s, want %v", c.path, code, got, body, c.want)
		}
	}

	for _, c := range []struct{ path, names string }{
		{"/v1/leads?filter=" + url.QueryEscape(`given_name = "Ada"`), "given_name"},
		{"/v1/leads?filter=" + url.QueryEscape(`tags:a AND channel = CHANNEL_ADS`), "channel cannot be combined with tags"},
		{"/v1/leads?filter=" + url.QueryEscape(`status != LEAD_STATUS_NEW`), "status"},
		{"/v1/leads?filter=" + url.QueryEscape(`score > 1 AND score > 2`), "score appears twice"},
		{"/v1/leads?filter=" + url.QueryEscape(`campaign_id = "nope"`), "campaign_id"},
		{"/v1/leads?filter=" + url.QueryEscape(`tags:a OR tags:b`), "OR"},
		{"/v1/campaigns?filter=" + url.QueryEscape(`status = CAMPAIGN_STATUS_ACTIVE AND channel = CHANNEL_EMAIL`), "channel cannot be combined with status"},
		{"/v1/campaigns?filter=" + url.QueryEscape(`budget > 1`), "budget"},
	} {
		r := sys.Do(t, http.MethodGet, c.path, key, nil)
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "filter") || !strings.Contains(string(r.Body), c.names) {
			t.Errorf("%s: got %d %s, want 400 with a violation on filter naming %q", c.path, r.Status, r.Body, c.names)
		}
	}
	// A filter the grammar refuses is said in one line, never with the parser's trace of its rules.
	r := sys.Do(t, http.MethodGet, "/v1/leads?filter=status%20%3D%20", key, nil)
	want := "expected a value after '=' at column 10, where the filter ends"
	e, _ := r.JSON(t)["error"].(map[string]any)
	if v := r.Violations(t); r.Status != http.StatusBadRequest || e["message"] != "invalid filter: "+want ||
		len(v) != 1 || v[0] != [2]string{"filter", want} {
		t.Errorf("a filter that ends after '=': %d %s, want 400 saying %q", r.Status, r.Body, want)
	}
}
