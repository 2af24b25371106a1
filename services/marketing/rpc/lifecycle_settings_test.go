package rpc_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestLifecycleSettingsOverRESTAndGRPC(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")

	def := sys.Do(t, http.MethodGet, "/v1/lifecycleSettings", reader, nil)
	if def.Status != http.StatusOK || def.JSON(t)["churnWindowDays"] != float64(180) || def.JSON(t)["etag"] != "0" {
		t.Fatalf("default settings: %d %s, want a 180-day window at etag 0", def.Status, def.Body)
	}
	upd := sys.Do(t, http.MethodPatch, "/v1/lifecycleSettings?updateMask=churnWindowDays", key, []byte(`{"churnWindowDays":30,"etag":"0"}`))
	if upd.Status != http.StatusOK || upd.JSON(t)["churnWindowDays"] != float64(30) || upd.JSON(t)["etag"] != "1" || upd.JSON(t)["updateTime"] == nil {
		t.Fatalf("update: %d %s", upd.Status, upd.Body)
	}
	if evs := sys.events(t, tenant, marketingv1.EventLifecycleSettingsUpdated.Name); len(evs) != 1 {
		t.Fatalf("%d %s events, want 1", len(evs), marketingv1.EventLifecycleSettingsUpdated.Name)
	}
	before, beforeEvents := sys.footprint(t, tenant)
	for _, tt := range []struct {
		name, key, query, body string
		code                   int
		status, field          string
	}{
		{"no days", key, "churnWindowDays", `{"churnWindowDays":0}`, 400, "INVALID_ARGUMENT", "settings.churnWindowDays"},
		{"more than ten years", key, "churnWindowDays", `{"churnWindowDays":3651}`, 400, "INVALID_ARGUMENT", "settings.churnWindowDays"},
		{"negative", key, "churnWindowDays", `{"churnWindowDays":-5}`, 400, "INVALID_ARGUMENT", "settings.churnWindowDays"},
		{"not a number", key, "churnWindowDays", `{"churnWindowDays":"soon"}`, 400, "INVALID_ARGUMENT", ""},
		{"an output-only field", key, "etag", `{"etag":"7"}`, 400, "INVALID_ARGUMENT", "updateMask"},
		{"a stale etag", key, "churnWindowDays", `{"churnWindowDays":90,"etag":"0"}`, 409, "ABORTED", ""},
		{"a read-only key", reader, "churnWindowDays", `{"churnWindowDays":90}`, 403, "PERMISSION_DENIED", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := sys.Do(t, http.MethodPatch, "/v1/lifecycleSettings?updateMask="+tt.query, tt.key, []byte(tt.body))
			if r.Status != tt.code || r.ErrorStatus(t) != tt.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.code, tt.status)
			}
			if tt.field != "" && !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("field violations %v, want %s", r.FieldViolations(t), tt.field)
			}
		})
	}
	if after, afterEvents := sys.footprint(t, tenant); after != before || afterEvents != beforeEvents {
		t.Fatalf("rejected updates wrote: keys %d -> %d, events %d -> %d", before, after, beforeEvents, afterEvents)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/lifecycleSettings", stranger, nil); r.JSON(t)["churnWindowDays"] != float64(180) {
		t.Fatalf("another tenant's settings: %s, want the defaults", r.Body)
	}

	client, ctx := sys.marketing(key)
	got, err := client.GetLifecycleSettings(ctx, &marketingv1.GetLifecycleSettingsRequest{})
	if err != nil || got.GetSettings().GetChurnWindowDays() != 30 || got.GetSettings().GetEtag() != "1" {
		t.Fatalf("gRPC get: %v %v", got, err)
	}
	if _, err := client.UpdateLifecycleSettings(ctx, &marketingv1.UpdateLifecycleSettingsRequest{
		Settings: &marketingv1.LifecycleSettings{ChurnWindowDays: 4000}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"churn_window_days"}},
	}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC update to 4000 days: %v, want InvalidArgument", err)
	}

	// Two updates from the same read at once: exactly one applies, the other is ABORTED.
	var wg sync.WaitGroup
	codesSeen := make([]codes.Code, 2)
	for i, days := range []int32{60, 90} {
		wg.Go(func() {
			_, err := client.UpdateLifecycleSettings(ctx, &marketingv1.UpdateLifecycleSettingsRequest{
				Settings: &marketingv1.LifecycleSettings{ChurnWindowDays: days, Etag: "1"}})
			codesSeen[i] = status.Code(err)
		})
	}
	wg.Wait()
	slices.Sort(codesSeen)
	if !slices.Equal(codesSeen, []codes.Code{codes.OK, codes.Aborted}) {
		t.Fatalf("two concurrent updates at etag 1: %v, want one OK and one Aborted", codesSeen)
	}
	final, err := client.GetLifecycleSettings(ctx, &marketingv1.GetLifecycleSettingsRequest{})
	if err != nil || final.GetSettings().GetEtag() != "2" || (final.GetSettings().GetChurnWindowDays() != 60 && final.GetSettings().GetChurnWindowDays() != 90) {
		t.Fatalf("after the race: %v %v", final, err)
	}
}
