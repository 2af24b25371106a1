package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/logging"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Handler reacts to one event. An error means "try again"; after MaxDeliveries failed deliveries
// the event goes to the dead-letter stream (an error that says the store is unavailable,
// redisconn.Unavailable, is retried without counting). Handlers make each effect exactly once by committing it
// with its redelivery guard (Guard) in the same atomic write; commit.ErrAlreadyApplied counts as
// success. Routes builds a Handler from typed handlers.
type Handler func(ctx context.Context, ev *eventv1.Event) error

// Subscription is a reacting service's interest in a producing service's events. Each is one
// consumer group (named after the reacting service) on every partition stream of the producer.
type Subscription struct {
	Group    string
	Producer string
	Handle   Handler
	// OrderKey, when set, lets the consumer handle the events of a batch concurrently (up to
	// ConsumerConfig.Workers at once): events with the same key in stream order, events with
	// different keys side by side. An event whose key is empty is handled alone, after every
	// event before it and before any after it. Nil: one event at a time, in stream order, which
	// caps a partition at one handler's round trips (on a loaded machine, the integration
	// recorder fell seconds behind at 500 captures/s that way).
	OrderKey func(*eventv1.Event) string
	// Batch, when set, is how many entries one read of this subscription takes instead of
	// ConsumerConfig.Batch, and, with an OrderKey, how many lanes may run at once (at least
	// ConsumerConfig.Workers): a consumer whose events mostly have different keys handles more of
	// them per round trip (read, ack) that way.
	Batch int
	// Types, when set, are the only event types Handle acts on: the consumer acknowledges an entry
	// of any other type without decoding it or calling Handle (most groups react to a few of
	// their producer's types, and decoding every entry for each group was a tenth of crm's CPU
	// under captures). Nil: every type goes to Handle.
	Types []string
}

// ConsumerConfig tunes a consumer; zero fields take the defaults.
type ConsumerConfig struct {
	// Name identifies this consumer in its group; default host-pid-random.
	Name string
	// Batch is how many entries one read returns (default 64).
	Batch int
	// Block is how long a read waits for new entries (default 1s); it must be below LeaseTTL.
	Block time.Duration
	// Linger is how long a partition's reader waits before its next read after a read that
	// brought fewer entries than a batch and none its subscription handles (only types it skips).
	// Sales, support and product read every capture's three events for the rare merge: without a
	// pause, below saturation, each group read and acknowledged every capture on its own, two
	// round trips per capture and group for crm and Redis, queued in Redis with the requests. An
	// event a lingering group handles waits at most Linger longer; a group handling every entry
	// (integration) never lingers. Default DefaultLinger; negative: no linger. It must be below
	// LeaseTTL.
	Linger time.Duration
	// ClaimIdle is how long an unacknowledged entry waits before another consumer reclaims it
	// (default 30s).
	ClaimIdle time.Duration
	// MaxDeliveries is how many deliveries an event gets before it is dead-lettered (default 5).
	// A delivery that failed because the store was unavailable does not count (process).
	MaxDeliveries int
	// RetryBackoff is the first pause between deliveries of a failing event; it doubles, up to a
	// quarter of LeaseTTL (default 100ms).
	RetryBackoff time.Duration
	// LeaseTTL is how long a partition stays with a consumer that stopped renewing (default 10s).
	LeaseTTL time.Duration
	// HandlerTimeout bounds one handler call (default 30s).
	HandlerTimeout time.Duration
	// Workers is how many events of a partition a subscription with an OrderKey handles at once
	// (default 64, a whole batch).
	Workers int
}

// DefaultLinger is ConsumerConfig.Linger's default: at 1,700 captures a second over 16 partitions
// (half of one Redis' saturation) a partition gets a capture every 9 ms, so a lingering group reads
// three captures' events at a time, and the rare event it handles waits at most 25 ms longer.
const DefaultLinger = 25 * time.Millisecond

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Block, time.Second)
	switch {
	case c.Linger == 0:
		c.Linger = DefaultLinger
	case c.Linger < 0:
		c.Linger = 0
	}
	def(&c.ClaimIdle, 30*time.Second)
	def(&c.RetryBackoff, 100*time.Millisecond)
	def(&c.LeaseTTL, 10*time.Second)
	def(&c.HandlerTimeout, 30*time.Second)
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 5
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	return c
}

// Consumer runs one subscription. Within its group, each partition stream is read by exactly one
// consumer at a time (the holder of the partition's lease), so events of a partition are handled in
// stream order; partitions are shared fairly among the group's live consumers, and a crashed
// consumer's partitions and unacknowledged entries move to the others.
type Consumer struct {
	cfg     ConsumerConfig
	sub     Subscription
	rdb     redis.UniversalClient
	keys    *keyspace.Space
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	logger  *slog.Logger
	metrics *metrics
	leases  *leases
}

// NewConsumer returns a consumer of sub; Run starts it.
func NewConsumer(cfg ConsumerConfig, sub Subscription, rdb redis.UniversalClient, keys *keyspace.Space, tel *telemetry.Telemetry, logger *slog.Logger) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if sub.Batch > 0 {
		cfg.Batch, cfg.Workers = sub.Batch, max(cfg.Workers, sub.Batch)
	}
	if cfg.Block >= cfg.LeaseTTL || cfg.Linger >= cfg.LeaseTTL {
		return nil, errors.New("events: Block and Linger must be shorter than LeaseTTL")
	}
	m, err := newMetrics(tel.MeterProvider, sub, rdb, keys)
	if err != nil {
		return nil, err
	}
	return &Consumer{
		cfg: cfg, sub: sub, rdb: rdb, keys: keys, logger: logger, metrics: m,
		tracer: tel.TracerProvider.Tracer("github.com/crmcycle/crm/pkg/events"),
		prop:   tel.Propagator,
		leases: newLeases(rdb, keys, sub, cfg.Name, cfg.LeaseTTL),
	}, nil
}

// Run consumes until ctx is done, then drains: the handler call in flight finishes and is
// acknowledged, leases are released so other consumers take over at once.
func (c *Consumer) Run(ctx context.Context) error {
	for p := range c.keys.Partitions() {
		err := c.rdb.XGroupCreateMkStream(ctx, c.keys.Stream(c.sub.Producer, p), c.sub.Group, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			if ctx.Err() != nil {
				return nil // stopped while starting: nothing in hand to drain
			}
			return fmt.Errorf("events: create group %s: %w", c.sub.Group, err)
		}
	}
	if err := c.leases.heartbeat(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.leases.keepAlive(ctx) })
	for p := range c.keys.Partitions() {
		wg.Go(func() { c.runPartition(ctx, p) })
	}
	wg.Wait()
	c.leases.leave()
	return nil
}

func (c *Consumer) runPartition(ctx context.Context, p int) {
	stream := c.keys.Stream(c.sub.Producer, p)
	defer c.leases.release(p)
	var part partition
	backoff := c.cfg.RetryBackoff
	for ctx.Err() == nil {
		held, fresh, err := c.leases.hold(ctx, p)
		if err != nil {
			c.logRepeated(ctx, &part.leaseErrs, "events: lease", stream, err)
		} else {
			part.leaseErrs.Reset()
		}
		if !held {
			pause(ctx, c.cfg.LeaseTTL/4)
			continue
		}
		if fresh {
			part.checkPending = true // a takeover: the last holder may have left entries unacknowledged
		}
		err = c.step(ctx, stream, &part)
		// NOGROUP: the group is gone; UNBLOCKED: a read blocked when its stream or group went.
		if redis.HasErrorPrefix(err, "NOGROUP") || redis.HasErrorPrefix(err, "UNBLOCKED") {
			err = c.recreateGroup(ctx, stream, p, err)
		}
		switch {
		case err == nil:
			part.readErrs.Reset()
			backoff = c.cfg.RetryBackoff
		case ctx.Err() == nil:
			c.logRepeated(ctx, &part.readErrs, "events: read", stream, err)
			part.checkPending = true
			// Doubling up to a quarter lease: a persistent error (Redis away, a group missing until
			// the store is re-initialized) hits every partition of every group, 208 readers in
			// crm, which at a fixed 100 ms made 2,000 reads (and log lines) a second. A lease is
			// renewed every quarter, so it stays held meanwhile.
			pause(ctx, backoff)
			backoff = min(backoff*2, c.maxBackoff())
		}
	}
}

// recreateGroupScript creates the group on a stream that lost it, if the stream's partition is
// initialized (its marker, pkg/keyspace, shares the stream's slot): 1 created, 2 another consumer
// did, 0 not initialized. Redis lost its data (or an operator deleted the group) while the
// consumer ran; until `crm admin redis init` no write lands in the partition, so the group waits
// for it rather than make keys in a store an operator may be restoring. It starts from "0": after a
// loss the stream holds only what was written since init, all of it for the group; after a group
// alone was deleted, the group is delivered the stream's retained entries again, which the
// handlers' redelivery guards (Guard, kept longer than any entry) make no-ops, where "$" would
// drop whatever was written between the loss and the re-creation.
var recreateGroupScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local r = redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[1], '0', 'MKSTREAM')
if type(r) == 'table' and r.err then
  if string.sub(r.err, 1, 9) == 'BUSYGROUP' then return 2 end
  return r
end
return 1`)

// recreateGroup answers nogroup, the error a step of partition p got as its group was gone: nil once
// the group is back, else the error to log and back off on.
func (c *Consumer) recreateGroup(ctx context.Context, stream string, p int, nogroup error) error {
	n, err := recreateGroupScript.Run(ctx, c.rdb, []string{keyspace.MarkerKey("p" + strconv.Itoa(p)), stream}, c.sub.Group).Int()
	switch {
	case err != nil:
		return fmt.Errorf("%w; re-creating the group: %w", nogroup, err)
	case n == 0:
		// One text whichever command met NOGROUP: the log reads the same however it was met.
		return fmt.Errorf("NOGROUP: group %s is gone and the partition is not initialized; it is re-created after crm admin redis init", c.sub.Group)
	case n == 1:
		c.logger.WarnContext(ctx, "events: consumer group re-created", "stream", stream, "group", c.sub.Group, "from", "0")
	}
	return nil
}

// logRepeated logs a partition reader's recurring error when it first occurs and then once a
// minute (logging.Recurring), not on every attempt.
func (c *Consumer) logRepeated(ctx context.Context, r *logging.Recurring, msg, stream string, err error) {
	r.Warn(ctx, c.logger, msg, "stream", stream, "group", c.sub.Group, "error", err)
}

// partition is what a consumer remembers of a partition it reads.
type partition struct {
	// checkPending asks the next step to look for unacknowledged entries before reading new ones.
	// They exist only after a takeover (the last holder stopped) or a failed read or acknowledgement
	// of this consumer's own, so a steady reader does not ask Redis (XPENDING) on every read; it
	// still looks once every ClaimIdle, in case an acknowledgement was lost without an error.
	checkPending bool
	checked      time.Time
	// readErrs and leaseErrs keep recurring errors from flooding the log (logRepeated).
	readErrs, leaseErrs logging.Recurring
}

// step handles one batch: unacknowledged entries first (left by a consumer that stopped), so the
// partition's order holds across a takeover, then new ones. The batch is acknowledged with one
// XACK once handled: a crash before it redelivers the batch, which the handlers' redelivery guards
// (Guard) make harmless.
func (c *Consumer) step(ctx context.Context, stream string, part *partition) error {
	if part.checkPending || time.Since(part.checked) >= c.cfg.ClaimIdle {
		part.checked = time.Now()
		pending, err := c.rdb.XPending(ctx, stream, c.sub.Group).Result()
		if err != nil {
			return err
		}
		part.checkPending = pending.Count > 0
	}
	if part.checkPending {
		msgs, _, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: c.sub.Group, Consumer: c.cfg.Name,
			MinIdle: c.cfg.ClaimIdle, Start: "0-0", Count: int64(c.cfg.Batch),
		}).Result()
		if err != nil {
			return err
		}
		if len(msgs) == 0 { // not idle long enough: its consumer may still be at work
			pause(ctx, min(c.cfg.ClaimIdle/4, c.cfg.Block))
			return nil
		}
		deliveries, err := c.deliveries(ctx, stream, msgs)
		if err != nil {
			return err
		}
		_, err = c.handleBatch(ctx, stream, msgs, time.Now(), func(m redis.XMessage) int { return deliveries[m.ID] })
		return err
	}
	res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.sub.Group, Consumer: c.cfg.Name, Streams: []string{stream, ">"},
		Count: int64(c.cfg.Batch), Block: c.cfg.Block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	read := time.Now()
	got, handled := 0, false
	for _, s := range res {
		h, err := c.handleBatch(ctx, stream, s.Messages, read, func(redis.XMessage) int { return 1 })
		if err != nil {
			return err
		}
		got, handled = got+len(s.Messages), handled || h
	}
	if !handled && got < c.cfg.Batch {
		// Nothing for this subscription, and the stream is not behind (a full batch would say it
		// is): let the next read take a few writes' entries at once (ConsumerConfig.Linger).
		pause(ctx, c.cfg.Linger)
	}
	return nil
}

// handleBatch processes entries (in order, or by OrderKey) and acknowledges those handled in one
// XACK, also when the consumer stops halfway (the rest stay pending for the next holder of the
// partition). It reports whether any entry was for the subscription (not skipped by type).
func (c *Consumer) handleBatch(ctx context.Context, stream string, msgs []redis.XMessage, read time.Time, delivered func(redis.XMessage) int) (bool, error) {
	// done starts with the entries skipped by type and has room for the rest: one slice for the
	// acknowledgement, none for a batch of skipped entries only (most of three groups' reads).
	done := make([]string, 0, len(msgs))
	var entries []entry
	for i, m := range msgs {
		if c.skips(m) {
			done = append(done, m.ID)
			continue
		}
		if entries == nil {
			entries = make([]entry, 0, len(msgs)-i)
		}
		e := entry{msg: m, delivered: delivered(m)}
		e.ev, e.err = decodeEntry(m)
		entries = append(entries, e)
	}
	if len(entries) > 0 {
		if c.sub.OrderKey == nil {
			done = c.inOrder(ctx, stream, entries, read, done)
		} else {
			done = c.byKey(ctx, stream, entries, read, done)
		}
	}
	handled := len(entries) > 0
	if len(done) == 0 {
		return handled, nil
	}
	if err := c.rdb.XAck(context.WithoutCancel(ctx), stream, c.sub.Group, done...).Err(); err != nil {
		return handled, fmt.Errorf("ack %d entries: %w", len(done), err)
	}
	c.metrics.delivered.Add(ctx, int64(len(done)), c.metrics.attrs)
	return handled, nil
}

// entry is a stream entry of a batch, decoded.
type entry struct {
	msg       redis.XMessage
	ev        *eventv1.Event
	err       error // the entry could not be decoded
	delivered int
}

// inOrder processes entries one at a time and appends the ids of those handled to done.
func (c *Consumer) inOrder(ctx context.Context, stream string, entries []entry, read time.Time, done []string) []string {
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		if c.process(ctx, stream, e, read) {
			done = append(done, e.msg.ID)
		}
	}
	return done
}

// byKey processes entries by their OrderKey: each run of keyed entries between two unkeyed ones
// (or an undecodable one) in lanes, one per key, up to Workers lanes at once; the unkeyed one alone
// after them. It appends the ids of the entries handled to done.
func (c *Consumer) byKey(ctx context.Context, stream string, entries []entry, read time.Time, done []string) []string {
	var mu sync.Mutex
	keyOf := make([]string, len(entries))
	for i, e := range entries {
		if e.err == nil {
			keyOf[i] = c.sub.OrderKey(e.ev)
		}
	}
	runLanes := func(from, to int) {
		var keys []string
		lanes := map[string][]entry{}
		for i := from; i < to; i++ {
			k := keyOf[i]
			if _, ok := lanes[k]; !ok {
				keys = append(keys, k)
			}
			lanes[k] = append(lanes[k], entries[i])
		}
		slots := make(chan struct{}, c.cfg.Workers)
		var wg sync.WaitGroup
		for _, k := range keys {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				ids := c.inOrder(ctx, stream, lanes[k], read, nil)
				mu.Lock()
				done = append(done, ids...)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	start := 0
	for i := range entries {
		if keyOf[i] != "" {
			continue
		}
		runLanes(start, i)
		done = c.inOrder(ctx, stream, entries[i:i+1], read, done)
		start = i + 1
	}
	runLanes(start, len(entries))
	return done
}

// deliveries returns how often each claimed entry has been delivered, claim included.
func (c *Consumer) deliveries(ctx context.Context, stream string, msgs []redis.XMessage) (map[string]int, error) {
	ext, err := c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: stream, Group: c.sub.Group, Start: msgs[0].ID, End: msgs[len(msgs)-1].ID,
		Count: int64(len(msgs)), Consumer: c.cfg.Name,
	}).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(ext))
	for _, e := range ext {
		out[e.ID] = int(e.RetryCount)
	}
	return out, nil
}

// process delivers one entry until it is handled (true: acknowledge it), dead-lettered (which
// acknowledges it), or the consumer stops (then it stays pending for the next holder). Only the
// handler's refusals count toward MaxDeliveries: a failure caused by the store being unavailable
// (redisconn.Unavailable: Redis away, timing out, loading, failing over) says nothing about the
// event, so it is retried, with the backoff capped, until the store answers; counting it made a
// failover-length outage dead-letter every event in flight.
func (c *Consumer) process(ctx context.Context, stream string, e entry, read time.Time) bool {
	m, ev, delivered := e.msg, e.ev, e.delivered
	if e.err != nil {
		c.deadLetter(ctx, stream, m, e.err, delivered)
		return false
	}
	lastErr := errors.New("delivered without acknowledgement (consumer stopped or timed out)")
	backoff := c.cfg.RetryBackoff
	var faults logging.Recurring // a long outage logs its faults once a minute, not on every retry
	for attempt := max(delivered, 1); ; {
		if attempt > c.cfg.MaxDeliveries {
			c.deadLetter(ctx, stream, m, lastErr, attempt-1)
			return false
		}
		fault, err := c.invoke(ctx, Delivery{Stream: stream, EntryID: m.ID, Attempt: attempt, Read: read}, ev)
		if err == nil || errors.Is(err, commit.ErrAlreadyApplied) {
			return true
		}
		c.metrics.failed.Add(ctx, 1, c.metrics.attrs)
		if fault {
			faults.Warn(ctx, c.logger, "events: handler failed: store unavailable, retrying", "type", ev.GetType(),
				"event_id", ev.GetId(), "group", c.sub.Group, "attempt", attempt, "error", err)
		} else {
			lastErr = err
			c.logger.WarnContext(ctx, "events: handler failed", "type", ev.GetType(), "event_id", ev.GetId(),
				"group", c.sub.Group, "attempt", attempt, "error", err)
			attempt++
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt <= c.cfg.MaxDeliveries {
			pause(ctx, backoff)
			backoff = min(backoff*2, c.maxBackoff())
		}
	}
}

// maxBackoff caps the pause between retries, as between a partition's failed reads: a quarter
// lease, so a store that comes back is retried within that.
func (c *Consumer) maxBackoff() time.Duration {
	return max(c.cfg.RetryBackoff, c.cfg.LeaseTTL/4)
}

// invoke calls the handler in a consumer span, with the event as the cause of what the handler
// writes. The span processes one message, so, as the OpenTelemetry messaging conventions
// recommend, it is a child of the producer's span (one order is one trace across services) and
// also links to it. A shutdown does not cancel the call: it drains. fault reports that err was the
// store being unavailable (judged against the call's own deadline: HandlerTimeout running out is
// the handler's failure, unless what it waited on was a Redis call that timed out).
func (c *Consumer) invoke(ctx context.Context, d Delivery, ev *eventv1.Event) (fault bool, err error) {
	hctx, cancel := context.WithTimeout(WithCause(context.WithValue(context.WithoutCancel(ctx), deliveryKey{}, d), ByEvent(ev)), c.cfg.HandlerTimeout)
	defer cancel()
	producer := trace.SpanContextFromContext(c.prop.Extract(context.Background(), (*eventCarrier)(ev)))
	if producer.IsValid() {
		hctx = trace.ContextWithRemoteSpanContext(hctx, producer)
	}
	// The name, link and attributes are set only on a recording span: building them for every
	// unsampled event was a quarter of what a delivery allocated. The samplers OTEL_TRACES_SAMPLER
	// selects decide by the parent and trace id alone, so they decide as before.
	hctx, span := c.tracer.Start(hctx, "process", trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetName("process " + ev.GetType())
		span.AddLink(trace.Link{SpanContext: producer})
		span.SetAttributes(
			attribute.String("messaging.system", "redis"),
			attribute.String("messaging.destination.name", d.Stream),
			attribute.String("messaging.consumer.group.name", c.sub.Group),
			attribute.String("messaging.message.id", ev.GetId()),
			attribute.String("messaging.redis.entry_id", d.EntryID),
			attribute.Int("messaging.delivery.attempt", d.Attempt),
		)
	}
	defer span.End()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
		if err != nil && !errors.Is(err, commit.ErrAlreadyApplied) {
			fault = redisconn.Unavailable(hctx, err)
			span.RecordError(err)
			span.SetStatus(otelcodes.Error, err.Error())
		}
	}()
	return false, c.sub.Handle(hctx, ev)
}

// eventCarrier is an event as the propagator's carrier of its trace context: the propagator reads
// and writes the envelope's fields, with no map (nor carrier) allocated per event.
type eventCarrier eventv1.Event

func (e *eventCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return e.Traceparent
	case "tracestate":
		return e.Tracestate
	}
	return ""
}

func (e *eventCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		e.Traceparent = value
	case "tracestate":
		e.Tracestate = value
	}
}

func (e *eventCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

func (c *Consumer) deadLetter(ctx context.Context, stream string, m redis.XMessage, cause error, deliveries int) {
	ctx = context.WithoutCancel(ctx)
	dlq := stream + ":dlq:" + c.sub.Group
	data, _ := m.Values[entryField].(string)
	err := deadLetterScript.Run(ctx, c.rdb, []string{stream, dlq}, c.sub.Group, m.ID, data, cause.Error(),
		strconv.Itoa(deliveries)).Err()
	if err != nil {
		c.logger.ErrorContext(ctx, "events: dead-letter", "stream", stream, "id", m.ID, "error", err)
		return
	}
	c.metrics.deadLettered.Add(ctx, 1, c.metrics.attrs)
	c.logger.ErrorContext(ctx, "events: dead-lettered", "stream", stream, "id", m.ID, "group", c.sub.Group,
		"deliveries", deliveries, "error", cause)
}

// Delivery says where a handled event came from.
type Delivery struct {
	Stream  string
	EntryID string
	// Attempt counts deliveries of this entry to the group, this one included.
	Attempt int
	// Read is when this consumer read the entry (with its batch) from the stream: what a handler
	// sees later than that, it waited for in the batch.
	Read time.Time
}

type deliveryKey struct{}

// DeliveryFrom returns the delivery of the event a handler was called with.
func DeliveryFrom(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

// entryField is the stream entry field that holds the encoded envelope.
const entryField = "e"

// skips reports whether m is an event of a type the subscription does not handle, read from its
// stored form without decoding it. An entry whose type cannot be read is not skipped: decoding it
// fails, and it is dead-lettered as before.
func (c *Consumer) skips(m redis.XMessage) bool {
	if c.sub.Types == nil {
		return false
	}
	data, ok := m.Values[entryField].(string)
	if !ok {
		return false
	}
	typ, ok := encodedType(data)
	return ok && !slices.Contains(c.sub.Types, typ)
}

func decodeEntry(m redis.XMessage) (*eventv1.Event, error) {
	data, ok := m.Values[entryField].(string)
	if !ok {
		return nil, fmt.Errorf("entry %s has no %q field", m.ID, entryField)
	}
	ev, err := Decode(readOnly(data)) // Decode copies what it keeps (proto.Unmarshal does)
	if err != nil {
		return nil, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	return ev, nil
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
