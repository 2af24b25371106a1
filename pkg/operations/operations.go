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
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
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
// Its create time and its score in the index are one clock reading: a list cursor (Cursor) and the
// gateway's merge of the services' lists take the one from the metadata for the other, so the
// caller passes the same metadata on to Checkpoint and Finish.
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
// denied, for a FAILED import, is the refusal of the caller's key that stopped it: the operation's
// error then, since sending the file again with that key cannot help (nil: an interruption).
func (r *Running) Finish(ctx context.Context, meta *typev1.ImportMetadata, denied *apierr.Error) error {
	r.stopRenewal()
	meta.UpdateTime = timestamppb.New(r.store.now())
	data, err := proto.Marshal(meta)
	if err != nil {
		return err
	}
	fields := []any{"m", data, "done", "1"}
	if denied != nil {
		cause, err := proto.Marshal(r.store.deniedStatus(denied, meta).Proto())
		if err != nil {
			return err
		}
		fields = append(fields, "err", cause)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return r.store.rdb.HSet(ctx, r.store.key(r.tenant, r.id), fields...).Err()
}

// deniedStatus is the error of an import the caller's key was refused for (PERMISSION_DENIED), or
// whose file was refused (INVALID_ARGUMENT: over the size limit), with the refusal's reason,
// message and fields, and where to resume.
func (s *Store) deniedStatus(denied *apierr.Error, meta *typev1.ImportMetadata) *status.Status {
	md := map[string]string{"resume_from_line": strconv.FormatInt(meta.GetResumeFromLine(), 10)}
	for k, v := range denied.Metadata {
		md[k] = v
	}
	code := codes.PermissionDenied
	if denied.Kind == apierr.InvalidArgument {
		code = codes.InvalidArgument
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: denied.Reason, Domain: s.service + ".crm", Metadata: md}}
	if len(denied.Fields) > 0 {
		bad := &errdetails.BadRequest{}
		for _, f := range denied.Fields {
			bad.FieldViolations = append(bad.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description})
		}
		details = append(details, bad)
	}
	st, _ := status.New(code, fmt.Sprintf("%s (the import stopped after line %d)", denied.Message, meta.GetCheckpointLine())).WithDetails(details...)
	return st
}

// Get returns the operation named, marking it FAILED first when it runs no more (its lease ran
// out: the process that ran it stopped).
func (s *Store) Get(ctx context.Context, tenant, name string) (*longrunningpb.Operation, error) {
	id, err := s.id(name)
	if err != nil {
		return nil, err
	}
	meta, cause, err := s.read(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return s.operation(id, meta, cause)
}

// abandon marks an operation whose lease ran out as done with the metadata given, unless it was
// renewed or finished meanwhile.
var abandon = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'done') == 1 or redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[2], 'done', '1')
return 1`)

// read returns the operation's metadata and, for one its caller's key was refused for, the error
// Finish recorded.
func (s *Store) read(ctx context.Context, tenant, id string) (*typev1.ImportMetadata, *spb.Status, error) {
	key := s.key(tenant, id)
	for range 3 {
		v, err := s.rdb.HMGet(ctx, key, "m", "lease", "done", "err").Result()
		if err != nil {
			return nil, nil, err
		}
		meta, cause, lease, current, err := s.decode(key, v)
		if err != nil || current {
			return meta, cause, err
		}
		meta.State = typev1.ImportState_IMPORT_STATE_FAILED
		meta.ResumeFromLine = meta.GetCheckpointLine() + 1
		meta.UpdateTime = timestamppb.New(s.now())
		out, err := proto.Marshal(meta)
		if err != nil {
			return nil, nil, err
		}
		if done, err := abandon.Run(ctx, s.rdb, []string{key}, lease, out).Int(); err != nil || done == 1 {
			return meta, nil, err
		}
	}
	return nil, nil, errors.New("operations: the operation kept changing")
}

// decode reads an operation's fields m, lease, done and err (HMGET's answer): its metadata and the
// error Finish recorded, if any; current is false for a running operation whose lease ran out,
// which read marks FAILED.
func (s *Store) decode(key string, v []any) (meta *typev1.ImportMetadata, cause *spb.Status, lease string, current bool, err error) {
	data, ok := v[0].(string)
	if !ok {
		return nil, nil, "", false, ErrNotFound
	}
	meta = &typev1.ImportMetadata{}
	if err := proto.Unmarshal([]byte(data), meta); err != nil {
		return nil, nil, "", false, fmt.Errorf("operations: decode %s: %w", key, err)
	}
	if raw, ok := v[3].(string); ok {
		cause = &spb.Status{}
		if err := proto.Unmarshal([]byte(raw), cause); err != nil {
			return nil, nil, "", false, fmt.Errorf("operations: decode %s error: %w", key, err)
		}
	}
	lease, _ = v[1].(string)
	until, _ := strconv.ParseInt(lease, 10, 64)
	return meta, cause, lease, v[2] != nil || until > s.now().UnixMilli(), nil
}

// operation renders the stored metadata as an Operation.
func (s *Store) operation(id string, meta *typev1.ImportMetadata, cause *spb.Status) (*longrunningpb.Operation, error) {
	m, err := anypb.New(meta)
	if err != nil {
		return nil, err
	}
	op := &longrunningpb.Operation{Name: s.Name(id), Metadata: m}
	switch meta.GetState() {
	case typev1.ImportState_IMPORT_STATE_SUCCEEDED:
		op.Done, op.Result = true, &longrunningpb.Operation_Response{Response: m}
	case typev1.ImportState_IMPORT_STATE_FAILED:
		if cause != nil {
			op.Done, op.Result = true, &longrunningpb.Operation_Error{Error: cause}
			break
		}
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

// requestCancel sets the cancel flag of a running operation: 1 when it set it, 0 when the
// operation is done or the flag was set already, -1 when there is no such operation.
var requestCancel = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'done') == 1 then return 0 end
return redis.call('HSETNX', KEYS[1], 'cancel', '1')`)

// Cancel asks a running operation to stop at its next checkpoint and returns it. A done one, or
// one asked already, is returned as it is, with changed false: nothing happened, so there is
// nothing to record.
func (s *Store) Cancel(ctx context.Context, tenant, name string) (op *longrunningpb.Operation, changed bool, err error) {
	// Get first: a running operation whose lease ran out is marked done (FAILED) and is not cancelled.
	if op, err = s.Get(ctx, tenant, name); err != nil || op.GetDone() {
		return op, false, err
	}
	id, _ := s.id(name)
	set, err := requestCancel.Run(ctx, s.rdb, []string{s.key(tenant, id)}).Int()
	switch {
	case err != nil:
		return nil, false, err
	case set < 0:
		return nil, false, ErrNotFound
	}
	op, err = s.Get(ctx, tenant, name)
	return op, set == 1, err
}

// ListMethod binds the page tokens of every service's ListOperations (pkg/pagetoken): one name for
// all of them, since a cursor is a position in time rather than a member of one service's index,
// so a token one service issued continues the others' lists too. The gateway merges the services'
// lists with it (gateway/imports.go).
const ListMethod = "google.longrunning.Operations/ListOperations"

// Cursor is an operation's place in the lists, the cursor of a page that ends on it: its creation
// time in ms (the index's score: Start writes both from one clock reading) and its id, which
// orders operations started in the same ms as the index does.
func Cursor(createMillis int64, id string) string {
	return strconv.FormatInt(createMillis, 10) + " " + id
}

// List returns one page of the tenant's operations, newest first: by creation time, then by id
// (descending). r.After is a Cursor, from this list or another service's. A page that read a full
// r.Limit from the index has a Next, the cursor of its last operation, even when nothing follows
// (the page after it is then empty, as AIP-158 allows): a merge of several services' lists may
// end its page on the last operation of any full one. Index members whose operation expired
// (Retention) are removed as they are met, and the page read again, so that a page ends on an
// operation it returns.
func (s *Store) List(ctx context.Context, tenant string, r page.Request) (page.Page[*longrunningpb.Operation], error) {
	index := s.index(tenant)
	for {
		ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: index, ByScore: true, Desc: true, After: r.After, Limit: r.Limit})
		if err != nil {
			return page.Page[*longrunningpb.Operation]{}, err
		}
		ops, expired, err := s.readAll(ctx, tenant, ids.Items)
		if err != nil {
			return page.Page[*longrunningpb.Operation]{}, err
		}
		if len(expired) > 0 {
			if err := s.rdb.ZRem(ctx, index, expired...).Err(); err != nil {
				return page.Page[*longrunningpb.Operation]{}, err
			}
			continue // each round removes what it met, so this ends
		}
		out := page.Page[*longrunningpb.Operation]{Items: make([]*longrunningpb.Operation, len(ops))}
		for i, op := range ops {
			out.Items[i] = op.op
		}
		if len(ops) == r.Limit {
			last := ops[len(ops)-1]
			out.Next = Cursor(last.created, last.id)
		}
		return out, nil
	}
}

type listed struct {
	op      *longrunningpb.Operation
	id      string
	created int64 // ms
}

// readAll reads the operations ids names in one round trip (a running one whose lease ran out is
// read again by read, which marks it FAILED) and returns those expired apart.
func (s *Store) readAll(ctx context.Context, tenant string, ids []string) (ops []listed, expired []any, err error) {
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.key(tenant, id), "m", "lease", "done", "err")
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, id := range ids {
		meta, cause, _, current, err := s.decode(s.key(tenant, id), cmds[i].Val())
		if err == nil && !current {
			meta, cause, err = s.read(ctx, tenant, id)
		}
		if errors.Is(err, ErrNotFound) {
			expired = append(expired, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		op, err := s.operation(id, meta, cause)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, listed{op: op, id: id, created: meta.GetCreateTime().AsTime().UnixMilli()})
	}
	return ops, expired, nil
}
