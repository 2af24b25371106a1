package commit

import (
	"context"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
)

// GetIDs reads the resources with ids, keyOf naming each one's key, in one round trip (GetMany):
// for a batch get. A missing resource is the zero T (nil).
func GetIDs[T proto.Message](ctx context.Context, rdb redis.UniversalClient, ids []string, keyOf func(id string) string, newMsg func() T) ([]T, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = keyOf(id)
	}
	return GetMany(ctx, rdb, keys, newMsg)
}
