package support_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/crmcycle/crm/pkg/apierr"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// TestBusinessHoursAcrossAWeekend: under a Monday-to-Friday 9-17 Berlin calendar, a HIGH ticket
// (2 h first response, 16 h resolution, in business hours) opened late on a Friday is due on
// Monday and Tuesday; a pause moves the due times by the business time it took; the remaining time
// counts business time; the breach falls exactly at the business-time due time.
func TestBusinessHoursAcrossAWeekend(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 3, day, hour, minute, 0, 0, berlin) } // 6 March 2026 is a Friday
	week := &supportv1.BusinessHours{TimeZone: "Europe/Berlin", StartHour: 9, EndHour: 17, Days: []int32{1, 2, 3, 4, 5}}
	if _, err := f.config.UpdateSettings(ctx, f.tenant, &support.SupportSettings{AutoCloseDays: 4, BusinessHours: week}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.config.UpdatePolicy(ctx, f.tenant, &support.SlaPolicy{Priority: supportv1.TicketPriority_TICKET_PRIORITY_HIGH,
		FirstResponseTarget: durationpb.New(2 * time.Hour), ResolutionTarget: durationpb.New(16 * time.Hour), BusinessHours: true}, nil); err != nil {
		t.Fatal(err)
	}

	f.clock.Set(at(6, 16, 0))
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_HIGH)
	if fr, res := tk.GetFirstResponse().GetDueTime().AsTime(), tk.GetResolution().GetDueTime().AsTime(); !fr.Equal(at(9, 10, 0)) || !res.Equal(at(10, 16, 0)) {
		t.Fatalf("due %v and %v, want Monday 10:00 and Tuesday 16:00", fr.In(berlin), res.In(berlin))
	}
	f.clock.Set(at(7, 12, 0)) // Saturday: one business hour left of the first response
	if left := f.get(t, tk.GetId()).GetFirstResponse().GetRemaining().AsDuration(); left != time.Hour {
		t.Fatalf("remaining on Saturday = %v, want 1h", left)
	}

	// Pending from Friday 16:30 to Monday 9:00: 30 business minutes were used, none while paused.
	f.clock.Set(at(6, 16, 0))
	f.move(t, tk.GetId(), support.MoveOpen)
	f.clock.Set(at(6, 16, 30))
	f.move(t, tk.GetId(), support.MovePend)
	f.clock.Set(at(9, 9, 0))
	tk = f.move(t, tk.GetId(), support.MoveOpen)
	if fr, res := tk.GetFirstResponse().GetDueTime().AsTime(), tk.GetResolution().GetDueTime().AsTime(); !fr.Equal(at(9, 10, 30)) || !res.Equal(at(10, 16, 30)) {
		t.Fatalf("after the pause: due %v and %v, want Monday 10:30 and Tuesday 16:30", fr.In(berlin), res.In(berlin))
	}
	f.expectSweep(t, at(9, 10, 30).Add(-time.Millisecond), 0, 0)
	f.expectSweep(t, at(9, 10, 30), 1, 0)

	// A time zone Go does not know is a field error.
	_, err = f.config.UpdateSettings(ctx, f.tenant, &support.SupportSettings{AutoCloseDays: 4,
		BusinessHours: &supportv1.BusinessHours{TimeZone: "Mars/Olympus", StartHour: 9, EndHour: 17, Days: []int32{1}}}, nil)
	if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument || e.Fields[0].Field != "settings.business_hours.time_zone" {
		t.Fatalf("unknown time zone: %v, want INVALID_ARGUMENT", err)
	}
}
