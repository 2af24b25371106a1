package commit

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/page"
)

//go:embed page.lua
var pageSource string

var pageScript = redis.NewScript(pageSource)

// Range is one page of a sorted-set index to read.
type Range struct {
	Index string
	// Min and Max bound the range in ZRANGE syntax; empty is unbounded. By member (BYLEX: "-",
	// "+", "[a", "(a") in an index whose members all share one score, or by score when ByScore
	// (BYSCORE: "-inf", "+inf", "1.5", "(1.5").
	Min, Max string
	ByScore  bool
	Desc     bool   // from Max down to Min
	After    string // the previous page's Next; "" for the first page
	Limit    int
	// Bucketed says the index is a bucketed index (bucket.go), read by member.
	Bucketed bool
}

// Members reads one page of an index's members: one round trip, O(log n + page).
func Members(ctx context.Context, rdb redis.UniversalClient, r Range) (page.Page[string], error) {
	if r.Limit < 1 {
		return page.Page[string]{}, fmt.Errorf("commit: page of %s: limit %d, want at least 1", r.Index, r.Limit)
	}
	if r.Bucketed {
		return bucketMembers(ctx, rdb, r)
	}
	if r.ByScore {
		return byScore(ctx, rdb, r)
	}
	return byMember(ctx, rdb, r)
}

// List reads one page of the resources an index names; keyOf maps a member to its resource's key.
// Two round trips (the index range, then the resources), whatever the size of the collection; a
// resource deleted between the two reads is left out.
func List[T proto.Message](ctx context.Context, rdb redis.UniversalClient, r Range,
	keyOf func(member string) string, newMsg func() T) (page.Page[T], error) {
	members, err := Members(ctx, rdb, r)
	if err != nil || len(members.Items) == 0 {
		return page.Page[T]{}, err
	}
	keys := make([]string, len(members.Items))
	for i, m := range members.Items {
		keys[i] = keyOf(m)
	}
	all, err := GetMany(ctx, rdb, keys, newMsg)
	if err != nil {
		return page.Page[T]{}, err
	}
	out := page.Page[T]{Next: members.Next}
	for _, msg := range all {
		if msg.ProtoReflect().IsValid() {
			out.Items = append(out.Items, msg)
		}
	}
	return out, nil
}

// byMember reads a lexical range: the cursor is the last member read.
func byMember(ctx context.Context, rdb redis.UniversalClient, r Range) (page.Page[string], error) {
	lo, hi := cmp.Or(r.Min, "-"), cmp.Or(r.Max, "+")
	if r.After != "" && r.Desc {
		hi = "(" + r.After
	} else if r.After != "" {
		lo = "(" + r.After
	}
	args := redis.ZRangeArgs{Key: r.Index, Start: lo, Stop: hi, ByLex: true, Count: int64(r.Limit + 1)}
	if r.Desc {
		args.Start, args.Stop, args.Rev = hi, lo, true
	}
	members, err := rdb.ZRangeArgs(ctx, args).Result()
	if err != nil {
		return page.Page[string]{}, err
	}
	if len(members) <= r.Limit {
		return page.Page[string]{Items: members}, nil
	}
	return page.Page[string]{Items: members[:r.Limit], Next: members[r.Limit-1]}, nil
}

// byScore reads a score range with page.lua: the cursor is the last member's score and the member,
// as "<score> <member>", so that members sharing a score are neither skipped nor read twice.
func byScore(ctx context.Context, rdb redis.UniversalClient, r Range) (page.Page[string], error) {
	start, stop, rev := cmp.Or(r.Min, "-inf"), cmp.Or(r.Max, "+inf"), ""
	if r.Desc {
		start, stop, rev = stop, start, "rev"
	}
	args := []any{start, stop, rev, r.Limit + 1}
	if r.After != "" {
		score, member, ok := strings.Cut(r.After, " ")
		if !ok {
			return page.Page[string]{}, errors.New("commit: a score cursor is \"<score> <member>\"")
		}
		args = append(args, score, member)
	}
	reply, err := pageScript.RunRO(ctx, rdb, []string{r.Index}, args...).StringSlice()
	if err != nil {
		return page.Page[string]{}, fmt.Errorf("commit: page of %s: %w", r.Index, err)
	}
	n := len(reply) / 2 // member, score, member, score...
	out := page.Page[string]{Items: make([]string, 0, min(n, r.Limit))}
	for i := 0; i < n && i < r.Limit; i++ {
		out.Items = append(out.Items, reply[2*i])
	}
	if n > r.Limit {
		last := 2 * (r.Limit - 1)
		out.Next = reply[last+1] + " " + reply[last]
	}
	return out, nil
}
