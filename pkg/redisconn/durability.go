package redisconn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// CheckDurability looks at how the Redis it is given keeps data (every master of a Cluster):
// an eviction policy other than noeviction is an error, since Redis would drop acknowledged
// records, indexes and outbox events to make room; no persistence (neither AOF nor snapshots) or
// snapshots only are warnings, unless the configuration allows an ephemeral Redis. A Redis whose
// CONFIG command is not available (some managed services) cannot be checked: that is a warning.
func CheckDurability(ctx context.Context, rdb redis.UniversalClient, cfg Config, logger *slog.Logger) error {
	check := func(ctx context.Context, node *redis.Client) error {
		return checkNode(ctx, node, cfg.AllowEphemeral, logger)
	}
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		return cluster.ForEachMaster(ctx, check)
	}
	if node, ok := rdb.(*redis.Client); ok {
		return check(ctx, node)
	}
	return nil
}

func checkNode(ctx context.Context, node *redis.Client, allowEphemeral bool, logger *slog.Logger) error {
	addr := node.Options().Addr
	conf := map[string]string{}
	for _, name := range []string{"maxmemory-policy", "appendonly", "appendfsync", "save"} {
		v, err := node.ConfigGet(ctx, name).Result()
		if err != nil {
			if !allowEphemeral {
				logger.WarnContext(ctx, "redis: cannot read the configuration to check durability; make sure it runs with appendonly yes and maxmemory-policy noeviction",
					"addr", addr, "error", err)
			}
			return nil
		}
		conf[name] = v[name]
	}
	if policy := conf["maxmemory-policy"]; policy != "noeviction" {
		return fmt.Errorf("redis %s: maxmemory-policy is %q: Redis would evict records, indexes and events to make room; "+
			"set maxmemory-policy noeviction (a full Redis then refuses writes, which clients see as 503)", addr, policy)
	}
	if allowEphemeral {
		return nil
	}
	switch {
	case conf["appendonly"] != "yes" && conf["save"] == "":
		logger.WarnContext(ctx, "redis: persists NOTHING (appendonly no, no snapshots): a restart loses every acknowledged write; "+
			"run it with appendonly yes (or pass --allow-ephemeral-redis)", "addr", addr)
	case conf["appendonly"] != "yes":
		logger.WarnContext(ctx, "redis: snapshots only (appendonly no): a crash loses the writes since the last snapshot; "+
			"run it with appendonly yes", "addr", addr, "save", conf["save"])
	}
	return nil
}
