package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
)

// LayoutKey records that marketing's lead indexes are in the bucketed layout (pkg/commit bucketed
// indexes with packed members, and the e-mails in a bucketed unique index). Before it, each lead
// index was one sorted set of text ids and the e-mails one hash, at the same names the bucketed
// indexes now derive their keys from.
const LayoutKey = "crm:meta:layout:marketing-leads"

const layoutBucketed = "bucketed"

// oldIndex matches the names of the lead indexes (not the search indexes, which did not change).
var oldIndex = regexp.MustCompile(`:(leads|leads:(status|channel|campaign|tag|consent):.+|leads-by-score|leads-by-score:status:.+)$`)

// MigrateLayout moves lead indexes and e-mail hashes written before bucketed indexes into them,
// once per Redis (LayoutKey), before the service serves: reads of the old keys would find nothing
// in the new layout, so leads would drop out of every list. Each step moves up to 500 entries in
// one atomic write that adds them to the new index and removes them from the old key, so a
// migration that stops half way resumes where it was. Processes of the version before must be
// stopped first: they would keep writing the old layout. It costs a SCAN of the keyspace at the
// first start and about one write per 500 lead index entries (a million leads: a minute or so).
func MigrateLayout(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) error {
	if v, err := rdb.Get(ctx, LayoutKey).Result(); err == nil && v == layoutBucketed {
		return nil
	} else if err != nil && err != redis.Nil {
		return fmt.Errorf("redisstore: read the layout: %w", err)
	}
	moved := 0
	err := eachMaster(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, "crm:{p*}:marketing:*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			n, err := migrateKey(ctx, rdb, node, key)
			if err != nil {
				return fmt.Errorf("redisstore: migrate %s to bucketed indexes: %w", key, err)
			}
			moved += n
		}
		return iter.Err()
	})
	if err != nil {
		return err
	}
	if moved > 0 && log != nil {
		log.InfoContext(ctx, "marketing: lead indexes migrated to bucketed indexes", "entries", moved)
	}
	return rdb.Set(ctx, LayoutKey, layoutBucketed, 0).Err()
}

// eachMaster runs fn on every master of a cluster, or on the one Redis.
func eachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, redis.UniversalClient) error) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, rdb)
}

// migrateKey moves one old-layout key, if key is one, and says how many entries it moved.
func migrateKey(ctx context.Context, rdb, node redis.UniversalClient, key string) (int, error) {
	switch {
	case strings.HasSuffix(key, ":lead-emails"):
		if typ, err := node.Type(ctx, key).Result(); err != nil || typ != "hash" {
			return 0, err
		}
		moved := 0
		for cursor := uint64(0); ; {
			fields, next, err := node.HScan(ctx, key, cursor, "", 500).Result()
			if err != nil {
				return moved, err
			}
			if len(fields) > 0 {
				w := commit.New()
				for i := 0; i+1 < len(fields); i += 2 {
					w.BucketUnique(key, fields[i], fields[i+1]).HDel(key, fields[i])
				}
				if err := w.Run(ctx, rdb); err != nil {
					return moved, err
				}
				moved += len(fields) / 2
			}
			if cursor = next; cursor == 0 {
				return moved, nil
			}
		}
	case oldIndex.MatchString(key):
		if typ, err := node.Type(ctx, key).Result(); err != nil || typ != "zset" {
			return 0, err
		}
		moved := 0
		for {
			members, err := node.ZRange(ctx, key, 0, 499).Result()
			if err != nil || len(members) == 0 {
				return moved, err
			}
			if !oldMember(members[0]) { // a bucketed index's key whose name looks like an old one
				return moved, nil
			}
			w := commit.New()
			for _, m := range members {
				w.BucketAdd(key, migratedMember(m)).ZRem(key, m)
			}
			if err := w.Run(ctx, rdb); err != nil {
				return moved, err
			}
			moved += len(members)
		}
	}
	return 0, nil
}

// oldMember reports whether m is a member of an old-layout index: a text id, or a text score
// member "<ten digits>:<id>". Bucketed indexes hold packed members and bucket bounds.
func oldMember(m string) bool {
	if len(m) == 47 && m[10] == ':' {
		m = m[11:]
	}
	return len(m) == 36 && m[8] == '-' && m[13] == '-' && m[18] == '-' && m[23] == '-'
}

// migratedMember is an old-layout member as the bucketed index keeps it.
func migratedMember(m string) string {
	if score, id, ok := strings.Cut(m, ":"); ok {
		if n, err := strconv.ParseInt(score, 10, 32); err == nil {
			return scoreMember(int32(n), id)
		}
	}
	return leadMember(m)
}
