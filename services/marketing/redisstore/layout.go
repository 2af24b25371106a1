package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
)

// LayoutKey records the layout of marketing's lead indexes. Without it, each lead index was one
// sorted set of text ids and the e-mails one hash; at "bucketed", the lead indexes were pkg/commit
// bucketed indexes with packed members and the e-mails a bucketed unique index, but each search
// index was still one sorted set of "<text>\x00<text id>"; at "bucketed-search", the search
// indexes are bucketed too. A later layout keeps the names of the keys before it: its indexes
// derive their keys from them.
const LayoutKey = "crm:meta:layout:marketing-leads"

const (
	layoutBucketed       = "bucketed"
	layoutBucketedSearch = "bucketed-search"
)

// oldIndex matches the names of the lead list indexes; oldSearchIndex those of the search indexes.
var (
	oldIndex       = regexp.MustCompile(`:(leads|leads:(status|channel|campaign|tag|consent):.+|leads-by-score|leads-by-score:status:.+)$`)
	oldSearchIndex = regexp.MustCompile(`:leads:search:(name|company)$`)
)

// MigrateLayout moves lead indexes, search indexes and e-mail hashes written in a layout before
// into bucketed indexes, once per Redis (LayoutKey), before the service serves: reads of the old
// keys would find nothing in the new layout, so leads would drop out of every list and search. A
// Redis at "bucketed" moves its search indexes alone. Each step moves up to 500 entries in one
// atomic write that adds them to the new index and removes them from the old key, so a migration
// that stops half way resumes where it was. Processes of the version before must be stopped
// first: they would keep writing the old layout. It costs a SCAN of the keyspace at the first
// start and about one write per 500 index entries (a million leads: a minute or so).
func MigrateLayout(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) error {
	v, err := rdb.Get(ctx, LayoutKey).Result()
	if err != nil && err != redis.Nil {
		return fmt.Errorf("redisstore: read the layout: %w", err)
	}
	if v == layoutBucketedSearch {
		return nil
	}
	searchOnly := v == layoutBucketed
	moved := 0
	err = eachMaster(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, "crm:{p*}:marketing:*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			n, err := migrateKey(ctx, rdb, node, key, searchOnly)
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
		log.InfoContext(ctx, "marketing: lead indexes migrated to bucketed indexes", "entries", moved, "from", cmp.Or(v, "sorted sets"))
	}
	return rdb.Set(ctx, LayoutKey, layoutBucketedSearch, 0).Err()
}

// eachMaster runs fn on every master of a cluster, or on the one Redis.
func eachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, redis.UniversalClient) error) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, rdb)
}

// migrateKey moves one old-layout key, if key is one (of the search indexes alone when searchOnly),
// and says how many entries it moved.
func migrateKey(ctx context.Context, rdb, node redis.UniversalClient, key string, searchOnly bool) (int, error) {
	switch {
	case !searchOnly && strings.HasSuffix(key, ":lead-emails"):
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
	case oldSearchIndex.MatchString(key) || (!searchOnly && oldIndex.MatchString(key)):
		if typ, err := node.Type(ctx, key).Result(); err != nil || typ != "zset" {
			return 0, err
		}
		moved := 0
		for {
			members, err := node.ZRange(ctx, key, 0, 499).Result()
			if err != nil || len(members) == 0 {
				return moved, err
			}
			migrated := migration(key, members[0], searchOnly)
			if migrated == nil { // a bucketed index's key whose name looks like an old one
				return moved, nil
			}
			w := commit.New()
			for _, m := range members {
				w.BucketAdd(key, migrated(m)).ZRem(key, m)
			}
			if err := w.Run(ctx, rdb); err != nil {
				return moved, err
			}
			moved += len(members)
		}
	}
	return 0, nil
}

// migration is how the members of the old index key, whose first member is first, are kept in
// the bucketed index; nil when key is not an old index to migrate. The member tells the kinds
// apart: a tag may end like a search index's name ("x:leads:search:name").
func migration(key, first string, searchOnly bool) func(string) string {
	switch {
	case oldSearchIndex.MatchString(key) && oldSearchMember(first):
		return storedSearchMember // the text form of a cursor is the old member
	case !searchOnly && oldIndex.MatchString(key) && oldMember(first):
		return migratedMember
	}
	return nil
}

// oldMember reports whether m is a member of an old-layout index: a text id, or a text score
// member "<ten digits>:<id>". Bucketed indexes hold packed members and bucket bounds.
func oldMember(m string) bool {
	if len(m) == 47 && m[10] == ':' {
		m = m[11:]
	}
	return textID(m)
}

func textID(m string) bool {
	return len(m) == 36 && m[8] == '-' && m[13] == '-' && m[18] == '-' && m[23] == '-'
}

// oldSearchMember reports whether m is a member of an old search index: "<text>\x00<text id>". A
// bucketed search index's member ends in a packed id, 16 bytes after its separator.
func oldSearchMember(m string) bool {
	return len(m) > 37 && m[len(m)-37] == 0 && textID(m[len(m)-36:])
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
