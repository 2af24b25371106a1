// Package operations keeps a service's long-running operations (AIP-151) in Redis, per tenant:
// their progress metadata, a lease the running process renews, and a cancel flag. The name carries
// the owning service ("operations/marketing.<id>"), so the gateway routes GetOperation and
// CancelOperation to it. An operation whose lease ran out (its process stopped) reads as FAILED,
// resumable from the line after its last checkpoint.
package operations

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/keyspace"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Lease is how long a running operation counts as alive after its last renewal; Running renews it
// every Lease/4.
var Lease = 10 * time.Second

// Retention is how long an operation is kept after its last change.
const Retention = 7 * 24 * time.Hour

// ErrNotFound is an operation the tenant does not have.
var ErrNotFound = apierr.New(apierr.NotFound, "OPERATION_NOT_FOUND", "operation not found")

// Store is one service's operations.
type Store struct {
	rdb     redis.UniversalClient
	keys    *keyspace.Space
	service string
	now     func() time.Time
}

// New returns the operations of service.
func New(rdb redis.UniversalClient, keys *keyspace.Space, service string, now func() time.Time) *Store {
	return &Store{rdb: rdb, keys: keys, service: service, now: now}
}

func (s *Store) key(tenant, id string) string {
	return s.keys.Scope(s.service, tenant).Key("operation", id)
}
func (s *Store) index(tenant string) string { return s.keys.Scope(s.service, tenant).Key("operations") }

// Name is the operation's resource name.
func (s *Store) Name(id string) string { return "operations/" + s.service + "." + id }

// id is the id a name of this service's operations carries.
func (s *Store) id(name string) (string, error) {
	id, ok := strings.CutPrefix(name, "operations/"+s.service+".")
	if !ok {
		return "", ErrNotFound
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", ErrNotFound
	}
	return id, nil
}

// Running is an operation this process runs.
type Running struct {
	store       *Store
	tenant, id  string
	stopRenewal context.CancelFunc
}

// Name is the operation's resource name.
func (r *Running) Name() string { return r.store.Name(r.id) }

// ID is the operation's id.
func (r *Running) ID() string { return r.id }

// Start records a new running operation with its first metadata and renews its lease until Finish.
func (s *Store) Start(ctx context.Context, tenant string, meta *typev1.ImportMetadata) (*Running, error) {
	id := uuid.Must(uuid.NewV7()).String()
	now := s.now()
	meta.State, meta.CreateTime, meta.UpdateTime = typev1.ImportState_IMPORT_STATE_RUNNING, timestamppb.New(now), timestamppb.New(now)
	data, err := proto.Marshal(meta)
	if err != nil {
		return nil, err
	}
	key := s.key(tenant, id)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "m", data, "lease", now.Add(Lease).UnixMilli())
		p.Expire(ctx, key, Retention)
		p.ZAdd(ctx, s.index(tenant), redis.Z{Score: float64(now.UnixMilli()), Member: id})
		p.Expire(ctx, s.index(tenant), Retention)
		return nil
	})
	if err != nil {
		return nil, err
	}
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &Running{store: s, tenant: tenant, id: id, stopRenewal: stop}
	go r.renew(renewCtx)
	return r, nil
}

// renew keeps the lease while the process lives, so an operation waiting on a slow client does not
// read as stopped.
func (r *Running) renew(ctx context.Context) {
	t := time.NewTicker(Lease / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.store.rdb.HSet(ctx, r.store.key(r.tenant, r.id), "lease", r.store.now().Add(Lease).UnixMilli())
		}
	}
}

// checkpoint stores the metadata and renews the lease unless the operation is done, and says
// whether a cancel was asked for.
var checkpoint = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'done') == 1 then return 'done' end
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'lease', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if redis.call('HEXISTS', KEYS[1], 'cancel') == 1 then return 'cancel' end
return 'ok'`)

// Checkpoint records progress; cancelled is true once CancelOperation was called.
func (r *Running) Checkpoint(ctx context.Context, meta *typev1.ImportMetadata) (cancelled bool, err error) {
	meta.UpdateTime = timestamppb.New(r.store.now())
	data, err := proto.Marshal(meta)
	if err != nil {
		return false, err
	}
	res, err := checkpoint.Run(ctx, r.store.rdb, []string{r.store.key(r.tenant, r.id)},
		data, r.store.now().Add(Lease).UnixMilli(), Retention.Milliseconds()).Text()
	return res == "cancel", err
}

// Finish records the final metadata (its state says how it ended) and stops renewing the lease.
// It writes even when ctx ended (the client went away): the outcome is what GetOperation reads.
func (r *Running) Finish(ctx context.Context, meta *typev1.ImportMetadata) error {
	r.stopRenewal()
	meta.UpdateTime = timestamppb.New(r.store.now())
	data, err := proto.Marshal(meta)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return r.store.rdb.HSet(ctx, r.store.key(r.tenant, r.id), "m", data, "done", "1").Err()
}

// Get returns the operation named, marking it FAILED first when it runs no more (its lease ran
// out: the process that ran it stopped).
func (s *Store) Get(ctx context.Context, tenant, name string) (*longrunningpb.Operation, error) {
	id, err := s.id(name)
	if err != nil {
		return nil, err
	}
	meta, err := s.read(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return s.operation(id, meta)
}

// abandon marks an operation whose lease ran out as done with the metadata given, unless it was
// renewed or finished meanwhile.
var abandon = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'done') == 1 or redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[2], 'done', '1')
return 1`)

func (s *Store) read(ctx context.Context, tenant, id string) (*typev1.ImportMetadata, error) {
	key := s.key(tenant, id)
	for range 3 {
		v, err := s.rdb.HMGet(ctx, key, "m", "lease", "done").Result()
		if err != nil {
			return nil, err
		}
		data, ok := v[0].(string)
		if !ok {
			return nil, ErrNotFound
		}
		meta := &typev1.ImportMetadata{}
		if err := proto.Unmarshal([]byte(data), meta); err != nil {
			return nil, fmt.Errorf("operations: decode %s: %w", key, err)
		}
		lease, _ := v[1].(string)
		until, _ := strconv.ParseInt(lease, 10, 64)
		if v[2] != nil || until > s.now().UnixMilli() {
			return meta, nil
		}
		meta.State = typev1.ImportState_IMPORT_STATE_FAILED
		meta.ResumeFromLine = meta.GetCheckpointLine() + 1
		meta.UpdateTime = timestamppb.New(s.now())
		out, err := proto.Marshal(meta)
		if err != nil {
			return nil, err
		}
		if done, err := abandon.Run(ctx, s.rdb, []string{key}, lease, out).Int(); err != nil || done == 1 {
			return meta, err
		}
	}
	return nil, errors.New("operations: the operation kept changing")
}

// operation renders the stored metadata as an Operation.
func (s *Store) operation(id string, meta *typev1.ImportMetadata) (*longrunningpb.Operation, error) {
	m, err := anypb.New(meta)
	if err != nil {
		return nil, err
	}
	op := &longrunningpb.Operation{Name: s.Name(id), Metadata: m}
	switch meta.GetState() {
	case typev1.ImportState_IMPORT_STATE_SUCCEEDED:
		op.Done, op.Result = true, &longrunningpb.Operation_Response{Response: m}
	case typev1.ImportState_IMPORT_STATE_FAILED:
		st, _ := status.New(codes.Aborted, fmt.Sprintf(
			"the import stopped after line %d; send the file again with resumeFromLine=%d",
			meta.GetCheckpointLine(), meta.GetResumeFromLine())).WithDetails(&errdetails.ErrorInfo{
			Reason: "IMPORT_INTERRUPTED", Domain: s.service + ".crm",
			Metadata: map[string]string{"resume_from_line": strconv.FormatInt(meta.GetResumeFromLine(), 10)}})
		op.Done, op.Result = true, &longrunningpb.Operation_Error{Error: st.Proto()}
	case typev1.ImportState_IMPORT_STATE_CANCELLED:
		op.Done, op.Result = true, &longrunningpb.Operation_Error{Error: status.New(codes.Canceled,
			fmt.Sprintf("cancelled after line %d", meta.GetCheckpointLine())).Proto()}
	}
	return op, nil
}

// Cancel asks a running operation to stop at its next checkpoint and returns it; a done one is
// returned unchanged.
func (s *Store) Cancel(ctx context.Context, tenant, name string) (*longrunningpb.Operation, error) {
	id, err := s.id(name)
	if err != nil {
		return nil, err
	}
	key := s.key(tenant, id)
	if n, err := s.rdb.Exists(ctx, key).Result(); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, ErrNotFound
	}
	if err := s.rdb.HSet(ctx, key, "cancel", "1").Err(); err != nil {
		return nil, err
	}
	return s.Get(ctx, tenant, name)
}

// maxPage bounds a page of List.
const maxPage = 100

// List returns the tenant's operations, newest first, from the one after the given name.
func (s *Store) List(ctx context.Context, tenant string, size int, after string) ([]*longrunningpb.Operation, string, error) {
	if size <= 0 || size > maxPage {
		size = maxPage
	}
	max := "+inf"
	if after != "" {
		id, err := s.id(after)
		if err != nil {
			return nil, "", apierr.Invalid("page_token", "not a token of this list")
		}
		score, err := s.rdb.ZScore(ctx, s.index(tenant), id).Result()
		if err != nil {
			return nil, "", apierr.Invalid("page_token", "not a token of this list")
		}
		max = "(" + strconv.FormatFloat(score, 'f', -1, 64)
	}
	ids, err := s.rdb.ZRevRangeByScore(ctx, s.index(tenant), &redis.ZRangeBy{Max: max, Min: "-inf", Count: int64(size) + 1}).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > size {
		ids, next = ids[:size], s.Name(ids[size-1])
	}
	out := make([]*longrunningpb.Operation, 0, len(ids))
	for _, id := range ids {
		meta, err := s.read(ctx, tenant, id)
		if errors.Is(err, ErrNotFound) {
			continue // expired
		}
		if err != nil {
			return nil, "", err
		}
		op, err := s.operation(id, meta)
		if err != nil {
			return nil, "", err
		}
		out = append(out, op)
	}
	return out, next, nil
}
