package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/logging"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// DispatchConfig tunes webhook sending; zero fields take the defaults.
type DispatchConfig struct {
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Concurrency is how many attempts one endpoint may have in flight in one process (default
	// 16): a slow receiver holds only its own. At 2 round trips and one HTTP exchange per attempt,
	// 16 keep up with well over 500 deliveries/s to one receiver on a loaded machine, spread over
	// customers: one customer's deliveries go one at a time, in order.
	Concurrency int
	// Backoff is the pause after a first failure; it doubles per attempt, with jitter, up to
	// MaxBackoff (defaults 5s and 6h).
	Backoff, MaxBackoff time.Duration
	// MaxAge is how long a delivery is retried before it is dead-lettered (default 3 days).
	MaxAge time.Duration
	// PauseAfter is how many failed attempts in a row pause an endpoint (default 50).
	PauseAfter int
	// Poll is how often the due queues are read for retries and orphans (default 500ms).
	Poll time.Duration
	// AllowPrivate allows loopback, private and link-local targets (tests, development).
	AllowPrivate bool
}

func (c DispatchConfig) withDefaults() DispatchConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.Backoff, 5*time.Second)
	def(&c.MaxBackoff, 6*time.Hour)
	def(&c.MaxAge, 72*time.Hour)
	def(&c.Poll, 500*time.Millisecond)
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.PauseAfter <= 0 {
		c.PauseAfter = 50
	}
	return c
}

// maxWaiting bounds the attempts one endpoint may have waiting in one process; past it, claimed
// deliveries wait in the due queue.
const maxWaiting = 1000

// snippetLen is how much of an answer the delivery log keeps.
const snippetLen = 256

// Dispatcher sends due deliveries: those the recorder hands it at once, and those its poll of the
// due queues finds (retries, and deliveries whose sender died).
type Dispatcher struct {
	cfg       DispatchConfig
	store     *redisstore.Store
	endpoints *Endpoints
	client    *http.Client
	logger    *slog.Logger
	now       func() time.Time
	metrics   webhookMetrics

	mu       sync.Mutex
	inFlight map[string]bool          // delivery ids submitted and not finished
	slots    map[string]chan struct{} // tenant/endpoint → its concurrency slots
	waiting  map[string]int
	ctx      context.Context
}

// NewDispatcher returns a dispatcher; Run starts it. Its metrics go to mp (none when nil).
func NewDispatcher(cfg DispatchConfig, store *redisstore.Store, endpoints *Endpoints, logger *slog.Logger, now func() time.Time, mp metric.MeterProvider) *Dispatcher {
	cfg = cfg.withDefaults()
	return &Dispatcher{
		cfg: cfg, store: store, endpoints: endpoints, logger: logger, now: now, metrics: newWebhookMetrics(mp),
		client:   NewHTTPClient(cfg.Timeout, cfg.AllowPrivate),
		inFlight: map[string]bool{}, slots: map[string]chan struct{}{}, waiting: map[string]int{},
		ctx: context.Background(),
	}
}

// lease is how long a claimed delivery stays hidden from other senders: longer than an attempt.
func (d *Dispatcher) lease() time.Duration { return 2*d.cfg.Timeout + 5*time.Second }

// Run polls the due queues until ctx is done, then waits for the attempts in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
	tick := time.NewTicker(d.cfg.Poll)
	defer tick.Stop()
	var claimFailures logging.Recurring // Redis away fails every partition's claim, every poll
	for {
		for p := range d.store.Partitions() {
			if ctx.Err() != nil {
				return nil
			}
			now := d.now()
			due, err := d.store.Claim(ctx, p, now, now.Add(d.lease()), 100)
			if err != nil && ctx.Err() == nil {
				claimFailures.Warn(ctx, d.logger, "webhooks: claim", "partition", p, "error", err)
			}
			for _, m := range due {
				if tenant, endpoint, id, ok := redisstore.ParseDueMember(m); ok && !d.Submit(tenant, endpoint, id, m, nil) {
					d.requeue(ctx, tenant, m)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// requeue makes a claimed delivery this process cannot take now due again at the next poll,
// rather than hidden for the whole lease.
func (d *Dispatcher) requeue(ctx context.Context, tenant, member string) {
	if err := d.store.Release(ctx, tenant, member, d.now()); err != nil && ctx.Err() == nil {
		d.logger.WarnContext(ctx, "webhooks: requeue", "tenant", tenant, "error", err)
	}
}

// Submit sends a claimed delivery, member its due-queue member, as soon as its endpoint has a
// free slot; fresh, when the recorder just wrote it, saves reading it back. It reports false when
// this process cannot take it now (its endpoint has maxWaiting attempts waiting here). Only the
// first delivery of a lane (an endpoint's pending deliveries of one customer) is ever due, so an
// endpoint's slots go to different customers' deliveries, and one customer's go one at a time.
func (d *Dispatcher) Submit(tenant, endpoint, id, member string, fresh *redisstore.Delivery) bool {
	key := tenant + "/" + endpoint
	d.mu.Lock()
	if d.inFlight[id] {
		d.mu.Unlock()
		return true
	}
	if d.ctx.Err() != nil { // stopping: the claim runs out and another sender takes it
		d.mu.Unlock()
		return true
	}
	if d.waiting[key] >= maxWaiting {
		d.mu.Unlock()
		return false
	}
	d.inFlight[id] = true
	d.waiting[key]++
	slots, ok := d.slots[key]
	if !ok {
		slots = make(chan struct{}, d.cfg.Concurrency)
		d.slots[key] = slots
	}
	ctx := d.ctx
	d.mu.Unlock()
	submitted := time.Now()
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.inFlight, id)
			d.waiting[key]--
			d.mu.Unlock()
		}()
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-slots }()
		if fresh != nil {
			d.metrics.stage(ctx, StageQueue, time.Since(submitted))
		}
		next, err := d.send(ctx, tenant, endpoint, id, member, fresh)
		if err != nil && ctx.Err() == nil {
			d.logger.WarnContext(ctx, "webhooks: send", "tenant", tenant, "delivery", id, "error", err)
		}
		// The lane's next delivery, claimed for this process by the write that ended this one:
		// sent now rather than at the next poll (a customer's burst would go one per poll).
		if next != "" {
			if _, _, nextID, ok := redisstore.ParseDueMember(next); ok && !d.Submit(tenant, endpoint, nextID, next, nil) {
				d.requeue(ctx, tenant, next)
			}
		}
	}()
	return true
}

// send makes one attempt at a delivery and records it; next is the member of its lane's next
// delivery when this one ended, claimed for this process.
func (d *Dispatcher) send(ctx context.Context, tenant, endpointID, id, member string, fresh *redisstore.Delivery) (next string, err error) {
	del := fresh
	if del == nil {
		if del, err = d.store.ReadDelivery(ctx, tenant, id); err != nil {
			return "", err
		}
	}
	if del == nil || del.Delivery.GetState() != integrationv1.DeliveryState_DELIVERY_STATE_PENDING {
		// Expired, or ended meanwhile: the customer's next deliveries must not wait on it.
		return d.store.Skip(ctx, tenant, member, d.now().Add(d.lease()))
	}
	ep, secrets, err := d.endpoints.signing(ctx, tenant, endpointID)
	if errors.Is(err, ErrEndpointNotFound) {
		return "", d.store.DropLane(ctx, tenant, member)
	}
	if err != nil {
		return "", err
	}
	if !ep.GetEnabled() { // stopped: the delivery (and its lane) waits for it to be enabled again
		return "", d.store.Release(ctx, tenant, member, d.now().Add(time.Minute))
	}
	attempt, status, retryAfter := d.attempt(ctx, ep.GetUrl(), del.Delivery.GetId(), del.Body, secrets...)
	if ctx.Err() != nil {
		return "", nil // stopping: the claim runs out and another sender tries again
	}
	if fresh != nil {
		d.metrics.stage(ctx, StageSend, time.Duration(attempt.GetLatencyMs())*time.Millisecond)
	}
	d.metrics.attempted(ctx, endpointID, del.Delivery.GetEventId(), time.Duration(attempt.GetLatencyMs())*time.Millisecond,
		status >= 200 && status < 300, d.now())
	return d.finish(ctx, tenant, member, ep, del, attempt, status, retryAfter)
}

// attempt POSTs one signed delivery.
func (d *Dispatcher) attempt(ctx context.Context, url, id string, body []byte, secrets ...string) (*integrationv1.DeliveryAttempt, int, time.Duration) {
	start := d.now()
	a := &integrationv1.DeliveryAttempt{Time: timestamppb.New(start)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "crm-cycle-webhooks/1")
		err = Sign(req.Header, id, start, body, secrets...)
	}
	if err != nil {
		a.ResponseSnippet = "the request could not be built"
		return a, 0, 0
	}
	resp, err := d.client.Do(req)
	a.LatencyMs = time.Since(start).Milliseconds()
	if err != nil {
		a.ResponseSnippet = attemptError(err, req.URL.Hostname())
		return a, 0, 0
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	a.StatusCode = int32(resp.StatusCode)
	a.ResponseSnippet = truncate(string(snippet))
	return a, resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), d.now())
}

func truncate(s string) string {
	if len(s) > snippetLen {
		return s[:snippetLen]
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxRetryAfter bounds the wait a receiver may ask for.
const maxRetryAfter = 12 * time.Hour

// maxAttemptsKept bounds the attempts a delivery's log keeps.
const maxAttemptsKept = 20

// finish records an attempt and decides what comes next: delivered, retried later, or dead.
func (d *Dispatcher) finish(ctx context.Context, tenant, member string, ep *integrationv1.WebhookEndpoint, del *redisstore.Delivery,
	a *integrationv1.DeliveryAttempt, status int, wait time.Duration) (string, error) {
	rec := del.Delivery
	rec.Attempts = append(rec.Attempts, a)
	if n := len(rec.Attempts); n > maxAttemptsKept {
		rec.Attempts = rec.Attempts[n-maxAttemptsKept:]
	}
	rec.AttemptCount++
	now := d.now()
	var next time.Time
	succeeded := false // ends the endpoint's run of failures, in the same write
	switch {
	case status >= 200 && status < 300:
		rec.State, rec.NextAttemptTime = integrationv1.DeliveryState_DELIVERY_STATE_DELIVERED, nil
		succeeded = true
	case status == http.StatusGone:
		rec.State, rec.NextAttemptTime = integrationv1.DeliveryState_DELIVERY_STATE_DEAD, nil
		rec.DeadReason = "the endpoint answered 410 Gone and was disabled"
		d.metrics.count(ctx, ep.GetId(), OutcomeDead)
		if err := d.endpoints.disable(ctx, tenant, ep.GetId(), "the endpoint answered 410 Gone"); err != nil {
			return "", err
		}
	default:
		// A receiver's Retry-After (on 429 and 503) is its word on when to come back: honoured up
		// to maxRetryAfter, even past our own backoff.
		if wait <= 0 || (status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable) {
			wait = d.backoff(int(rec.AttemptCount))
		}
		wait = min(wait, maxRetryAfter)
		if now.Add(wait).After(retriedSince(rec).Add(d.cfg.MaxAge)) {
			rec.State, rec.NextAttemptTime = integrationv1.DeliveryState_DELIVERY_STATE_DEAD, nil
			rec.DeadReason = fmt.Sprintf("gave up after %d attempts over %v", rec.AttemptCount, d.cfg.MaxAge)
			d.metrics.count(ctx, ep.GetId(), OutcomeDead)
		} else {
			next = now.Add(wait)
			rec.NextAttemptTime = timestamppb.New(next)
			d.metrics.count(ctx, ep.GetId(), OutcomeRetried)
		}
		failures, err := d.endpoints.failed(ctx, tenant, ep.GetId())
		if err != nil {
			return "", err
		}
		if failures >= int64(d.cfg.PauseAfter) {
			// The threshold, not this attempt's count: attempts failing at once count past it
			// before the first of them pauses the endpoint (and the others find it paused).
			reason := fmt.Sprintf("paused after %d failed attempts in a row; last: %s", d.cfg.PauseAfter, describe(a))
			if err := d.endpoints.disable(ctx, tenant, ep.GetId(), reason); err != nil {
				return "", err
			}
		}
	}
	following, err := d.store.SaveDelivery(ctx, tenant, member, rec, del.Version, next, succeeded, now.Add(d.lease()))
	if errors.Is(err, commit.ErrVersionMismatch) {
		return "", nil // retried by hand meanwhile: that write wins
	}
	return following, err
}

// retriedSince is when the delivery's run of automatic retries began: its last retry by hand,
// or its creation.
func retriedSince(d *integrationv1.Delivery) time.Time {
	if d.GetRetryTime() != nil {
		return d.GetRetryTime().AsTime()
	}
	return d.GetCreateTime().AsTime()
}

func describe(a *integrationv1.DeliveryAttempt) string {
	if a.GetStatusCode() != 0 {
		return "HTTP " + strconv.Itoa(int(a.GetStatusCode()))
	}
	return a.GetResponseSnippet()
}

// backoff is the pause before attempt n+1: Backoff doubled per attempt, capped, with full jitter
// over its upper half, so that many deliveries failing together do not come back together.
func (d *Dispatcher) backoff(n int) time.Duration {
	base := d.cfg.Backoff << min(n-1, 30)
	if base <= 0 || base > d.cfg.MaxBackoff {
		base = d.cfg.MaxBackoff
	}
	return base/2 + rand.N(base/2+1)
}
