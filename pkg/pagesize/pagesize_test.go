package pagesize_test

import (
	"math"
	"testing"

	"github.com/crmcycle/crm/pkg/pagesize"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		requested int32
		want      int
	}{
		{0, 50}, {-1, 50}, {1, 1}, {50, 50}, {999, 999}, {1000, 1000}, {1001, 1000}, {math.MaxInt32, 1000},
	} {
		if got := pagesize.Of(c.requested); got != c.want {
			t.Errorf("Of(%d) = %d, want %d", c.requested, got, c.want)
		}
	}
}
