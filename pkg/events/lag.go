package events

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
)

// GroupLag is how far a consumer group is behind on one partition stream.
type GroupLag struct {
	Producer  string
	Group     string
	Partition int
	// Lag is the number of entries not yet delivered to the group (-1 when Redis cannot tell).
	Lag int64
	// Pending is the number delivered but not yet acknowledged.
	Pending int64
	// DeadLetters is the number of events the group gave up on.
	DeadLetters   int64
	LastDelivered string
	Consumers     int64
}

// Lag reports every group of a producer's streams, partition by partition.
func Lag(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producer string) ([]GroupLag, error) {
	var out []GroupLag
	for p := range keys.Partitions() {
		groups, err := rdb.XInfoGroups(ctx, keys.Stream(producer, p)).Result()
		if err != nil {
			if strings.Contains(err.Error(), "no such key") {
				continue
			}
			return nil, err
		}
		for _, g := range groups {
			dead, err := rdb.XLen(ctx, keys.DeadLetters(producer, p, g.Name)).Result()
			if err != nil {
				return nil, err
			}
			out = append(out, GroupLag{
				Producer: producer, Group: g.Name, Partition: p, Lag: g.Lag, Pending: g.Pending,
				DeadLetters: dead, LastDelivered: g.LastDeliveredID, Consumers: g.Consumers,
			})
		}
	}
	return out, nil
}
