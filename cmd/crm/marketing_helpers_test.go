package main

import (
	"net/http"
	"testing"
)

// Marketing shortcuts for the tests here that need marketing beside other services; marketing's
// own tests live in services/marketing/rpc.

const campaignBody = `{"displayName":"Spring webinar","channel":"CHANNEL_EMAIL",
	"budget":{"currencyCode":"EUR","units":"1000"},"actualCost":{"currencyCode":"EUR","units":"300"},
	"startTime":"2026-03-01T00:00:00Z","endTime":"2026-04-01T00:00:00Z"}`

func (s *system) createCampaign(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/campaigns", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("create campaign: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func (s *system) captureLead(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/leads", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}
	return r.json(t)
}
