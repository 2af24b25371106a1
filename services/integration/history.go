// Package integration is the integration service's domain: it records every service's events
// into the tenant's event history (audit log, customer timelines) and webhook deliveries, sends
// the deliveries, and manages webhook endpoints and API keys.
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	// The producers' payload types, registered so that any event's payload decodes.
	_ "github.com/crmcycle/crm/proto/crm/marketing/v1"
	_ "github.com/crmcycle/crm/proto/crm/product/v1"
	_ "github.com/crmcycle/crm/proto/crm/sales/v1"
	_ "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// Producers are the services whose streams the integration service consumes: every one,
// itself included (its own writes belong in the audit log too).
var Producers = []string{"marketing", "sales", "product", "support", "integration"}

// Group is the integration service's one consumer group on every stream.
const Group = "integration"

// CustomerMerged is the event type whose payload (survivor_customer_id and merged_customer_id)
// moves one customer's timeline into another's.
const CustomerMerged = "marketing.customer.merged"

// CustomerErased is the event type after which nothing is left of the customer: its deliveries
// are the last of the customer's counts, which are dropped with it.
const CustomerErased = "marketing.customer.erased"

// DefaultRetention is how long the audit log keeps an entry unless the tenant says otherwise.
const DefaultRetention = 400 * 24 * time.Hour

// deliveryTTL is how long a delivery and its log entry are kept: past the 3 days of retries, a
// dead letter stays replayable for a while.
const deliveryTTL = 14 * 24 * time.Hour

// Recorder turns each event into its history entry and webhook deliveries, in one atomic write.
type Recorder struct {
	store    *redisstore.Store
	settings *Settings
	sender   *Dispatcher
	now      func() time.Time

	mu         sync.Mutex
	endpoints  map[string]endpointsOf // tenant → its endpoints as last read
	registered map[string]bool        // tenants this process listed for the retention sweep
}

type endpointsOf struct {
	version string
	list    []*integrationv1.WebhookEndpoint
}

// NewRecorder returns the recorder; fresh deliveries go to sender at once.
func NewRecorder(store *redisstore.Store, settings *Settings, sender *Dispatcher, now func() time.Time) *Recorder {
	return &Recorder{store: store, settings: settings, sender: sender, now: now, endpoints: map[string]endpointsOf{}, registered: map[string]bool{}}
}

// Subscriptions are the consumer group's subscriptions, one per producer.
func (r *Recorder) Subscriptions() []events.Subscription {
	subs := make([]events.Subscription, len(Producers))
	for i, p := range Producers {
		subs[i] = events.Subscription{Group: Group, Producer: p, Handle: r.Record, OrderKey: OrderKey, Batch: recordBatch}
	}
	return subs
}

// recordBatch is how many events the recorder reads at once from a partition, and records side
// by side. Every batch costs a read, an acknowledgement and a round of ingests (one pipeline per
// event of a customer: a capture makes three); at the default 64 a partition's recorder could
// not keep up with 500 captures/s on the loaded 2-core machine (1,500 events/s, the webhook bench
// case's "read" stage 3.9 s of its 4.2 s p50), while at 100/s it read an event within 32 ms on
// average.
const recordBatch = 256

// OrderKey is the order the recorder needs: a customer's events in stream order (their timeline,
// their deliveries' sequence numbers), a tenant's events without a customer likewise, and a
// merge alone (the events before it land in the merged customer's timeline before it moves).
// Different customers' events are recorded side by side.
func OrderKey(ev *eventv1.Event) string {
	if ev.GetType() == CustomerMerged {
		return ""
	}
	return ev.GetTenantId() + "/" + ev.GetCustomerId()
}

// Record records one event. A redelivered event changes nothing.
func (r *Recorder) Record(ctx context.Context, ev *eventv1.Event) error {
	tenant := ev.GetTenantId()
	if tenant == "" {
		return nil
	}
	start := time.Now()
	if d, ok := events.DeliveryFrom(ctx); ok && d.Attempt == 1 && !d.Read.IsZero() {
		r.sender.metrics.stage(ctx, StageRead, d.Read.Sub(ev.GetOccurredTime().AsTime()))
		r.sender.metrics.stage(ctx, StageBatch, start.Sub(d.Read))
	}
	var payload protoreflect.Message
	if msg, err := anypb.UnmarshalNew(ev.GetPayload(), proto.UnmarshalOptions{}); err == nil {
		payload = msg.ProtoReflect()
	}
	if ev.GetType() == CustomerMerged && payload != nil {
		if err := r.merge(ctx, tenant, payload); err != nil {
			return err
		}
	}
	entry := entryOf(ev, payload)
	customer := ev.GetCustomerId()
	for range 5 {
		eps, err := r.endpointsOf(ctx, tenant, false)
		if err != nil {
			return err
		}
		deliveries, err := r.deliveriesOf(ev, customer, eps.list)
		if err != nil {
			return err
		}
		var forget []string
		if ev.GetType() == CustomerErased && customer != "" && customer == ev.GetCustomerId() {
			// An erased customer's counts go (not the survivor's, when the id was merged away).
			for _, ep := range eps.list {
				forget = append(forget, ep.GetId())
			}
		}
		r.mu.Lock()
		registered := r.registered[tenant]
		r.mu.Unlock()
		seqs, held, applied, err := r.store.Ingest(ctx, redisstore.Ingestion{
			Tenant: tenant, EventID: ev.GetId(), Entry: entry, Indexes: r.indexes(tenant, entry), Customer: customer,
			Register: !registered, EndpointsVersion: eps.version, Deliveries: deliveries, Forget: forget,
			DueAt: r.now().Add(r.sender.lease()), DeliveryTTL: deliveryTTL,
		})
		var merged *redisstore.MergedError
		switch {
		case errors.Is(err, redisstore.ErrStaleEndpoints):
			r.forget(tenant)
			continue
		case errors.As(err, &merged):
			customer = merged.Survivor
			continue
		case err != nil:
			return err
		}
		if applied {
			r.sender.metrics.stage(ctx, StageRecord, time.Since(start))
			r.mu.Lock()
			r.registered[tenant] = true
			r.mu.Unlock()
			for i, d := range deliveries {
				if held[i] { // waits for the customer's earlier deliveries to this endpoint
					continue
				}
				d.Delivery.Sequence = seqs[i]
				fresh := &redisstore.Delivery{Delivery: d.Delivery, Version: "1", Body: sequenced(seqs[i], d.Body)}
				member := redisstore.LaneMember(tenant, d.Delivery.GetEndpointId(), d.Delivery.GetId(), customer)
				if !r.sender.Submit(tenant, d.Delivery.GetEndpointId(), d.Delivery.GetId(), member, fresh) {
					r.sender.requeue(ctx, tenant, member)
				}
			}
		}
		return nil
	}
	return errors.New("integration: the tenant's endpoints kept changing")
}

func entryOf(ev *eventv1.Event, payload protoreflect.Message) *integrationv1.AuditEntry {
	resType, resID := resourceOf(ev, payload)
	return &integrationv1.AuditEntry{
		Id: ev.GetId(), Time: ev.GetOccurredTime(), Actor: ev.GetActor(), Method: ev.GetMethod(),
		RequestId: ev.GetRequestId(), EventType: ev.GetType(), ResourceType: resType, ResourceId: resID,
		CustomerId: ev.GetCustomerId(), Summary: summaryOf(ev, payload, resID),
	}
}

// indexes are the sorted sets of the audit log the entry is listed in: all, and one per filter.
func (r *Recorder) indexes(tenant string, e *integrationv1.AuditEntry) []string {
	sc := r.store.Scope(tenant)
	all, ofType := r.store.AuditIndexes(tenant, e.GetEventType())
	idx := make([]string, 0, 5)
	idx = append(idx,
		all,
		redisstore.AuditKey(sc, "actor", actorKey(e.GetActor())),
		ofType,
		redisstore.AuditKey(sc, "resource", e.GetResourceType()+"/"+e.GetResourceId()),
	)
	if e.GetRequestId() != "" {
		idx = append(idx, redisstore.AuditKey(sc, "request", e.GetRequestId()))
	}
	return idx
}

func (r *Recorder) endpointsOf(ctx context.Context, tenant string, fresh bool) (endpointsOf, error) {
	r.mu.Lock()
	eps, ok := r.endpoints[tenant]
	r.mu.Unlock()
	if ok && !fresh {
		return eps, nil
	}
	list, version, err := r.store.Endpoints(ctx, tenant)
	if err != nil {
		return endpointsOf{}, err
	}
	eps = endpointsOf{version: version, list: list}
	r.mu.Lock()
	r.endpoints[tenant] = eps
	r.mu.Unlock()
	return eps, nil
}

func (r *Recorder) forget(tenant string) {
	r.mu.Lock()
	delete(r.endpoints, tenant)
	r.mu.Unlock()
}

// deliveriesOf are the event's deliveries to the enabled endpoints whose filter it matches and
// that existed when it occurred, in customer's count (the event's customer, or the survivor it was merged into).
func (r *Recorder) deliveriesOf(ev *eventv1.Event, customer string, eps []*integrationv1.WebhookEndpoint) ([]redisstore.NewDelivery, error) {
	var out []redisstore.NewDelivery
	var body []byte
	for _, ep := range eps {
		if !ep.GetEnabled() || !Matches(ep.GetEventTypes(), ev.GetType()) {
			continue
		}
		// An endpoint gets what happens after its creation, not a backlog read late.
		if at, created := ev.GetOccurredTime(), ep.GetCreateTime(); at != nil && created != nil && at.AsTime().Before(created.AsTime()) {
			continue
		}
		if body == nil {
			var err error
			if body, err = Body(ev, customer); err != nil {
				return nil, err
			}
		}
		out = append(out, redisstore.NewDelivery{
			Delivery: &integrationv1.Delivery{
				Id: uuid.Must(uuid.NewV7()).String(), EndpointId: ep.GetId(), EventId: ev.GetId(),
				EventType: ev.GetType(), CustomerId: customer,
				State: integrationv1.DeliveryState_DELIVERY_STATE_PENDING, CreateTime: timestamppb.New(r.now()),
			},
			Body: body,
		})
	}
	return out, nil
}

// sequenced is a delivery body as the ingest script stores it: the sequence number first.
func sequenced(seq int64, body []byte) []byte {
	return append([]byte(`{"sequence":`+strconv.FormatInt(seq, 10)+`,`), body[1:]...)
}

// Matches reports whether an endpoint's event-type filter takes typ: exact names, "*", or
// "<prefix>.*"; an empty filter takes everything.
func Matches(filter []string, typ string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, p := range filter {
		if p == "*" || p == typ || (strings.HasSuffix(p, ".*") && strings.HasPrefix(typ, p[:len(p)-1])) {
			return true
		}
	}
	return false
}

// Body is a delivery's JSON body (before the store puts the sequence number first): the customer
// whose count the sequence number is (the event's, or the survivor it was merged into; absent
// for none), the event's type and time, and the envelope with its payload, as protojson. Events
// carry ids and facts, no personal data.
func Body(ev *eventv1.Event, customer string) ([]byte, error) {
	data, err := protojson.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("integration: encode event %s: %w", ev.GetId(), err)
	}
	return json.Marshal(struct {
		Customer  string          `json:"customerId,omitempty"`
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{customer, ev.GetType(), ev.GetOccurredTime().AsTime().UTC().Format(time.RFC3339Nano), data})
}

// merge moves the merged customer's timeline into the survivor's and makes later events about the
// merged id land there too.
func (r *Recorder) merge(ctx context.Context, tenant string, payload protoreflect.Message) error {
	fields := payload.Descriptor().Fields()
	survivor, merged := "", ""
	if f := fields.ByName("survivor_customer_id"); f != nil && f.Kind() == protoreflect.StringKind {
		survivor = payload.Get(f).String()
	}
	if f := fields.ByName("merged_customer_id"); f != nil && f.Kind() == protoreflect.StringKind {
		merged = payload.Get(f).String()
	}
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	// The merged customer's counts go with it: its later events count on in the survivor's.
	for range 5 {
		eps, err := r.endpointsOf(ctx, tenant, false)
		if err != nil {
			return err
		}
		ids := make([]string, len(eps.list))
		for i, ep := range eps.list {
			ids[i] = ep.GetId()
		}
		err = r.store.MergeTimeline(ctx, tenant, merged, survivor, eps.version, ids)
		if !errors.Is(err, redisstore.ErrStaleEndpoints) {
			return err
		}
		r.forget(tenant)
	}
	return errors.New("integration: the tenant's endpoints kept changing")
}
