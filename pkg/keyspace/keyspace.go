// Package keyspace is the Redis key scheme of DESIGN.md §7:
//
//	crm:{p<N>}:<service>:<tenant>:<kind>:<id>
//
// where p<N> is the tenant's hash-tag partition. All keys of one tenant and service, and the
// service's event stream of that partition, share one cluster slot, so a write, its indexes and its
// outbox event commit in one atomic script.
package keyspace

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// PartitionsKey records the partition count the data was written with.
const PartitionsKey = "crm:meta:partitions"

// Space maps tenants to partitions and builds keys.
type Space struct {
	partitions int
}

// Open records the partition count at first start and refuses a different count afterwards:
// changing it would move every tenant to another partition and strand its data.
func Open(ctx context.Context, rdb redis.UniversalClient, partitions int) (*Space, error) {
	if partitions < 1 || partitions > 16384 {
		return nil, fmt.Errorf("keyspace: partitions must be in [1, 16384], got %d", partitions)
	}
	if err := rdb.SetNX(ctx, PartitionsKey, partitions, 0).Err(); err != nil {
		return nil, fmt.Errorf("keyspace: record partition count: %w", err)
	}
	recorded, err := rdb.Get(ctx, PartitionsKey).Int()
	if err != nil {
		return nil, fmt.Errorf("keyspace: read partition count: %w", err)
	}
	if recorded != partitions {
		return nil, &MismatchError{Recorded: recorded, Configured: partitions}
	}
	if err := markPartitions(ctx, rdb, partitions); err != nil {
		return nil, err
	}
	return &Space{partitions: partitions}, nil
}

// Reinit records partitions as the count and in every partition's marker, whatever count the
// store held: the repair of an init run with the wrong count after a data loss (the running
// processes then see their own count again). Markers of partitions past the new count are removed.
// It returns the count recorded before, 0 for none.
func Reinit(ctx context.Context, rdb redis.UniversalClient, partitions int) (int, error) {
	if partitions < 1 || partitions > 16384 {
		return 0, fmt.Errorf("keyspace: partitions must be in [1, 16384], got %d", partitions)
	}
	old, err := rdb.Get(ctx, PartitionsKey).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("keyspace: read partition count: %w", err)
	}
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, PartitionsKey, partitions, 0)
		for n := range max(partitions, old) {
			if n < partitions {
				p.Set(ctx, MarkerKey("p"+strconv.Itoa(n)), partitions, 0)
			} else {
				p.Del(ctx, MarkerKey("p"+strconv.Itoa(n)))
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("keyspace: record partition count: %w", err)
	}
	return old, nil
}

// Check reports whether the store is initialized for this space: the recorded count and every
// partition's marker hold this space's count. It is one pipelined read (on a cluster, one per
// master, in parallel), for readiness probes: a store that lost its data answers every write 503
// until it is re-initialized, and one initialized with another count strands the writes of the
// partitions it lacks. The error is ErrNotInitialized or a *MismatchError, with what to run.
func (s *Space) Check(ctx context.Context, rdb redis.UniversalClient) error {
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, PartitionsKey)
		for n := range s.partitions {
			p.Get(ctx, MarkerKey("p"+strconv.Itoa(n)))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	var missing []string
	for i, c := range cmds {
		n, err := c.(*redis.StringCmd).Int()
		switch {
		case errors.Is(err, redis.Nil) && i == 0:
			missing = append(missing, PartitionsKey)
		case errors.Is(err, redis.Nil):
			missing = append(missing, "p"+strconv.Itoa(i-1))
		case err != nil:
			return fmt.Errorf("keyspace: read partition markers: %w", err)
		case n != s.partitions:
			return &MismatchError{Recorded: n, Configured: s.partitions, Running: true}
		}
	}
	if len(missing) > 0 {
		if len(missing) > 4 {
			missing = append(missing[:4], "...")
		}
		return fmt.Errorf("%w (no %s: Redis lost its data); writes answer 503 STORE_NOT_INITIALIZED until an operator runs: crm admin redis init --partitions %d",
			ErrNotInitialized, strings.Join(missing, ", "), s.partitions)
	}
	return nil
}

// MarkerKey is the marker of the partition whose hash tag is tag ("p3"): it holds the partition
// count, in the partition's own slot. Every write into the partition checks it inside its script
// (pkg/commit), so a Redis that lost its data while a process served it is not written into
// silently: writes fail UNAVAILABLE until an operator re-initializes it (Open, which
// `crm admin redis init` runs).
func MarkerKey(tag string) string { return "crm:{" + tag + "}:meta:partitions" }

// IsPartitionTag reports whether tag is a partition's hash tag: "p" and a number.
func IsPartitionTag(tag string) bool {
	n, err := strconv.Atoi(strings.TrimPrefix(tag, "p"))
	return strings.HasPrefix(tag, "p") && err == nil && n >= 0
}

func markPartitions(ctx context.Context, rdb redis.UniversalClient, partitions int) error {
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for n := range partitions {
			p.SetNX(ctx, MarkerKey("p"+strconv.Itoa(n)), partitions, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("keyspace: mark partitions: %w", err)
	}
	return nil
}

// Load returns the space with the partition count recorded in Redis, for tools that work on an
// existing deployment.
func Load(ctx context.Context, rdb redis.UniversalClient) (*Space, error) {
	recorded, err := rdb.Get(ctx, PartitionsKey).Int()
	if errors.Is(err, redis.Nil) {
		return nil, errors.New("keyspace: no partition count recorded: nothing has run on this Redis yet")
	}
	if err != nil {
		return nil, fmt.Errorf("keyspace: read partition count: %w", err)
	}
	return &Space{partitions: recorded}, nil
}

// ErrPartitionMismatch means the configured partition count differs from the recorded one.
var ErrPartitionMismatch = errors.New("partition count mismatch")

// ErrNotInitialized means the store has lost its partition count or a partition's marker.
var ErrNotInitialized = errors.New("the store is not initialized")

// MismatchError is a partition count that differs from the store's; it is ErrPartitionMismatch.
type MismatchError struct {
	Recorded, Configured int
	// Running is set for a process that already runs with its count (the store was re-initialized
	// under it), unset for one that is starting.
	Running bool
}

func (e *MismatchError) Error() string {
	if e.Running {
		// The processes ran with their count until an init recorded another: the init was wrong.
		return fmt.Sprintf("partition count mismatch: the store is initialized for %d partitions, this process runs with %d; "+
			"its writes into partitions the store lacks answer 503. If %d was recorded by mistake, run: crm admin redis init --partitions %d --force",
			e.Recorded, e.Configured, e.Recorded, e.Configured)
	}
	return fmt.Sprintf("partition count mismatch: this Redis is initialized for %d partitions, configured %d. "+
		"Start with --partitions %d (CRM_PARTITIONS), or, only if %d was recorded by mistake (crm admin redis init with the wrong --partitions after a data loss), "+
		"run: crm admin redis init --partitions %d --force",
		e.Recorded, e.Configured, e.Recorded, e.Recorded, e.Configured)
}

func (e *MismatchError) Is(target error) bool { return target == ErrPartitionMismatch }

// Partitions is the number of partitions.
func (s *Space) Partitions() int { return s.partitions }

// Partition is the partition of a tenant.
func (s *Space) Partition(tenant string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tenant))
	return int(h.Sum32() % uint32(s.partitions))
}

// Scope returns the key builder for one service and tenant.
func (s *Space) Scope(service, tenant string) Scope {
	tag := "crm:{p" + strconv.Itoa(s.Partition(tenant)) + "}:" + service + ":"
	return Scope{prefix: tag + tenant + ":", stream: tag + "events"}
}

// Stream is a service's event stream for one partition.
func (s *Space) Stream(service string, partition int) string {
	return "crm:{p" + strconv.Itoa(partition) + "}:" + service + ":events"
}

// Partitioned is a service's key shared by the tenants of one partition, such as a schedule that a
// background sweep reads across tenants. It shares the partition's hash tag, so a tenant's write can
// update it in the same atomic call.
func (s *Space) Partitioned(service string, partition int, name string) string {
	return "crm:{p" + strconv.Itoa(partition) + "}:" + service + ":" + name
}

// DeadLetters is where a consumer group parks the events of a stream it could not handle.
func (s *Space) DeadLetters(service string, partition int, group string) string {
	return s.Stream(service, partition) + ":dlq:" + group
}

// Lease is the key whose holder is the one reader of a stream partition for a group.
func (s *Space) Lease(service string, partition int, group string) string {
	return s.Stream(service, partition) + ":lease:" + group
}

// Members is the heartbeat set of a group's live consumers of a service's streams.
func (s *Space) Members(service, group string) string {
	return "crm:bus:" + service + ":" + group + ":members"
}

// Scope builds the keys of one service and tenant.
type Scope struct {
	prefix string
	stream string
}

// Key joins parts under the scope, for example Key("lead", id).
func (s Scope) Key(parts ...string) string {
	n := len(s.prefix) + len(parts)
	for _, p := range parts {
		n += len(p)
	}
	var b strings.Builder // one allocation: keys are built on every call
	b.Grow(n)
	b.WriteString(s.prefix)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Stream is the service's event stream of the tenant's partition.
func (s Scope) Stream() string { return s.stream }
