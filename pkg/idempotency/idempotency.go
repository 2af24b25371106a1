// Package idempotency gives every mutating call Stripe's idempotency-key semantics: the first
// result for a key is stored for 24 hours and replayed byte for byte; the same key with a different
// request is rejected; concurrent duplicates produce one effect (the later ones wait for the first
// and replay its result).
//
// Keys are scoped to the tenant. Only results that a retry could not change are stored: successes
// and client errors. After a server error, a timeout or a cancellation the key is released, so the
// client's retry runs again.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/keyspace"
)

// MetadataKey is the gRPC metadata the key travels in (the REST header Idempotency-Key).
const MetadataKey = "idempotency-key"

// ReplayedHeader is the response header metadata a replayed answer carries ("true"), as Stripe's
// Idempotent-Replayed header, which the gateway sets from it.
const ReplayedHeader = "idempotent-replayed"

// Errors of the idempotency layer.
var (
	ErrKeyReused = apierr.New(apierr.InvalidArgument, "IDEMPOTENCY_KEY_REUSED",
		"this Idempotency-Key was used with a different request; use a new key for a new request")
	ErrInProgress = apierr.New(apierr.Aborted, "IDEMPOTENCY_KEY_IN_USE",
		"a request with this Idempotency-Key is still running; retry later")
	ErrBadKey = apierr.Invalid("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
)

// Config tunes the store.
type Config struct {
	// TTL is how long a result is replayed (24h).
	TTL time.Duration
	// Lock is how long a request in progress holds its key if its process dies (5m).
	Lock time.Duration
	// Poll is how often a concurrent duplicate checks for the first request's result.
	Poll time.Duration
}

// Store keeps keys and results in Redis, in the tenant's partition.
type Store struct {
	rdb  redis.UniversalClient
	keys *keyspace.Space
	cfg  Config
	// replays counts answers replayed from a stored result; refusals counts calls refused for
	// their key (reused for another request, or still in use), by reason.
	replays, refusals metric.Int64Counter
}

// New returns a store; zero config fields take the defaults. Its metrics go to mp.
func New(rdb redis.UniversalClient, keys *keyspace.Space, cfg Config, mp metric.MeterProvider) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Lock <= 0 {
		cfg.Lock = 5 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	meter := mp.Meter("github.com/crmcycle/crm/pkg/idempotency")
	replays, err := meter.Int64Counter("crm.idempotency.replays",
		metric.WithDescription("calls answered with the stored result of an earlier call with the same Idempotency-Key"))
	if err != nil {
		replays, _ = noop.NewMeterProvider().Meter("").Int64Counter("")
	}
	refusals, err := meter.Int64Counter("crm.idempotency.refusals",
		metric.WithDescription("calls refused for their Idempotency-Key: reused for another request (IDEMPOTENCY_KEY_REUSED) or still in use (IDEMPOTENCY_KEY_IN_USE)"))
	if err != nil {
		refusals, _ = noop.NewMeterProvider().Meter("").Int64Counter("")
	}
	return &Store{rdb: rdb, keys: keys, cfg: cfg, replays: replays, refusals: refusals}
}

// claimScript takes the key for a request, or returns what the key holds: {fingerprint, state,
// kind, result}. state is "running" or "done"; kind is "response" or "status", the result's encoding.
var claimScript = redis.NewScript(`
local held = redis.call('HMGET', KEYS[1], 'f', 's', 'k', 'r')
if held[1] then return held end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 's', 'running')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return false`)

// completeScript stores the result of the request that holds the key.
var completeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'f') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'done', 'k', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

// UnaryServerInterceptor applies the semantics to calls that carry a key; mutating tells which
// methods may (reads ignore keys). It must run after authentication, which provides the tenant.
func (s *Store) UnaryServerInterceptor(mutating func(fullMethod string) bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		key, ok := keyFrom(ctx)
		if !ok || !mutating(info.FullMethod) {
			return handler(ctx, req)
		}
		if !validKey(key) {
			return nil, ErrBadKey
		}
		tenant, err := auth.TenantID(ctx)
		if err != nil {
			return nil, err
		}
		msg, ok := req.(proto.Message)
		if !ok {
			return handler(ctx, req)
		}
		fp, err := fingerprint(info.FullMethod, msg)
		if err != nil {
			return nil, err
		}
		redisKey := s.keys.Scope("idempotency", tenant).Key(key)
		replay, err := s.claim(ctx, redisKey, fp)
		if err != nil {
			if e, ok := apierr.As(err); ok && (errors.Is(err, ErrKeyReused) || errors.Is(err, ErrInProgress)) {
				s.refusals.Add(ctx, 1, metric.WithAttributes(methodAttr(info), attribute.String("reason", e.Reason)))
			}
			return nil, err
		}
		if replay != nil {
			s.replays.Add(ctx, 1, metric.WithAttributes(methodAttr(info)))
			_ = grpc.SetHeader(ctx, metadata.Pairs(ReplayedHeader, "true"))
			return replayResult(replay, info)
		}
		resp, herr := handler(ctx, req)
		s.finish(ctx, redisKey, fp, resp, herr)
		return resp, herr
	}
}

// result is a stored outcome: the response's protobuf encoding, or the error's google.rpc.Status.
type result struct {
	kind string
	data []byte
}

// claim takes the key, or returns the stored result to replay (waiting while the first request
// with the key runs).
func (s *Store) claim(ctx context.Context, key, fp string) (*result, error) {
	for waited := false; ; waited = true {
		held, err := claimScript.Run(ctx, s.rdb, []string{key}, fp, s.cfg.Lock.Milliseconds()).Slice()
		if errors.Is(err, redis.Nil) {
			return nil, nil // ours now
		}
		if err != nil {
			if waited && ctx.Err() != nil {
				return nil, ErrInProgress // the caller's deadline passed while the first request ran
			}
			return nil, fmt.Errorf("idempotency: %w", err)
		}
		if f, _ := held[0].(string); f != fp {
			return nil, ErrKeyReused
		}
		if state, _ := held[1].(string); state == "done" {
			kind, _ := held[2].(string)
			data, _ := held[3].(string)
			return &result{kind: kind, data: []byte(data)}, nil
		}
		t := time.NewTimer(s.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ErrInProgress
		case <-t.C:
		}
	}
}

// finish stores the result, or releases the key when a retry could turn out differently.
func (s *Store) finish(ctx context.Context, key, fp string, resp any, herr error) {
	ctx = context.WithoutCancel(ctx)
	if herr != nil && retryable(status.Code(herr)) {
		_, _ = s.rdb.Del(ctx, key).Result()
		return
	}
	var r result
	var err error
	if herr != nil {
		r.kind = "status"
		r.data, err = proto.Marshal(status.Convert(herr).Proto())
	} else if m, ok := resp.(proto.Message); ok {
		r.kind = "response"
		r.data, err = proto.MarshalOptions{Deterministic: true}.Marshal(withoutSecret(m))
	}
	if err == nil {
		err = completeScript.Run(ctx, s.rdb, []string{key}, fp, r.kind, r.data, s.cfg.TTL.Milliseconds()).Err()
	}
	if err != nil {
		_, _ = s.rdb.Del(ctx, key).Result()
	}
}

// withoutSecret is m without its top-level `secret` field: an API key's secret is shown once
// and kept only hashed, so the stored result of a call that made one (CreateApiKey, RotateApiKey)
// replays the key without it.
func withoutSecret(m proto.Message) proto.Message {
	f := m.ProtoReflect().Descriptor().Fields().ByName("secret")
	if f == nil || !m.ProtoReflect().Has(f) {
		return m
	}
	c := proto.Clone(m)
	c.ProtoReflect().Clear(f)
	return c
}

func replayResult(r *result, info *grpc.UnaryServerInfo) (any, error) {
	if r.kind == "status" {
		st := &spb.Status{}
		if err := proto.Unmarshal(r.data, st); err != nil {
			return nil, fmt.Errorf("idempotency: stored status: %w", err)
		}
		return nil, status.FromProto(st).Err()
	}
	resp, err := newResponse(info.FullMethod)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(r.data, resp); err != nil {
		return nil, fmt.Errorf("idempotency: stored response: %w", err)
	}
	return resp, nil
}

// newResponse makes an empty response message of a method, found in the protobuf registry.
func newResponse(fullMethod string) (proto.Message, error) {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, fmt.Errorf("idempotency: %s: %w", fullMethod, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok || sd.Methods().ByName(protoreflect.Name(method)) == nil {
		return nil, fmt.Errorf("idempotency: %s is not a known method", fullMethod)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(sd.Methods().ByName(protoreflect.Name(method)).Output().FullName())
	if err != nil {
		return nil, fmt.Errorf("idempotency: %s: %w", fullMethod, err)
	}
	return mt.New().Interface(), nil
}

func retryable(c codes.Code) bool {
	switch c {
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DeadlineExceeded, codes.Canceled,
		codes.Aborted, codes.ResourceExhausted, codes.DataLoss:
		return true
	}
	return false
}

// fingerprint identifies the request: the method and the request's deterministic encoding.
func fingerprint(method string, req proto.Message) (string, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("idempotency: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// methodAttr is the rpc.method attribute of a call, named as otelgrpc names it in its metrics.
func methodAttr(info *grpc.UnaryServerInfo) attribute.KeyValue {
	return semconv.RPCMethod(strings.TrimPrefix(info.FullMethod, "/"))
}

func keyFrom(ctx context.Context) (string, bool) {
	v := metadata.ValueFromIncomingContext(ctx, MetadataKey)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// A client-streaming call (an import) is known whole only when its stream ends, long after its
// effect began: its request is its options (known at the start) and the bytes it streams (known
// at the end). ClaimStream takes the key on the options; the caller that holds it does the work
// and, once it has received the whole stream, records the stream's hash and the result's name
// (Complete). Any other call with the key reads its own stream without acting on it, then compares
// (Await): the same options and bytes answer the first call's result, other ones IDEMPOTENCY_KEY_REUSED.
// So only the first call with a key ever acts, whatever the later ones send. When the first call
// ends before it received its whole stream (the client went away, a refusal, a failure), its key
// is released (End) and a retry acts again.

// StreamClaim is a call's hold on a key, or what another call holding it left for this one.
type StreamClaim struct {
	s       *Store
	key, fp string
	token   string
	// Owner: this call holds the key and does the work.
	Owner bool
	done  chan struct{} // Owner: closed by Complete or End, ends the lock renewal
	ended bool
}

// claimStreamScript takes the key for a stream, or returns what it holds: {fingerprint, state,
// claim token}.
var claimStreamScript = redis.NewScript(`
local held = redis.call('HMGET', KEYS[1], 'f', 's', 'c')
if held[1] then return held end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 's', 'running', 'c', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false`)

// The owner's scripts act only while it still holds the key (its claim token): after a lock that
// ran out, the key may be another call's.
var (
	renewStreamScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[1] or redis.call('HGET', KEYS[1], 's') ~= 'running' then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`)
	completeStreamScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'done', 'b', ARGV[2], 'o', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)
	releaseStreamScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[1] or redis.call('HGET', KEYS[1], 's') ~= 'running' then return 0 end
return redis.call('DEL', KEYS[1])`)
)

// ErrStreamEnded answers a duplicate whose first call ended before it received its whole stream:
// that call's key is released, and this call's stream is spent on the comparison.
var ErrStreamEnded = apierr.New(apierr.Aborted, "IDEMPOTENCY_KEY_IN_USE",
	"the first request with this Idempotency-Key ended before its body was received whole; send the request again")

// ClaimStream applies the semantics to a client-streaming call whose metadata carries a key
// (nil, nil without one): method and options identify the request with the hash of its stream.
// The caller must End an Owner claim.
func (s *Store) ClaimStream(ctx context.Context, method string, options proto.Message) (*StreamClaim, error) {
	key, ok := keyFrom(ctx)
	if !ok {
		return nil, nil
	}
	if !validKey(key) {
		return nil, ErrBadKey
	}
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	fp, err := fingerprint(method, options)
	if err != nil {
		return nil, err
	}
	c := &StreamClaim{s: s, key: s.keys.Scope("idempotency", tenant).Key(key), fp: fp, token: uuid.NewString()}
	held, err := claimStreamScript.Run(ctx, s.rdb, []string{c.key}, fp, c.token, s.cfg.Lock.Milliseconds()).Slice()
	if errors.Is(err, redis.Nil) {
		c.Owner, c.done = true, make(chan struct{})
		go c.renew(context.WithoutCancel(ctx))
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency: %w", err)
	}
	if f, _ := held[0].(string); f != fp {
		return nil, ErrKeyReused // the options differ: refused before the stream is read
	}
	c.token, _ = held[2].(string) // the holder's: Await follows that claim
	return c, nil
}

// renew keeps the owner's lock while its call runs (an import outlasts Lock); a process that dies
// stops renewing, and the key is free again after Lock.
func (c *StreamClaim) renew(ctx context.Context) {
	t := time.NewTicker(c.s.cfg.Lock / 3)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			_ = renewStreamScript.Run(ctx, c.s.rdb, []string{c.key}, c.token, c.s.cfg.Lock.Milliseconds()).Err()
		}
	}
}

// Complete records, once the owner has received its whole stream, the stream's hash and the
// result (an operation's name) that later calls with the key answer, for TTL.
func (c *StreamClaim) Complete(ctx context.Context, streamHash, result string) error {
	if c.ended {
		return nil
	}
	c.ended = true
	close(c.done)
	err := completeStreamScript.Run(context.WithoutCancel(ctx), c.s.rdb, []string{c.key}, c.token, streamHash, result, c.s.cfg.TTL.Milliseconds()).Err()
	if err != nil {
		// Not recorded: release the key rather than hold it for the lock's time.
		_ = releaseStreamScript.Run(context.WithoutCancel(ctx), c.s.rdb, []string{c.key}, c.token).Err()
		return fmt.Errorf("idempotency: %w", err)
	}
	return nil
}

// End releases the owner's key unless Complete recorded its result: its stream was not received
// whole, so there is nothing to compare a retry with, and the retry acts again.
func (c *StreamClaim) End(ctx context.Context) {
	if c == nil || !c.Owner || c.ended {
		return
	}
	c.ended = true
	close(c.done)
	_ = releaseStreamScript.Run(context.WithoutCancel(ctx), c.s.rdb, []string{c.key}, c.token).Err()
}

// Await is for a call that does not own the key, once it has read its whole stream: it waits
// until the owner received its own (polling, as a unary duplicate waits), then answers the
// owner's result when the streams' hashes match, ErrKeyReused when they differ, ErrStreamEnded
// when the owner ended without its stream, ErrInProgress when ctx ends first.
func (c *StreamClaim) Await(ctx context.Context, streamHash string) (string, error) {
	for {
		held, err := c.s.rdb.HMGet(ctx, c.key, "f", "s", "c", "b", "o").Result()
		if err != nil {
			if ctx.Err() != nil {
				return "", ErrInProgress
			}
			return "", fmt.Errorf("idempotency: %w", err)
		}
		if tok, _ := held[2].(string); tok != c.token {
			return "", ErrStreamEnded // released (perhaps claimed again by another call since)
		}
		if state, _ := held[1].(string); state == "done" {
			if b, _ := held[3].(string); b != streamHash {
				return "", ErrKeyReused
			}
			result, _ := held[4].(string)
			return result, nil
		}
		t := time.NewTimer(c.s.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ErrInProgress
		case <-t.C:
		}
	}
}
