package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/logging"
)

// TestRecurringLogsOnceAMinute fails a loop every second for three minutes on a fake clock: the
// first failure is logged, then one a minute with the count left out since the last, and after a
// Reset the next failure is logged at once.
func TestRecurringLogsOnceAMinute(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	r := logging.Recurring{Now: func() time.Time { return now }}
	ctx := context.Background()
	for i := range 180 {
		now = start.Add(time.Duration(i) * time.Second)
		r.Warn(ctx, logger, "claim", "partition", i%16)
	}
	r.Reset()
	now = now.Add(time.Second)
	r.Warn(ctx, logger, "claim", "partition", 0)

	type line struct {
		Msg        string `json:"msg"`
		Suppressed int    `json:"suppressed"`
	}
	var got []line
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	// At 0s, 60s and 120s; then the one after the Reset.
	want := []line{{Msg: "claim"}, {Msg: "claim", Suppressed: 59}, {Msg: "claim", Suppressed: 59}, {Msg: "claim"}}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
