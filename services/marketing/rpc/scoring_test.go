package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/redistest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestEngagementsAndQualificationOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	camp := sys.createCampaign(t, key, campaignBody)["id"].(string)
	lead := sys.captureLead(t, key, `{"email":"eve@example.com","channel":"CHANNEL_WEB","campaignId":"`+camp+`"}`)
	id := lead["id"].(string)

	rules := sys.Do(t, http.MethodGet, "/v1/scoringRules", reader, nil)
	if rules.Status != http.StatusOK || rules.JSON(t)["mqlThreshold"] != float64(50) || rules.JSON(t)["etag"] != "0" {
		t.Fatalf("default rules: %d %s", rules.Status, rules.Body)
	}
	patched := sys.Do(t, http.MethodPatch, "/v1/scoringRules?updateMask=mqlThreshold", key, []byte(`{"mqlThreshold":20,"etag":"0"}`))
	if patched.Status != http.StatusOK || patched.JSON(t)["mqlThreshold"] != float64(20) || patched.JSON(t)["halfLifeDays"] != float64(30) || patched.JSON(t)["etag"] != "1" {
		t.Fatalf("patch rules: %d %s", patched.Status, patched.Body)
	}

	engage := func(body string) gatewaytest.Response {
		return sys.Do(t, http.MethodPost, "/v1/leads/"+id+"/engagements", key, []byte(body))
	}
	first := engage(`{"type":"ENGAGEMENT_TYPE_FORM_SUBMIT","campaignId":"` + camp + `"}`)
	if l := first.JSON(t)["lead"].(map[string]any); first.Status != http.StatusOK || l["status"] != "LEAD_STATUS_ENGAGED" || l["score"] != float64(10) ||
		first.JSON(t)["engagement"].(map[string]any)["points"] != float64(10) {
		t.Fatalf("first engagement: %d %s", first.Status, first.Body)
	}
	second := engage(`{"type":"ENGAGEMENT_TYPE_FORM_SUBMIT"}`)
	if l := second.JSON(t)["lead"].(map[string]any); second.Status != http.StatusOK || l["status"] != "LEAD_STATUS_MARKETING_QUALIFIED" || l["score"] != float64(20) {
		t.Fatalf("second engagement (reaches 20): %d %s", second.Status, second.Body)
	}
	perf := sys.Do(t, http.MethodGet, "/v1/campaigns/"+camp+"/performance", reader, nil).JSON(t)
	if perf["marketingQualifiedLeads"] != "1" {
		t.Fatalf("performance = %v, want 1 MQL", perf)
	}

	before, beforeEvents := sys.footprint(t, tenant)
	for _, tt := range []struct {
		name, method, path, key, body string
		code                          int
		status, field                 string
	}{
		{"qualify an MQL", http.MethodPost, "/v1/leads/" + id + ":qualify", key, `{}`, 400, "FAILED_PRECONDITION", ""},
		{"qualify unknown", http.MethodPost, "/v1/leads/01a20b45-2a28-7f41-b702-1121b1b3b699:qualify", key, `{}`, 404, "NOT_FOUND", ""},
		{"disqualify without reason", http.MethodPost, "/v1/leads/" + id + ":disqualify", key, `{}`, 400, "INVALID_ARGUMENT", "reason"},
		{"disqualify unknown", http.MethodPost, "/v1/leads/01a20b45-2a28-7f41-b702-1121b1b3b699:disqualify", key, `{"reason":"x"}`, 404, "NOT_FOUND", ""},
		{"engagement without type", http.MethodPost, "/v1/leads/" + id + "/engagements", key, `{}`, 400, "INVALID_ARGUMENT", "engagement.type"},
		{"engagement of an unknown type", http.MethodPost, "/v1/leads/" + id + "/engagements", key, `{"type":"ENGAGEMENT_TYPE_TELEPATHY"}`, 400, "INVALID_ARGUMENT", ""},
		{"engagement in the future", http.MethodPost, "/v1/leads/" + id + "/engagements", key,
			`{"type":"ENGAGEMENT_TYPE_PAGE_VIEW","occurredTime":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, 400, "INVALID_ARGUMENT", "engagement.occurredTime"},
		{"engagement through an unknown campaign", http.MethodPost, "/v1/leads/" + id + "/engagements", key,
			`{"type":"ENGAGEMENT_TYPE_PAGE_VIEW","campaignId":"01a20b45-2a28-7f41-b702-1121b1b3b699"}`, 400, "INVALID_ARGUMENT", "engagement.campaignId"},
		{"engagement of an unknown lead", http.MethodPost, "/v1/leads/01a20b45-2a28-7f41-b702-1121b1b3b699/engagements", key, `{"type":"ENGAGEMENT_TYPE_PAGE_VIEW"}`, 404, "NOT_FOUND", ""},
		{"engagement of a bad lead id", http.MethodPost, "/v1/leads/nope/engagements", key, `{"type":"ENGAGEMENT_TYPE_PAGE_VIEW"}`, 400, "INVALID_ARGUMENT", "leadId"},
		{"engagement with a read-only key", http.MethodPost, "/v1/leads/" + id + "/engagements", reader, `{"type":"ENGAGEMENT_TYPE_PAGE_VIEW"}`, 403, "PERMISSION_DENIED", ""},
		{"rules with a stale etag", http.MethodPatch, "/v1/scoringRules?updateMask=mqlThreshold", key, `{"mqlThreshold":40,"etag":"0"}`, 409, "ABORTED", ""},
		{"rules with threshold 0", http.MethodPatch, "/v1/scoringRules?updateMask=mqlThreshold", key, `{"mqlThreshold":0}`, 400, "INVALID_ARGUMENT", "scoringRules.mqlThreshold"},
		{"rules with an output-only field in the mask", http.MethodPatch, "/v1/scoringRules?updateMask=etag", key, `{"etag":"9"}`, 400, "INVALID_ARGUMENT", "updateMask"},
		{"rules giving a type points twice", http.MethodPatch, "/v1/scoringRules?updateMask=engagementPoints", key,
			`{"engagementPoints":[{"type":"ENGAGEMENT_TYPE_PAGE_VIEW","points":1},{"type":"ENGAGEMENT_TYPE_PAGE_VIEW","points":2}]}`, 400, "INVALID_ARGUMENT", "scoringRules.engagementPoints"},
		{"rules with a read-only key", http.MethodPatch, "/v1/scoringRules?updateMask=mqlThreshold", reader, `{"mqlThreshold":40}`, 403, "PERMISSION_DENIED", ""},
		{"rules without a key", http.MethodGet, "/v1/scoringRules", "", ``, 401, "UNAUTHENTICATED", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.Do(t, tt.method, tt.path, tt.key, body)
			if r.Status != tt.code || r.ErrorStatus(t) != tt.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.code, tt.status)
			}
			if tt.field != "" && !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("field violations %v, want %s", r.FieldViolations(t), tt.field)
			}
		})
	}
	if after, afterEvents := sys.footprint(t, tenant); after != before || afterEvents != beforeEvents {
		t.Fatalf("rejected requests wrote: keys %d -> %d, events %d -> %d", before, after, beforeEvents, afterEvents)
	}

	dis := sys.Do(t, http.MethodPost, "/v1/leads/"+id+":disqualify", key, []byte(`{"reason":"competitor"}`))
	if dis.Status != http.StatusOK || dis.JSON(t)["status"] != "LEAD_STATUS_DISQUALIFIED" || dis.JSON(t)["disqualifyReason"] != "competitor" {
		t.Fatalf("disqualify: %d %s", dis.Status, dis.Body)
	}
	if r := sys.Do(t, http.MethodPost, "/v1/leads/"+id+":disqualify", key, []byte(`{"reason":"again"}`)); r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" {
		t.Fatalf("disqualify twice: %d %s", r.Status, r.Body)
	}
	// A disqualified lead still records engagements but never qualifies again by score.
	if r := engage(`{"type":"ENGAGEMENT_TYPE_EVENT_ATTENDED"}`); r.Status != http.StatusOK || r.JSON(t)["lead"].(map[string]any)["status"] != "LEAD_STATUS_DISQUALIFIED" {
		t.Fatalf("engagement of a disqualified lead: %d %s", r.Status, r.Body)
	}

	other := sys.captureLead(t, key, `{"email":"hand@example.com"}`)["id"].(string)
	if r := sys.Do(t, http.MethodPost, "/v1/leads/"+other+":qualify", key, []byte(`{}`)); r.Status != http.StatusOK || r.JSON(t)["status"] != "LEAD_STATUS_MARKETING_QUALIFIED" {
		t.Fatalf("qualify a NEW lead by hand: %d %s", r.Status, r.Body)
	}
	counts := map[string]int{}
	for _, ev := range sys.events(t, tenant, "") {
		counts[ev.GetType()]++
	}
	if counts["marketing.lead.qualified"] != 2 || counts["marketing.lead.disqualified"] != 1 || counts["marketing.lead.engaged"] != 3 {
		t.Fatalf("events %v, want 2 qualified, 1 disqualified, 3 engaged", counts)
	}
}

func TestScoringOverGRPCAndIsolation(t *testing.T) {
	sys := startSystem(t)
	_, owner := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(owner)
	foreign, fctx := sys.marketing(stranger)

	captured, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "grpc-score@example.com", Company: "Acme"}})
	if err != nil {
		t.Fatal(err)
	}
	id := captured.GetLead().GetId()
	if captured.GetLead().GetScore() != 10 {
		t.Fatalf("captured with a company: score %d, want the default 10 fit points", captured.GetLead().GetScore())
	}
	rules, err := client.UpdateScoringRules(ctx, &marketingv1.UpdateScoringRulesRequest{
		ScoringRules: &marketingv1.ScoringRules{HalfLifeDays: 0, CompanyPoints: 30},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"half_life_days", "company_points"}},
	})
	if err != nil || rules.GetScoringRules().GetCompanyPoints() != 30 {
		t.Fatalf("update rules: %v %v", rules, err)
	}
	eng, err := client.RecordEngagement(ctx, &marketingv1.RecordEngagementRequest{LeadId: id, Engagement: &marketingv1.Engagement{
		Type: marketingv1.EngagementType_ENGAGEMENT_TYPE_EVENT_ATTENDED, OccurredTime: timestamppb.New(time.Now().Add(-24 * time.Hour))}})
	if err != nil || eng.GetLead().GetScore() != 45 || eng.GetLead().GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_ENGAGED {
		t.Fatalf("engagement: %v %v; want score 30 + 15 without decay, ENGAGED", eng, err)
	}
	q, err := client.QualifyLead(ctx, &marketingv1.QualifyLeadRequest{Id: id})
	if err != nil || q.GetLead().GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED {
		t.Fatalf("qualify: %v %v", q, err)
	}
	if _, err := client.QualifyLead(ctx, &marketingv1.QualifyLeadRequest{Id: id}); status.Code(err) != codes.FailedPrecondition ||
		status.Convert(err).Message() != "a LEAD_STATUS_MARKETING_QUALIFIED lead cannot become LEAD_STATUS_MARKETING_QUALIFIED" {
		t.Fatalf("qualify twice: %v, want FailedPrecondition naming the statuses", err)
	}
	if _, err := client.RecordEngagement(ctx, &marketingv1.RecordEngagementRequest{LeadId: id, Engagement: &marketingv1.Engagement{}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("engagement without type: %v, want InvalidArgument", err)
	}
	if _, err := client.UpdateScoringRules(ctx, &marketingv1.UpdateScoringRulesRequest{
		ScoringRules: &marketingv1.ScoringRules{MqlThreshold: 10, Etag: "0"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mql_threshold"}},
	}); status.Code(err) != codes.Aborted {
		t.Fatalf("stale rules etag: %v, want Aborted", err)
	}

	// Another tenant sees none of it: the lead is NOT_FOUND on every route and its rules are the defaults.
	for name, call := range map[string]func() error{
		"RecordEngagement": func() error {
			_, err := foreign.RecordEngagement(fctx, &marketingv1.RecordEngagementRequest{LeadId: id,
				Engagement: &marketingv1.Engagement{Type: marketingv1.EngagementType_ENGAGEMENT_TYPE_PAGE_VIEW}})
			return err
		},
		"QualifyLead": func() error { _, err := foreign.QualifyLead(fctx, &marketingv1.QualifyLeadRequest{Id: id}); return err },
		"DisqualifyLead": func() error {
			_, err := foreign.DisqualifyLead(fctx, &marketingv1.DisqualifyLeadRequest{Id: id, Reason: "x"})
			return err
		},
	} {
		if code := status.Code(call()); code != codes.NotFound {
			t.Errorf("%s with another tenant's key: %v, want NotFound", name, code)
		}
	}
	theirs, err := foreign.GetScoringRules(fctx, &marketingv1.GetScoringRulesRequest{})
	if err != nil || theirs.GetScoringRules().GetCompanyPoints() != 10 || theirs.GetScoringRules().GetEtag() != "0" {
		t.Fatalf("another tenant's rules: %v %v, want the defaults", theirs, err)
	}
	d, err := client.DisqualifyLead(ctx, &marketingv1.DisqualifyLeadRequest{Id: id, Reason: "no budget"})
	if err != nil || d.GetLead().GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED {
		t.Fatalf("disqualify: %v %v", d, err)
	}
	if _, err := client.DisqualifyLead(ctx, &marketingv1.DisqualifyLeadRequest{Id: id}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("disqualify without reason: %v, want InvalidArgument", err)
	}
}

// A capture is one Redis round trip, its write: the scoring rules are kept between captures and
// checked inside that write, so a change of rules made by another process still scores the very
// next capture, new lead or known.
func TestCaptureIsOneRoundTripAndSeesRulesChangedElsewhere(t *testing.T) {
	one, other := startSystem(t), startSystem(t) // two processes over one Redis
	_, key := one.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := one.marketing(key)
	elsewhere, ectx := other.marketing(key)
	capture := func(email string) *marketingv1.Lead {
		t.Helper()
		res, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: email, Company: "Acme"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetLead()
	}
	if got := capture("rules-1@example.com").GetScore(); got != 10 {
		t.Fatalf("first capture: score %d, want the default 10 company points", got)
	}
	// Only the commands of a call being served: the event consumers share the client and react to
	// the first capture meanwhile.
	counter := &redistest.Commands{Only: func(ctx context.Context) bool { _, served := grpc.Method(ctx); return served }}
	one.Suite.Redis.AddHook(counter)
	capture("rules-2@example.com")
	if got := counter.Take(); len(got) != 1 || got[0] != "evalsha" {
		t.Errorf("a new lead's capture sent %v to Redis, want one evalsha", got)
	}

	for i, points := range []int32{30, 25} {
		if _, err := elsewhere.UpdateScoringRules(ectx, &marketingv1.UpdateScoringRulesRequest{
			ScoringRules: &marketingv1.ScoringRules{CompanyPoints: points},
			UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"company_points"}},
		}); err != nil {
			t.Fatal(err)
		}
		email := fmt.Sprintf("rules-new-%d@example.com", i)
		if i == 1 {
			email = "rules-1@example.com" // a known lead: the touch path checks the rules too
		}
		if got := capture(email).GetScore(); got != points {
			t.Errorf("capture of %s after the rules changed elsewhere: score %d, want %d", email, got, points)
		}
	}
}
