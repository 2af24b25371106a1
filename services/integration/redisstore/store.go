// Package redisstore keeps the integration service's data in Redis: the tenant's event history
// (audit log and customer timelines), webhook endpoints, deliveries and their due queue. Every key
// is under the tenant's integration scope or the partition's, so one event's whole record (history
// entry, indexes, deliveries, queue) is one atomic script.
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

// Service is the key-space name of the integration service.
const Service = "integration"

//go:embed ingest.lua
var ingestSource string

var ingestScript = redis.NewScript(ingestSource)

// ErrStaleEndpoints means the tenant's endpoints changed since the caller read them.
var ErrStaleEndpoints = errors.New("redisstore: the endpoints changed")

// Store is the integration service's Redis store.
type Store struct {
	rdb  redis.UniversalClient
	keys *keyspace.Space

	// Ingests of concurrent callers wait here for the caller that sends them (ingests).
	mu       sync.Mutex
	queue    []*ingestCall
	flushing bool

	// A tenant's scope and the keys every ingest of it names, built once: building them per event
	// was about a fifth of what recording one allocated.
	tenantsMu sync.RWMutex
	tenants   map[string]*tenantKeys
}

type tenantKeys struct {
	scope     keyspace.Scope
	partition int
	// endpointsMeta, legacySequences: EndpointsMetaKey, LegacySequencesKey; noErased: the key an
	// event without a customer names instead of ErasedSequencesKey; due,
	// tenants: DueOf and TenantsOf its partition.
	endpointsMeta, legacySequences, noErased, due, tenants string
	// audit: AuditKey(scope); auditTypes: AuditKey(scope, "type", t) by event type t (the types
	// the producers declare, a few dozen), added as the recorder meets them, under tenantsMu.
	audit      string
	auditTypes map[string]string
}

func (s *Store) keysOf(tenant string) *tenantKeys {
	s.tenantsMu.RLock()
	k, ok := s.tenants[tenant]
	s.tenantsMu.RUnlock()
	if ok {
		return k
	}
	sc, p := s.keys.Scope(Service, tenant), s.keys.Partition(tenant)
	k = &tenantKeys{
		scope: sc, partition: p, endpointsMeta: EndpointsMetaKey(sc), legacySequences: LegacySequencesKey(sc),
		noErased: ErasedSequencesKey(sc, ""), due: s.DueOf(p), tenants: s.TenantsOf(p),
		audit: AuditKey(sc), auditTypes: map[string]string{},
	}
	s.tenantsMu.Lock()
	s.tenants[tenant] = k
	s.tenantsMu.Unlock()
	return k
}

// New returns a store on rdb.
func New(rdb redis.UniversalClient, keys *keyspace.Space) *Store {
	return &Store{rdb: rdb, keys: keys, tenants: map[string]*tenantKeys{}}
}

// AuditIndexes are two of the audit log's indexes an entry of type typ is listed in: all of the
// tenant's entries, and its entries of typ (AuditKey). They are built once per tenant and type,
// not for every event recorded.
func (s *Store) AuditIndexes(tenant, typ string) (all, ofType string) {
	k := s.keysOf(tenant)
	s.tenantsMu.RLock()
	ofType, ok := k.auditTypes[typ]
	s.tenantsMu.RUnlock()
	if !ok {
		ofType = AuditKey(k.scope, "type", typ)
		s.tenantsMu.Lock()
		k.auditTypes[typ] = ofType
		s.tenantsMu.Unlock()
	}
	return k.audit, ofType
}

// Redis is the client, for the use cases' own commits.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// Scope is the tenant's keys.
func (s *Store) Scope(tenant string) keyspace.Scope { return s.keysOf(tenant).scope }

// Due is the due queue of the tenant's partition: members "<tenant> <endpoint> <delivery>" scored
// by when they are next due (ms).
func (s *Store) Due(tenant string) string { return s.DueOf(s.keys.Partition(tenant)) }

// DueOf is partition p's due queue.
func (s *Store) DueOf(p int) string { return s.keys.Partitioned(Service, p, "webhooks:due") }

// TenantsOf is partition p's tenants with a history, for the retention sweep.
func (s *Store) TenantsOf(p int) string { return s.keys.Partitioned(Service, p, "history:tenants") }

// Partitions is the partition count.
func (s *Store) Partitions() int { return s.keys.Partitions() }

// Keys of a tenant's scope.
func EntryKey(sc keyspace.Scope, id string) string    { return sc.Key("event", id) }
func EndpointKey(sc keyspace.Scope, id string) string { return sc.Key("endpoint", id) }
func PreviousSecretKey(sc keyspace.Scope, id string) string {
	return sc.Key("endpoint", id, "previous_secret")
}
func FailuresKey(sc keyspace.Scope, id string) string { return sc.Key("endpoint", id, "failures") }

// SequencesKey is the endpoint's delivery counts: one field per customer (the empty field for
// events without one) holding the last sequence number given. Erasing or merging the customer
// drops its field, deleting the endpoint the hash.
func SequencesKey(sc keyspace.Scope, endpoint string) string {
	return sc.Key("endpoint", endpoint, "sequences")
}

// LaneKey is the endpoint's queue of a customer's (customer "" for events without one) pending
// deliveries, by sequence number: only its first is in the due queue, so the endpoint gets the
// customer's deliveries one at a time, in order (DESIGN §6). It needs no expiry: a lane that is
// not empty always has its first delivery due, and the dispatcher takes each delivery off as it
// ends, expired or not, and drops the whole lane when it finds the endpoint deleted.
func LaneKey(sc keyspace.Scope, endpoint, customer string) string {
	return sc.Key("endpoint", endpoint, "lane", laneName(customer))
}

func laneName(customer string) string {
	if customer == "" {
		return "-"
	}
	return customer
}

// LegacySequencesKey is where older versions kept every endpoint's counts, in one hash with
// fields "<endpoint>|<customer>"; a count moves from there on its first use.
func LegacySequencesKey(sc keyspace.Scope) string { return sc.Key("sequences") }

func EndpointsKey(sc keyspace.Scope) string                    { return sc.Key("endpoints") }
func EndpointsMetaKey(sc keyspace.Scope) string                { return sc.Key("endpoints", "meta") }
func DeliveryKey(sc keyspace.Scope, id string) string          { return sc.Key("delivery", id) }
func DeliveryLogKey(sc keyspace.Scope, endpoint string) string { return sc.Key("deliveries", endpoint) }
func TimelineKey(sc keyspace.Scope, customer string) string    { return sc.Key("timeline", customer) }
func MergedKey(sc keyspace.Scope, customer string) string      { return sc.Key("merged", customer) }
func SettingsKey(sc keyspace.Scope) string                     { return sc.Key("settings") }
func AuditKey(sc keyspace.Scope, by ...string) string {
	switch len(by) { // the recorder builds five per event: no slice for "audit" and by joined
	case 0:
		return sc.Key("audit")
	case 2:
		return sc.Key("audit", by[0], by[1])
	}
	return sc.Key(append([]string{"audit"}, by...)...)
}

// MarkerKey is the redelivery guard of an event recorded without a history entry, or whose entry
// the retention sweep removed while the event could still be redelivered (younger than
// events.SeenTTL); the history entry is the guard otherwise.
func MarkerKey(sc keyspace.Scope, id string) string { return sc.Key("seen", id, "integration") }

func legacySequenceField(endpoint, customer string) string { return endpoint + "|" + customer }

// ErasedSequencesKey holds an erased customer's last sequence number at each endpoint (and a field
// "-" marking the erasure), as long as a delivery is kept: an event about the customer recorded
// after its erasure counts on from there instead of starting again in the endpoint's hash.
func ErasedSequencesKey(sc keyspace.Scope, customer string) string {
	if customer == "" {
		return sc.Key("erased", "-") // no customer: a key that never exists
	}
	return sc.Key("erased", customer, "sequences")
}

// NewDelivery is one delivery an ingest creates.
type NewDelivery struct {
	Delivery *integrationv1.Delivery
	// Body is the JSON object to send, without its sequence number (the ingest adds it).
	Body []byte
}

// Ingestion is one event's record: its history entry under its indexes, and its deliveries.
type Ingestion struct {
	Tenant, EventID string
	// Entry is the history entry (nil for none), listed in Indexes and in the timeline of
	// Customer (or of the customer it was merged into).
	Entry    *integrationv1.AuditEntry
	Indexes  []string
	Customer string
	// Register lists the tenant among its partition's tenants with a history (for the sweep);
	// once per tenant and process is enough.
	Register bool
	// EndpointsVersion is the version of the endpoints Deliveries were matched against.
	EndpointsVersion string
	// Deliveries take their sequence numbers from Customer's counts, one per endpoint.
	Deliveries []NewDelivery
	// Forget lists endpoints (every one of the tenant's, for an erasure) whose count of Customer
	// ends with this event: after numbering its deliveries, the count leaves the endpoint's hash
	// for the customer's ErasedSequencesKey.
	Forget []string
	// DueAt is when the deliveries are due in the queue; DeliveryTTL their records' expiry.
	DueAt       time.Time
	DeliveryTTL time.Duration
}

// Ingest records an event once, atomically. It returns the sequence numbers of the
// deliveries and which of them wait behind an earlier one of their lane (held: not due, see
// LaneKey), or applied false when the event was recorded before; ErrStaleEndpoints when the
// endpoints changed since in.EndpointsVersion, a *MergedError when the customer was merged.
func (s *Store) Ingest(ctx context.Context, in Ingestion) (seqs []int64, held []bool, applied bool, err error) {
	tk := s.keysOf(in.Tenant)
	sc := tk.scope
	var data []byte
	if in.Entry != nil {
		// The entry as pkg/commit stores a record (commit.Write.Put), which its reads take: one
		// string, a byte the version's length, the version ("1": an entry never changes), the data.
		// Older versions wrote a hash {d, v}, which those reads take too, and which cost Redis
		// about 230 bytes more per entry (a hashtable: the data is longer than a listpack value).
		if data, err = (proto.MarshalOptions{}).MarshalAppend([]byte{1, '1'}, in.Entry); err != nil {
			return nil, nil, false, err
		}
	}
	// The entry's indexes: in.Indexes and the customer's timeline.
	nIndexes, erased := len(in.Indexes), tk.noErased // no customer: a key that never exists
	if in.Customer != "" {
		nIndexes, erased = nIndexes+1, ErasedSequencesKey(sc, in.Customer)
	}
	p := tk.partition
	keys := make([]string, 0, 8+nIndexes+4*len(in.Deliveries)+len(in.Forget))
	keys = append(keys, MarkerKey(sc, in.EventID), EntryKey(sc, in.EventID), tk.endpointsMeta)
	if in.Customer != "" {
		keys = append(keys, MergedKey(sc, in.Customer))
	}
	if in.Register {
		keys = append(keys, tk.tenants)
	}
	if len(in.Deliveries)+len(in.Forget) > 0 {
		keys = append(keys, tk.due, tk.legacySequences, erased)
	}
	keys = append(keys, in.Indexes...)
	if in.Customer != "" {
		keys = append(keys, TimelineKey(sc, in.Customer))
	}
	register := ""
	if in.Register {
		register = "1"
	}
	// The script's first argument, then the event's (ingestCommand joins several events' after one).
	args := make([]any, 0, 12+5*len(in.Deliveries)+2*len(in.Forget))
	args = append(args, int(events.SeenTTL.Seconds()), nIndexes, len(in.Deliveries), len(in.Forget), data, in.EventID, in.Customer, register,
		in.EndpointsVersion, in.DueAt.UnixMilli(), in.Tenant, in.DeliveryTTL.Milliseconds())
	for _, d := range in.Deliveries {
		rec, err := proto.Marshal(d.Delivery)
		if err != nil {
			return nil, nil, false, err
		}
		ep := d.Delivery.GetEndpointId()
		keys = append(keys, DeliveryKey(sc, d.Delivery.GetId()), DeliveryLogKey(sc, ep), SequencesKey(sc, ep), LaneKey(sc, ep, in.Customer))
		args = append(args, d.Delivery.GetId(), ep, legacySequenceField(ep, in.Customer), rec, d.Body)
	}
	for _, ep := range in.Forget {
		keys = append(keys, SequencesKey(sc, ep))
		args = append(args, ep, legacySequenceField(ep, in.Customer))
	}
	res, err := s.ingest(ctx, &ingestCall{partition: p, keys: keys, args: args})
	if err != nil {
		return nil, nil, false, err
	}
	switch code, _ := res[0].(int64); code {
	case 0:
		for _, v := range res[1:] {
			n, _ := v.(int64) // negative: held behind an earlier delivery of its lane
			seqs, held = append(seqs, max(n, -n)), append(held, n < 0)
		}
		return seqs, held, true, nil
	case 1:
		return nil, nil, false, nil
	case 2:
		return nil, nil, false, ErrStaleEndpoints
	case 3:
		survivor, _ := res[1].(string)
		return nil, nil, false, &MergedError{Survivor: survivor}
	}
	return nil, nil, false, fmt.Errorf("redisstore: ingest answered %v", res)
}

// ingestCall is one event's ingest waiting to be sent.
type ingestCall struct {
	partition int // every key of the call is in the partition's slot
	keys      []string
	args      []any
	res       []any
	err       error
	done      chan struct{} // closed once res and err are set
	lead      chan struct{} // closed when this call's caller is to send the queue
}

// ingest runs the ingest script for one event. The recorder records different customers' events
// side by side; their ingests go to Redis together, several events of a partition per script
// call and one pipeline per round trip, where one round trip per event, one after another, held
// the recorder seconds behind the producers on a loaded machine. The caller that finds nobody
// sending sends the queue; whatever queued up meanwhile is sent by the first of those callers,
// and so on (each caller sends at most once, so none waits on the others for long). A caller
// whose ctx ends while its call still waits in the queue takes it out (handing the sender's role
// on if it had been given it) and returns ctx's error; once a sender took the call, its answer is
// awaited, bounded by the client's own timeouts.
func (s *Store) ingest(ctx context.Context, call *ingestCall) ([]any, error) {
	call.done, call.lead = make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.queue = append(s.queue, call)
	leader := !s.flushing
	s.flushing = true
	s.mu.Unlock()
	if !leader {
		select {
		case <-call.done:
			return call.res, call.err
		case <-call.lead: // first in the queue: this caller sends it, its own call included
		case <-ctx.Done():
			if s.leave(call) {
				return nil, ctx.Err()
			}
			<-call.done // a sender has it
			return call.res, call.err
		}
	}
	s.mu.Lock()
	batch := s.queue
	s.queue = nil
	s.mu.Unlock()
	s.sendIngests(ctx, batch)
	s.mu.Lock()
	if len(s.queue) > 0 {
		close(s.queue[0].lead)
	} else {
		s.flushing = false
	}
	s.mu.Unlock()
	return call.res, call.err
}

// leave takes a call whose caller gives up out of the queue; false when a sender took it already.
// The sender's role, if the call had been handed it, goes to the next call in the queue.
func (s *Store) leave(call *ingestCall) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.queue, call)
	if i < 0 {
		return false
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	select {
	case <-call.lead:
		if len(s.queue) > 0 {
			close(s.queue[0].lead)
		} else {
			s.flushing = false
		}
	default:
	}
	return true
}

// maxIngestEvents bounds the events one script call records: Redis runs nothing else meanwhile,
// and 32 events with a few deliveries each stay well under a millisecond. maxIngestPipeline
// bounds the script calls one pipeline carries.
const (
	maxIngestEvents   = 32
	maxIngestPipeline = 64
)

// sendIngests sends queued ingests, a partition's in queue order, in script calls of up to
// maxIngestEvents events, and hands each its answer.
func (s *Store) sendIngests(ctx context.Context, calls []*ingestCall) {
	ctx = context.WithoutCancel(ctx) // the others' answers do not depend on this caller's deadline
	var groups [][]*ingestCall
	byPartition := map[int]int{} // partition → its open group in groups
	for _, c := range calls {
		i, ok := byPartition[c.partition]
		if !ok || len(groups[i]) == maxIngestEvents {
			i = len(groups)
			groups = append(groups, make([]*ingestCall, 0, min(len(calls), maxIngestEvents)))
			byPartition[c.partition] = i
		}
		groups[i] = append(groups[i], c)
	}
	for len(groups) > 0 {
		n := min(len(groups), maxIngestPipeline)
		part := groups[:n]
		groups = groups[n:]
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(part))
		for i, g := range part {
			cmds[i] = ingestCommand(ctx, "evalsha", ingestScript.Hash(), g)
			_ = pipe.Process(ctx, cmds[i])
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		for i, g := range part {
			res, err := cmds[i].Slice()
			if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") { // Redis lost its scripts: send this one
				cmd := ingestCommand(ctx, "eval", ingestSource, g)
				_ = s.rdb.Process(ctx, cmd)
				res, err = cmd.Slice()
			}
			if err == nil && len(res) != len(g) {
				err = fmt.Errorf("redisstore: ingest of %d events answered %d", len(g), len(res))
			}
			for j, c := range g {
				c.err = err
				if err == nil {
					if c.res, _ = res[j].([]any); len(c.res) == 0 {
						c.err = fmt.Errorf("redisstore: ingest answered %v", res[j])
					}
				}
				close(c.done)
			}
		}
	}
}

// ingestCommand is the script call (EVALSHA with the script's hash, or EVAL with its source)
// recording calls' events: their keys, the script's first argument (the first call's first), then
// each call's own arguments. The command's arguments are built in one slice: go-redis's EvalSha
// would copy keys and arguments into a new one, and joining several calls' first cost two more.
func ingestCommand(ctx context.Context, name, script string, calls []*ingestCall) *redis.Cmd {
	nKeys, nArgs := 0, 1
	for _, c := range calls {
		nKeys, nArgs = nKeys+len(c.keys), nArgs+len(c.args)-1
	}
	args := append(make([]any, 0, 3+nKeys+nArgs), name, script, nKeys)
	for _, c := range calls {
		for _, k := range c.keys {
			args = append(args, k)
		}
	}
	args = append(args, calls[0].args[0])
	for _, c := range calls {
		args = append(args, c.args[1:]...)
	}
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	return cmd
}

// MergedError says the event's customer was merged into Survivor: record it under the survivor.
type MergedError struct{ Survivor string }

func (e *MergedError) Error() string { return "redisstore: customer merged into " + e.Survivor }

// mergeScript: KEYS[1] the merged customer's timeline, KEYS[2] the survivor's, KEYS[3] the merged
// customer's alias, KEYS[4] the endpoints' meta hash, KEYS[5] the older versions' sequence hash,
// KEYS[6..] every endpoint's sequence hash; ARGV[1] the survivor, ARGV[2] the merged customer,
// ARGV[3] the endpoints' version the hashes were listed at, ARGV[4..] the merged customer's field
// in KEYS[5] for each endpoint.
var mergeScript = redis.NewScript(`
local version = redis.call('HGET', KEYS[4], 'version') or '0'
if version ~= ARGV[3] then return redis.error_reply('STALE_ENDPOINTS ' .. version) end
redis.call('SET', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MIN')
  redis.call('DEL', KEYS[1])
end
for i = 6, #KEYS do redis.call('HDEL', KEYS[i], ARGV[2]) end
for i = 4, #ARGV do redis.call('HDEL', KEYS[5], ARGV[i]) end
return 1`)

// MergeTimeline moves merged's timeline into survivor's and points merged at survivor, so later
// events about it land there too (and their deliveries count on in the survivor's sequence), and
// drops merged's delivery counts at the endpoints, listed at endpointsVersion (ErrStaleEndpoints
// when they changed since). Doing it again changes nothing.
func (s *Store) MergeTimeline(ctx context.Context, tenant, merged, survivor, endpointsVersion string, endpoints []string) error {
	sc := s.Scope(tenant)
	keys := []string{TimelineKey(sc, merged), TimelineKey(sc, survivor), MergedKey(sc, merged), EndpointsMetaKey(sc), LegacySequencesKey(sc)}
	args := []any{survivor, merged, endpointsVersion}
	for _, ep := range endpoints {
		keys = append(keys, SequencesKey(sc, ep))
		args = append(args, legacySequenceField(ep, merged))
	}
	err := mergeScript.Run(ctx, s.rdb, keys, args...).Err()
	if err != nil && strings.Contains(err.Error(), "STALE_ENDPOINTS") {
		return ErrStaleEndpoints
	}
	return err
}

// Survivor is the customer that customer was merged into, or customer itself.
func (s *Store) Survivor(ctx context.Context, tenant, customer string) (string, error) {
	v, err := s.rdb.Get(ctx, MergedKey(s.Scope(tenant), customer)).Result()
	if errors.Is(err, redis.Nil) {
		return customer, nil
	}
	return v, err
}

// CutoffID is the smallest UUIDv7 of time t: ids below it are older.
func CutoffID(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	return fmt.Sprintf("%08x-%04x-7000-8000-000000000000", ms>>16, ms&0xffff)
}

// List reads one page, newest first, of the records an index names.
func List[T proto.Message](ctx context.Context, s *Store, index, min, max string, req page.Request, keyOf func(string) string, newMsg func() T) (page.Page[T], error) {
	return commit.List(ctx, s.rdb, commit.Range{Index: index, Min: min, Max: max, Desc: true, After: req.After, Limit: req.Limit}, keyOf, newMsg)
}

// EndpointsVersion is the version of the tenant's endpoints, which every endpoint write bumps.
func (s *Store) EndpointsVersion(ctx context.Context, tenant string) (string, error) {
	v, err := s.rdb.HGet(ctx, EndpointsMetaKey(s.Scope(tenant)), "version").Result()
	if errors.Is(err, redis.Nil) {
		return "0", nil
	}
	return v, err
}

// Endpoints reads every endpoint of the tenant (a tenant has few) and their version.
func (s *Store) Endpoints(ctx context.Context, tenant string) ([]*integrationv1.WebhookEndpoint, string, error) {
	for {
		version, err := s.EndpointsVersion(ctx, tenant)
		if err != nil {
			return nil, "", err
		}
		sc := s.Scope(tenant)
		ids, err := s.rdb.ZRange(ctx, EndpointsKey(sc), 0, -1).Result()
		if err != nil {
			return nil, "", err
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = EndpointKey(sc, id)
		}
		eps, err := commit.GetMany(ctx, s.rdb, keys, func() *integrationv1.WebhookEndpoint { return &integrationv1.WebhookEndpoint{} })
		if err != nil {
			return nil, "", err
		}
		again, err := s.EndpointsVersion(ctx, tenant)
		if err != nil {
			return nil, "", err
		}
		if again == version {
			out := eps[:0]
			for _, e := range eps {
				if e.ProtoReflect().IsValid() {
					out = append(out, e)
				}
			}
			return out, version, nil
		}
	}
}

// Delivery is a delivery with what sending it needs.
type Delivery struct {
	Delivery *integrationv1.Delivery
	Version  string
	Body     []byte
}

// ReadDelivery reads a delivery; nil when there is none.
func (s *Store) ReadDelivery(ctx context.Context, tenant, id string) (*Delivery, error) {
	v, err := s.rdb.HMGet(ctx, DeliveryKey(s.Scope(tenant), id), deliveryFields...).Result()
	if err != nil {
		return nil, err
	}
	return decodeDelivery(v)
}

// ReadDeliveries reads deliveries in one round trip, in the order of ids; nil for one there is
// not (any more: retention removed it).
func (s *Store) ReadDeliveries(ctx context.Context, tenant string, ids []string) ([]*Delivery, error) {
	sc := s.Scope(tenant)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, DeliveryKey(sc, id), deliveryFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]*Delivery, len(ids))
	for i, cmd := range cmds {
		d, err := decodeDelivery(cmd.Val())
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// deliveryFields are the fields of a delivery's hash decodeDelivery reads, in its order.
var deliveryFields = []string{"d", "v", "seq", "body"}

func decodeDelivery(v []any) (*Delivery, error) {
	data, ok := v[0].(string)
	if !ok {
		return nil, nil
	}
	d := &integrationv1.Delivery{}
	if err := proto.Unmarshal([]byte(data), d); err != nil {
		return nil, err
	}
	version, _ := v[1].(string)
	seq, _ := v[2].(string)
	d.Sequence, _ = strconv.ParseInt(seq, 10, 64)
	body, _ := v[3].(string)
	return &Delivery{Delivery: d, Version: version, Body: []byte(body)}, nil
}

// finishScript records the end of an attempt, or skips a delivery, and when the delivery leaves
// its lane makes the lane's next delivery due, in one call: a sender killed at any point leaves
// either the delivery claimed (sent again once its claim runs out) or the next one due, never a
// lane without a due delivery. A delivery leaves its lane when it ends, and also when it failed
// and is to be retried: it is then queued on its own ("<tenant> <endpoint> <id>") at its next
// attempt, so a failing delivery never holds back the customer's later ones. KEYS[1] the delivery, KEYS[2] the due queue, KEYS[3] the
// endpoint's failures, KEYS[4] the delivery's lane (absent for one sent outside a lane); ARGV[1]
// the version the delivery is expected at (empty to skip it: no record written), ARGV[2] its new
// version, ARGV[3] its record, ARGV[4] when it is next due (ms; '0': it ended), ARGV[5] its due
// member, ARGV[6] '1' to end the endpoint's run of failures, ARGV[7] its id, ARGV[8] the due
// member of the lane's next delivery without its id ("<tenant> <endpoint> "), ARGV[9] the lane's
// name, ARGV[10] until when the next delivery is claimed by the caller (ms). Returns {0} the
// delivery was not at the version, {1} done, {1, next} done and next claimed by the caller.
var finishScript = redis.NewScript(`
if ARGV[1] ~= '' then
  if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return {0} end
  redis.call('HSET', KEYS[1], 'd', ARGV[3], 'v', ARGV[2])
  if ARGV[6] == '1' then redis.call('DEL', KEYS[3]) end
  if ARGV[4] ~= '0' then
    if not KEYS[4] then
      redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
      return {1}
    end
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[8] .. ARGV[7])
  end
end
redis.call('ZREM', KEYS[2], ARGV[5])
if KEYS[4] and redis.call('ZREM', KEYS[4], ARGV[7]) == 1 then
  local head = redis.call('ZRANGE', KEYS[4], 0, 0)[1]
  if head and redis.call('ZADD', KEYS[2], 'NX', ARGV[10], ARGV[8] .. head .. ' ' .. ARGV[9]) == 1 then
    return {1, ARGV[8] .. head .. ' ' .. ARGV[9]}
  end
end
return {1}`)

// SaveDelivery stores a delivery's new state if it is still at version (commit.ErrVersionMismatch
// otherwise), member being its due-queue member, and queues it at next, out of its lane; when next
// is zero it ended (delivered or dead). Either way it leaves its lane, and the lane's next delivery
// becomes due, claimed by the caller until leaseUntil and returned as its member (empty for none).
// succeeded also ends the endpoint's run of failures.
func (s *Store) SaveDelivery(ctx context.Context, tenant, member string, d *integrationv1.Delivery, version string, next time.Time, succeeded bool, leaseUntil time.Time) (string, error) {
	seq := d.Sequence
	d.Sequence = 0 // kept in its own field
	data, err := proto.Marshal(d)
	d.Sequence = seq
	if err != nil {
		return "", err
	}
	nextMs, ok := "0", "0"
	if !next.IsZero() {
		nextMs = strconv.FormatInt(next.UnixMilli(), 10)
	}
	if succeeded {
		ok = "1"
	}
	return s.finish(ctx, tenant, member, version, nextVersion(version), data, nextMs, ok, leaseUntil)
}

// Skip takes a delivery that is not to be sent (gone, no longer pending) off the due queue and
// its lane, like SaveDelivery of an ended one without writing it.
func (s *Store) Skip(ctx context.Context, tenant, member string, leaseUntil time.Time) (string, error) {
	return s.finish(ctx, tenant, member, "", "", nil, "0", "0", leaseUntil)
}

func (s *Store) finish(ctx context.Context, tenant, member, version, newVersion string, data []byte, next, succeeded string, leaseUntil time.Time) (string, error) {
	_, endpoint, id, ok := ParseDueMember(member)
	if !ok {
		return "", fmt.Errorf("redisstore: due member %q", member)
	}
	sc := s.Scope(tenant)
	keys := []string{DeliveryKey(sc, id), s.Due(tenant), FailuresKey(sc, endpoint)}
	lane := laneOf(member)
	if lane != "" {
		keys = append(keys, sc.Key("endpoint", endpoint, "lane", lane))
	}
	res, err := finishScript.Run(ctx, s.rdb, keys, version, newVersion, data, next, member, succeeded, id,
		tenant+" "+endpoint+" ", lane, leaseUntil.UnixMilli()).Slice()
	if err != nil {
		return "", err
	}
	if code, _ := res[0].(int64); code == 0 {
		return "", commit.ErrVersionMismatch
	}
	if len(res) > 1 {
		m, _ := res[1].(string)
		return m, nil
	}
	return "", nil
}

// DropLane takes a delivery of a deleted endpoint off the due queue, with the rest of its lane.
func (s *Store) DropLane(ctx context.Context, tenant, member string) error {
	_, endpoint, _, _ := ParseDueMember(member)
	w := commit.New().ZRem(s.Due(tenant), member)
	if lane := laneOf(member); lane != "" {
		w = w.Delete(s.Scope(tenant).Key("endpoint", endpoint, "lane", lane))
	}
	return w.Run(ctx, s.rdb)
}

// InLane reports whether a pending delivery waits in its lane, and whether it is the lane's first
// (the one that is due); false, false for one sent outside a lane.
func (s *Store) InLane(ctx context.Context, tenant, endpoint, customer, id string) (in, first bool, err error) {
	head, err := s.rdb.ZRange(ctx, LaneKey(s.Scope(tenant), endpoint, customer), 0, 0).Result()
	if err != nil || len(head) == 0 {
		return false, false, err
	}
	if head[0] == id {
		return true, true, nil
	}
	_, err = s.rdb.ZScore(ctx, LaneKey(s.Scope(tenant), endpoint, customer), id).Result()
	if errors.Is(err, redis.Nil) {
		return false, false, nil
	}
	return err == nil, false, err
}

func nextVersion(v string) string {
	n, _ := strconv.ParseInt(v, 10, 64)
	return strconv.FormatInt(n+1, 10)
}

// DueMember is the due-queue member of a delivery sent outside a lane: one retried by hand after
// it ended (or queued by an older version).
func DueMember(tenant, endpoint, delivery string) string {
	return tenant + " " + endpoint + " " + delivery
}

// LaneMember is the due-queue member of the first delivery of the endpoint's lane of customer
// ("" for events without one).
func LaneMember(tenant, endpoint, delivery, customer string) string {
	return DueMember(tenant, endpoint, delivery) + " " + laneName(customer)
}

// ParseDueMember splits a due-queue member.
func ParseDueMember(m string) (tenant, endpoint, delivery string, ok bool) {
	parts := strings.Split(m, " ")
	if len(parts) != 3 && len(parts) != 4 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// laneOf is the lane name of a due member ("" for a delivery outside a lane).
func laneOf(m string) string {
	parts := strings.Split(m, " ")
	if len(parts) == 4 {
		return parts[3]
	}
	return ""
}

var claimScript = redis.NewScript(`
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due`)

// Claim takes up to n deliveries of partition p due by now, hiding them from other claims until
// leaseUntil (a sender that dies leaves them to be claimed again then).
func (s *Store) Claim(ctx context.Context, p int, now, leaseUntil time.Time, n int) ([]string, error) {
	return claimScript.Run(ctx, s.rdb, []string{s.DueOf(p)}, now.UnixMilli(), n, leaseUntil.UnixMilli()).StringSlice()
}

// Release puts a claimed delivery back as due at at.
func (s *Store) Release(ctx context.Context, tenant, member string, at time.Time) error {
	return s.rdb.ZAddXX(ctx, s.Due(tenant), redis.Z{Score: float64(at.UnixMilli()), Member: member}).Err()
}
