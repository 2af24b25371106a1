package commit

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/page"
)

// ListWhere reads one page of the resources of a lexical index range that keep accepts, for a
// filter an index serves only in part (a prefix search with a status, say) or a record listed
// through one of several members (search.Prefix.Match). It reads the range a page at a time and
// examines at most budget members, so a request stays bounded however rare the matches: a page
// may then hold fewer than Limit items and still have a Next (AIP-158 allows short pages).
func ListWhere[T proto.Message](ctx context.Context, rdb redis.UniversalClient, r Range,
	keyOf func(member string) string, newMsg func() T, keep func(member string, msg T) bool, budget int) (page.Page[T], error) {
	if r.ByScore {
		return page.Page[T]{}, fmt.Errorf("commit: ListWhere of %s reads lexical ranges only", r.Index)
	}
	var out page.Page[T]
	for examined := 0; ; {
		members, err := Members(ctx, rdb, r)
		if err != nil {
			return page.Page[T]{}, err
		}
		keys := make([]string, len(members.Items))
		for i, m := range members.Items {
			keys[i] = keyOf(m)
		}
		msgs, err := GetMany(ctx, rdb, keys, newMsg)
		if err != nil {
			return page.Page[T]{}, err
		}
		for i, m := range members.Items {
			examined++
			if !msgs[i].ProtoReflect().IsValid() || !keep(m, msgs[i]) {
				continue
			}
			out.Items = append(out.Items, msgs[i])
			if len(out.Items) == r.Limit {
				if i < len(members.Items)-1 || members.Next != "" {
					out.Next = m
				}
				return out, nil
			}
		}
		if members.Next == "" {
			return out, nil
		}
		if examined >= budget {
			out.Next = members.Next
			return out, nil
		}
		r.After = members.Next
	}
}
