package marketing_test

import (
	"testing"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

func TestCanMoveStage(t *testing.T) {
	const (
		none     = marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED
		suspect  = marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT
		prospect = marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT
		first    = marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
		repeat   = marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER
		client   = marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
		advocate = marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE
		churned  = marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED
	)
	tests := []struct {
		from, to marketing.Stage
		ok       bool
	}{
		{none, suspect, true}, {none, prospect, true}, {none, first, true}, {none, churned, false},
		{suspect, prospect, true}, {prospect, first, true}, {prospect, client, true}, {first, repeat, true},
		{repeat, advocate, true}, {client, advocate, true},
		{prospect, suspect, false}, {repeat, first, false}, {advocate, client, false}, {first, first, false},
		{first, churned, true}, {advocate, churned, true}, {prospect, churned, false}, {suspect, churned, false},
		{churned, repeat, true}, {churned, client, true}, {churned, first, false}, {churned, advocate, false},
		{prospect, none, false}, {prospect, marketing.Stage(99), false},
	}
	for _, tt := range tests {
		if got := marketing.CanMoveStage(tt.from, tt.to); got != tt.ok {
			t.Errorf("CanMoveStage(%v, %v) = %v, want %v", tt.from, tt.to, got, tt.ok)
		}
	}
}
