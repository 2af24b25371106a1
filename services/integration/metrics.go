package integration

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Delivery outcomes, the outcome attribute of crm.webhook.deliveries: every attempt is delivered
// or failed; a failed delivery is then retried (scheduled again) or dead (dead-lettered).
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeRetried   = "retried"
	OutcomeDead      = "dead"
)

// Stages of an event's way to a webhook receiver, the stage attribute of crm.webhook.stage.duration.
// One delivery's stages add up to its time from commit to the receiver's answer (on a first
// attempt), so their shares show where that time goes.
const (
	StageRead   = "read"   // the event's commit to the integration consumer's read of it from the stream
	StageBatch  = "batch"  // that read to the recorder taking it up (the events read with it before it)
	StageRecord = "record" // the recorder's work: history entry and deliveries committed
	StageQueue  = "queue"  // recorded to its first attempt starting (a free slot of its endpoint)
	StageSend   = "send"   // the first attempt: request sent to answer read
)

// webhookMetrics are the dispatcher's instruments. Their endpoint attribute is the endpoint id: a
// tenant registers few endpoints (an admin does), so a series per endpoint stays small; a
// deployment with very many tenants can drop the attribute with an OpenTelemetry view.
type webhookMetrics struct {
	deliveries metric.Int64Counter
	latency    metric.Float64Histogram
	attempts   metric.Float64Histogram
	stages     metric.Float64Histogram
}

func newWebhookMetrics(mp metric.MeterProvider) webhookMetrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/crmcycle/crm/services/integration")
	noopMeter := noop.NewMeterProvider().Meter("")
	var w webhookMetrics
	var err error
	if w.deliveries, err = m.Int64Counter("crm.webhook.deliveries",
		metric.WithDescription("webhook delivery outcomes: each attempt delivered or failed, each failed delivery retried or dead")); err != nil {
		w.deliveries, _ = noopMeter.Int64Counter("")
	}
	if w.latency, err = m.Float64Histogram("crm.webhook.delivery.latency", metric.WithUnit("s"),
		metric.WithDescription("from the event's commit to the receiver's 2xx, retries included"),
		metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)); err != nil {
		w.latency, _ = noopMeter.Float64Histogram("")
	}
	if w.attempts, err = m.Float64Histogram("crm.webhook.attempt.duration", metric.WithUnit("s"),
		metric.WithDescription("one HTTP attempt, by outcome"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		w.attempts, _ = noopMeter.Float64Histogram("")
	}
	if w.stages, err = m.Float64Histogram("crm.webhook.stage.duration", metric.WithUnit("s"),
		metric.WithDescription("each stage of an event's way to a webhook receiver: read, batch, record (every event), queue, send (first attempts)"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)); err != nil {
		w.stages, _ = noopMeter.Float64Histogram("")
	}
	return w
}

// stageAttrs are the stages' attributes, built once: the recorder records three stages per event,
// and building an attribute set each time was a sixth of its CPU. Each is kept as the option list
// Record takes, which passing one option would allocate per call.
var stageAttrs = func() map[string][]metric.RecordOption {
	m := map[string][]metric.RecordOption{}
	for _, s := range []string{StageRead, StageBatch, StageRecord, StageQueue, StageSend} {
		m[s] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("stage", s)))}
	}
	return m
}()

// stage records one stage's duration.
func (w webhookMetrics) stage(ctx context.Context, name string, took time.Duration) {
	opts, ok := stageAttrs[name]
	if !ok {
		opts = []metric.RecordOption{metric.WithAttributes(attribute.String("stage", name))}
	}
	w.stages.Record(ctx, max(took, 0).Seconds(), opts...)
}

func (w webhookMetrics) count(ctx context.Context, endpoint, outcome string) {
	w.deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("endpoint", endpoint), attribute.String("outcome", outcome)))
}

// attempted records one attempt's duration and outcome, and on delivery the time since the
// event's commit (its id is a UUIDv7 of that time).
func (w webhookMetrics) attempted(ctx context.Context, endpoint, eventID string, took time.Duration, delivered bool, now time.Time) {
	outcome := OutcomeFailed
	if delivered {
		outcome = OutcomeDelivered
	}
	w.count(ctx, endpoint, outcome)
	w.attempts.Record(ctx, took.Seconds(), metric.WithAttributes(attribute.String("endpoint", endpoint), attribute.String("outcome", outcome)))
	if !delivered {
		return
	}
	if id, err := uuid.Parse(eventID); err == nil && id.Version() == 7 {
		sec, nsec := id.Time().UnixTime()
		w.latency.Record(ctx, now.Sub(time.Unix(sec, nsec)).Seconds(), metric.WithAttributes(attribute.String("endpoint", endpoint)))
	}
}
