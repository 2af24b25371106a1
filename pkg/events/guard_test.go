package events_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// TestGuardAppliesEachEffectOnce commits effects as a handler would, several times each: an
// effect applies once, other effects of the same event and the same effect of another event
// apply on their own, and a write no event caused is not guarded.
func TestGuardAppliesEachEffectOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		tenant := redistest.Tenant(t)
		scope := b.keys.Scope("reactor", tenant)
		first := &eventv1.Event{Id: "e1", TenantId: tenant}
		second := &eventv1.Event{Id: "e2", TenantId: tenant}
		apply := func(e events.Effect, field string) error {
			return events.Guard(commit.New(), scope, e).HIncrBy(scope.Key("effects"), field, 1).Run(ctx, b.rdb)
		}
		tests := []struct {
			effect      events.Effect
			field       string
			wantApplied bool
		}{
			{events.EffectOf(first, "points"), "e1/points", true},
			{events.EffectOf(first, "points"), "e1/points", false},
			{events.EffectOf(first, "stage"), "e1/stage", true},
			{events.EffectOf(second, "points"), "e2/points", true},
			{events.EffectOf(first, "stage"), "e1/stage", false},
			{events.Effect{}, "unguarded", true},
			{events.Effect{}, "unguarded", true},
		}
		for i, tt := range tests {
			err := apply(tt.effect, tt.field)
			if tt.wantApplied && err != nil {
				t.Errorf("write %d (%v): got %v, want no error", i, tt.effect, err)
			}
			if !tt.wantApplied && !errors.Is(err, commit.ErrAlreadyApplied) {
				t.Errorf("write %d (%v): got %v, want %v", i, tt.effect, err, commit.ErrAlreadyApplied)
			}
		}
		got, err := b.rdb.HGetAll(ctx, scope.Key("effects")).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"e1/points": "1", "e1/stage": "1", "e2/points": "1", "unguarded": "2"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("effects (-want +got):\n%s", diff)
		}
	})
}
