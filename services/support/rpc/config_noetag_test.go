package rpc_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/servicetest"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// TestConfigUpdatesWithoutAnEtagDoNotRace: two updates of different fields of an SLA policy, and of
// the settings, sent at once without an etag both apply, one after the other (a lost race reads
// again), where the loser answered ETAG_MISMATCH for an etag nobody sent: each ends with both
// changes, its etag two steps on from the default's "0". A stale etag is still ETAG_MISMATCH and
// changes nothing. Each round is a new tenant, whose policy and settings are the defaults.
func TestConfigUpdatesWithoutAnEtagDoNotRace(t *testing.T) {
	sys := startSystem(t)
	urgent := supportv1.TicketPriority_TICKET_PRIORITY_URGENT
	policy := func(ctx context.Context, c supportv1.SupportServiceClient) *supportv1.SlaPolicy {
		r, err := c.ListSlaPolicies(ctx, &supportv1.ListSlaPoliciesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.GetSlaPolicies() {
			if p.GetPriority() == urgent {
				return p
			}
		}
		t.Fatal("no urgent policy")
		return nil
	}
	settings := func(ctx context.Context, c supportv1.SupportServiceClient) *supportv1.SupportSettings {
		r, err := c.GetSupportSettings(ctx, &supportv1.GetSupportSettingsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetSettings()
	}
	hours := &supportv1.BusinessHours{TimeZone: "Europe/Paris", StartHour: 9, EndHour: 17, Days: []int32{1, 2, 3, 4, 5}}
	for round := range 10 {
		_, key := sys.NewKey(t, "", supportScopes...)
		c, ctx := sys.support(key)
		updatePolicy := func(field string, p *supportv1.SlaPolicy) error {
			p.Priority = urgent
			_, err := c.UpdateSlaPolicy(ctx, &supportv1.UpdateSlaPolicyRequest{SlaPolicy: p,
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{field}}})
			return err
		}
		updateSettings := func(field string, s *supportv1.SupportSettings) error {
			_, err := c.UpdateSupportSettings(ctx, &supportv1.UpdateSupportSettingsRequest{Settings: s,
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{field}}})
			return err
		}
		errs := servicetest.AtOnce(
			func() error {
				return updatePolicy("first_response_target", &supportv1.SlaPolicy{FirstResponseTarget: durationpb.New(30 * time.Minute)})
			},
			func() error {
				return updatePolicy("resolution_target", &supportv1.SlaPolicy{ResolutionTarget: durationpb.New(2 * time.Hour)})
			},
			func() error { return updateSettings("auto_close_days", &supportv1.SupportSettings{AutoCloseDays: 9}) },
			func() error {
				return updateSettings("business_hours", &supportv1.SupportSettings{BusinessHours: hours})
			},
		)
		if errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] != nil {
			t.Fatalf("round %d: updates without an etag (two of the policy, two of the settings): %v", round, errs)
		}
		p, s := policy(ctx, c), settings(ctx, c)
		if p.GetFirstResponseTarget().AsDuration() != 30*time.Minute || p.GetResolutionTarget().AsDuration() != 2*time.Hour ||
			p.GetEtag() != "2" {
			t.Fatalf("round %d: policy %v, want both targets at etag 2", round, p)
		}
		if s.GetAutoCloseDays() != 9 || !proto.Equal(s.GetBusinessHours(), hours) || s.GetEtag() != "2" {
			t.Fatalf("round %d: settings %v, want both fields at etag 2", round, s)
		}
		stalePolicy := updatePolicy("first_response_target", &supportv1.SlaPolicy{FirstResponseTarget: durationpb.New(time.Hour), Etag: "1"})
		staleSettings := updateSettings("auto_close_days", &supportv1.SupportSettings{AutoCloseDays: 3, Etag: "1"})
		if !isEtagMismatch(stalePolicy) || !isEtagMismatch(staleSettings) {
			t.Fatalf("round %d: stale etags answered %v and %v, want ABORTED ETAG_MISMATCH", round, stalePolicy, staleSettings)
		}
		if after := policy(ctx, c); !proto.Equal(after, p) {
			t.Fatalf("round %d: a stale etag changed the policy %v to %v", round, p, after)
		}
		if after := settings(ctx, c); !proto.Equal(after, s) {
			t.Fatalf("round %d: a stale etag changed the settings %v to %v", round, s, after)
		}
	}
}
