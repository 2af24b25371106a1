package commit_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
)

// TestMoveTurnsIndexEntriesFromOldToNew: entries only in the old set leave their index, entries
// only in the new set enter theirs (or take their new score), shared entries are not written.
func TestMoveTurnsIndexEntriesFromOldToNew(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	all, open, closed, line := f.scope.Key("ix", "all"), f.scope.Key("ix", "open"), f.scope.Key("ix", "closed"), f.scope.Key("line")
	tests := []struct {
		name     string
		old, new []commit.Entry
		want     map[string]any
	}{
		{
			name: "create",
			new:  []commit.Entry{{Index: all, Member: "r1"}, {Index: open, Member: "r1"}, {Index: line, Member: "r1", Score: 2}},
			want: map[string]any{
				all: []redis.Z{{Member: "r1"}}, open: []redis.Z{{Member: "r1"}}, closed: nil, line: []redis.Z{{Score: 2, Member: "r1"}},
			},
		},
		{
			name: "move between indexes and to a new score",
			old:  []commit.Entry{{Index: all, Member: "r1"}, {Index: open, Member: "r1"}, {Index: line, Member: "r1", Score: 2}},
			new:  []commit.Entry{{Index: all, Member: "r1"}, {Index: closed, Member: "r1"}, {Index: line, Member: "r1", Score: 3}},
			want: map[string]any{
				all: []redis.Z{{Member: "r1"}}, open: nil, closed: []redis.Z{{Member: "r1"}}, line: []redis.Z{{Score: 3, Member: "r1"}},
			},
		},
		{
			name: "delete",
			old:  []commit.Entry{{Index: all, Member: "r1"}, {Index: closed, Member: "r1"}, {Index: line, Member: "r1", Score: 3}},
			want: map[string]any{all: nil, open: nil, closed: nil, line: nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := commit.New().Move(tt.old, tt.new).Run(ctx, f.rdb); err != nil {
				t.Fatalf("Run: got %v, want no error", err)
			}
			if diff := cmp.Diff(tt.want, state(t, f.rdb, all, open, closed, line)); diff != "" {
				t.Errorf("indexes (-want +got):\n%s", diff)
			}
		})
	}
}
