package gateway_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// BatchCreateLeads refuses every item of the family name "Refused" with the field violation a single
// call would have, in proto names, as the services write them.
func (f *fakeMarketing) BatchCreateLeads(ctx context.Context, req *marketingv1.BatchCreateLeadsRequest) (*marketingv1.BatchCreateLeadsResponse, error) {
	f.record(ctx, "BatchCreateLeads", "")
	out := &marketingv1.BatchCreateLeadsResponse{}
	for _, r := range req.GetRequests() {
		if r.GetLead().GetFamilyName() != "Refused" {
			out.Results = append(out.Results, &marketingv1.BatchCreateLeadsResult{Lead: r.GetLead()})
			continue
		}
		st, _ := grpcserver.ItemStatus(ctx, apierr.Invalid("lead.given_name", "a refused family needs a given name"))
		out.Results = append(out.Results, &marketingv1.BatchCreateLeadsResult{Error: st})
	}
	return out, nil
}

// A batch's per-item errors name fields as the REST request does, as a single call's error does.
func TestBatchItemErrorsNameFieldsAsTheRequest(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.write")
	r := sys.Do(t, "POST", "/v1/leads:batchCreate", key,
		[]byte(`{"requests":[{"lead":{"email":"ada@example.com"}},{"lead":{"email":"x@example.com","familyName":"Refused"}}]}`))
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var body struct {
		Results []struct {
			Error *struct {
				Message string
				Details []struct {
					Type            string `json:"@type"`
					FieldViolations []struct{ Field string }
				}
			}
		}
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Results) != 2 || body.Results[0].Error != nil || body.Results[1].Error == nil {
		t.Fatalf("results %s, want the second refused", r.Body)
	}
	var fields []string
	for _, d := range body.Results[1].Error.Details {
		for _, v := range d.FieldViolations {
			fields = append(fields, v.Field)
		}
	}
	if len(fields) != 1 || fields[0] != "lead.givenName" {
		t.Fatalf("the item's field violations name %q, want [lead.givenName]: %s", fields, r.Body)
	}
	if msg := body.Results[1].Error.Message; msg != "invalid lead.givenName: a refused family needs a given name" {
		t.Errorf("the item's message %q, want it to name lead.givenName", msg)
	}
}
