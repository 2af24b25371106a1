package integration

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// Errors of the webhook use cases.
var (
	ErrEndpointNotFound = apierr.New(apierr.NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND", "webhook endpoint not found")
	ErrDeliveryNotFound = apierr.New(apierr.NotFound, "DELIVERY_NOT_FOUND", "delivery not found")
	ErrEndpointEtag     = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the endpoint changed since it was read; read it again")
	ErrDeliveryBusy     = apierr.New(apierr.Aborted, "DELIVERY_BUSY", "the delivery kept changing while it was being retried; try again")
	ErrEndpointBusy     = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the endpoint kept changing concurrently; retry")
)

// retryDeliveryAttempts bounds RetryDelivery's reads of a delivery that attempts keep changing.
const retryDeliveryAttempts = 3

var updatableEndpointFields = []string{"url", "event_types", "description", "enabled"}

// errLostRace is a write refused because its record changed since it was read, for etag.Retry to
// read again. commit.ErrVersionMismatch cannot be that signal itself: the ETAG_MISMATCH answers
// (ErrEndpointEtag, ErrSettingsEtag) match it, and they end a change.
var errLostRace = errors.New("integration: the record changed since it was read")

// lostRace turns a write's version mismatch into errLostRace.
func lostRace(err error) error {
	if errors.Is(err, commit.ErrVersionMismatch) {
		return errLostRace
	}
	return err
}

// Endpoints are the webhook endpoint use cases.
type Endpoints struct {
	store     *redisstore.Store
	publisher events.Publisher
	validator protovalidate.Validator
	sender    *Dispatcher
	allowPriv bool
	now       func() time.Time
}

// NewEndpoints returns the use cases; allowPrivate lets endpoints name loopback and private
// addresses.
func NewEndpoints(store *redisstore.Store, publisher events.Publisher, validator protovalidate.Validator, allowPrivate bool, now func() time.Time) *Endpoints {
	return &Endpoints{store: store, publisher: publisher, validator: validator, allowPriv: allowPrivate, now: now}
}

// Attach gives the use cases the dispatcher :test and :retry send with.
func (e *Endpoints) Attach(d *Dispatcher) { e.sender = d }

func (e *Endpoints) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return apierr.Invalid("webhook_endpoint.url", "must be an absolute http or https URL without credentials")
	}
	if err := checkURLHost(u.Hostname(), e.allowPriv); err != nil {
		return apierr.Invalid("webhook_endpoint.url", "must not be a loopback, private or link-local address")
	}
	return nil
}

// Create registers an endpoint of the caller's tenant, enabled unless in says enabled false, with
// a new secret, returned only here. The caller must be allowed to read what its filter receives
// (mayReceive).
func (e *Endpoints) Create(ctx context.Context, caller auth.Principal, in *integrationv1.WebhookEndpoint) (*integrationv1.WebhookEndpoint, error) {
	tenant := caller.TenantID
	if err := e.checkURL(in.GetUrl()); err != nil {
		return nil, err
	}
	if err := checkEventTypes(in.GetEventTypes()); err != nil {
		return nil, err
	}
	if err := mayReceive(caller, in.GetEventTypes()); err != nil {
		return nil, err
	}
	now := timestamppb.New(e.now())
	ep := &integrationv1.WebhookEndpoint{
		Id: uuid.Must(uuid.NewV7()).String(), Url: in.GetUrl(), EventTypes: in.GetEventTypes(),
		Description: in.GetDescription(), Enabled: proto.Bool(in.Enabled == nil || in.GetEnabled()), Secret: NewSecret(),
		CreateTime: now, UpdateTime: now, Etag: etag.First,
	}
	sc := e.store.Scope(tenant)
	w := commit.New().ZAdd(redisstore.EndpointsKey(sc), 0, ep.GetId())
	if err := e.save(ctx, tenant, w, ep, "", integrationv1.EventWebhookEndpointCreated); err != nil {
		return nil, err
	}
	return ep, nil
}

// save commits ep at its etag (moving from prev) with its event and bumps the endpoints' version,
// so the recorder matches the next events against the change.
func (e *Endpoints) save(ctx context.Context, tenant string, w *commit.Write, ep *integrationv1.WebhookEndpoint, prev string, typ eventv1.Type[*integrationv1.WebhookEndpointChanged]) error {
	sc := e.store.Scope(tenant)
	_, data, err := e.publisher.Envelope(ctx, typ.Of(&integrationv1.WebhookEndpointChanged{EndpointId: ep.GetId()}), tenant, "", e.now())
	if err != nil {
		return err
	}
	return w.Save(redisstore.EndpointKey(sc, ep.GetId()), ep, prev, ep.GetEtag()).
		HIncrBy(redisstore.EndpointsMetaKey(sc), "version", 1).
		Append(sc.Stream(), data).Run(ctx, e.store.Redis())
}

func (e *Endpoints) read(ctx context.Context, tenant, id string) (*integrationv1.WebhookEndpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrEndpointNotFound
	}
	return commit.Get(ctx, e.store.Redis(), redisstore.EndpointKey(e.store.Scope(tenant), id), &integrationv1.WebhookEndpoint{}, ErrEndpointNotFound)
}

// withoutSecret is the endpoint as read back: the secret is shown only at creation and rotation.
func withoutSecret(ep *integrationv1.WebhookEndpoint) *integrationv1.WebhookEndpoint {
	out := proto.CloneOf(ep)
	out.Secret = ""
	return out
}

// Get reads an endpoint.
func (e *Endpoints) Get(ctx context.Context, tenant, id string) (*integrationv1.WebhookEndpoint, error) {
	ep, err := e.read(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return withoutSecret(ep), nil
}

// List reads a page of endpoints, newest first.
func (e *Endpoints) List(ctx context.Context, tenant string, req page.Request) (page.Page[*integrationv1.WebhookEndpoint], error) {
	sc := e.store.Scope(tenant)
	p, err := redisstore.List(ctx, e.store, redisstore.EndpointsKey(sc), "", "", req,
		func(id string) string { return redisstore.EndpointKey(sc, id) },
		func() *integrationv1.WebhookEndpoint { return &integrationv1.WebhookEndpoint{} })
	for i, ep := range p.Items {
		p.Items[i] = withoutSecret(ep)
	}
	return p, err
}

// change applies edit to the stored endpoint and saves it with its event and whatever edit adds
// to the write, retrying when another write came between.
func (e *Endpoints) change(ctx context.Context, tenant, id string, typ eventv1.Type[*integrationv1.WebhookEndpointChanged],
	edit func(ep *integrationv1.WebhookEndpoint, w *commit.Write) error) (*integrationv1.WebhookEndpoint, error) {
	return etag.Retry(errLostRace, ErrEndpointBusy, func() (*integrationv1.WebhookEndpoint, error) {
		ep, err := e.read(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		prev, w := ep.GetEtag(), commit.New()
		if err := edit(ep, w); err != nil {
			return nil, err
		}
		ep.Etag = etag.Next(prev)
		ep.UpdateTime = timestamppb.New(e.now())
		if err := e.save(ctx, tenant, w, ep, prev, typ); err != nil {
			return nil, lostRace(err)
		}
		return ep, nil
	})
}

// Update changes the fields named in mask; enabling clears the reason the service stopped it. Any
// change needs the caller to be allowed to read what the endpoint's filter (as changed) receives:
// changing the URL of a "*" endpoint redirects every event as surely as creating one.
func (e *Endpoints) Update(ctx context.Context, caller auth.Principal, in *integrationv1.WebhookEndpoint, mask *fieldmaskpb.FieldMask) (*integrationv1.WebhookEndpoint, error) {
	tenant := caller.TenantID
	if in == nil {
		return nil, apierr.Invalid("webhook_endpoint", "required")
	}
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("webhook_endpoint.id", "must be a webhook endpoint id (UUID)")
	}
	fields, err := protoupdate.Fields(in, mask, updatableEndpointFields, "update_mask")
	if err != nil {
		return nil, err
	}
	if len(fields.Fields) == 0 { // nothing to change: the endpoint as it is, no write, no new etag
		ep, err := e.read(ctx, tenant, in.GetId())
		if err != nil {
			return nil, err
		}
		if err := etag.Check(in.GetEtag(), ep.GetEtag(), ErrEndpointEtag); err != nil {
			return nil, err
		}
		if err := fields.Unchanged(ep, in); err != nil {
			return nil, err
		}
		return withoutSecret(ep), nil
	}
	ep, err := e.change(ctx, tenant, in.GetId(), integrationv1.EventWebhookEndpointUpdated, func(ep *integrationv1.WebhookEndpoint, _ *commit.Write) error {
		if err := etag.Check(in.GetEtag(), ep.GetEtag(), ErrEndpointEtag); err != nil {
			return err
		}
		if err := protoupdate.Apply(ep, in, fields); err != nil {
			return err
		}
		if err := protoupdate.Validate(e.validator, "webhook_endpoint", ep); err != nil {
			return err
		}
		if err := e.checkURL(ep.GetUrl()); err != nil {
			return err
		}
		if slices.ContainsFunc(fields.Fields, func(f protoreflect.FieldDescriptor) bool { return f.Name() == "event_types" }) {
			// only a changed filter: one saved before the check still takes other changes
			if err := checkEventTypes(ep.GetEventTypes()); err != nil {
				return err
			}
		}
		if err := mayReceive(caller, ep.GetEventTypes()); err != nil {
			return err
		}
		if ep.GetEnabled() {
			ep.DisabledReason = ""
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ep.GetEnabled() {
		_ = e.store.Redis().Del(ctx, redisstore.FailuresKey(e.store.Scope(tenant), ep.GetId())).Err()
	}
	return withoutSecret(ep), nil
}

// Delete removes an endpoint, its delivery log and its delivery counts; its queued deliveries are
// dropped when their turn comes. A set ifMatch must be the etag of the version the delete is
// conditional on: a stale one is ErrEndpointEtag, also when a change wins the race and the retry re-reads.
func (e *Endpoints) Delete(ctx context.Context, tenant, id, ifMatch string) error {
	sc := e.store.Scope(tenant)
	_, err := etag.Retry(errLostRace, ErrEndpointBusy, func() (struct{}, error) {
		ep, err := e.read(ctx, tenant, id)
		if err != nil {
			return struct{}{}, err
		}
		if err := etag.Check(ifMatch, ep.GetEtag(), ErrEndpointEtag); err != nil {
			return struct{}{}, err
		}
		_, data, err := e.publisher.Envelope(ctx, integrationv1.EventWebhookEndpointDeleted.Of(&integrationv1.WebhookEndpointChanged{EndpointId: id}), tenant, "", e.now())
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, lostRace(commit.New().ExpectVersion(redisstore.EndpointKey(sc, id), ep.GetEtag()).
			Delete(redisstore.EndpointKey(sc, id)).Delete(redisstore.DeliveryLogKey(sc, id)).Delete(redisstore.SequencesKey(sc, id)).
			Delete(redisstore.PreviousSecretKey(sc, id)).
			ZRem(redisstore.EndpointsKey(sc), id).
			HIncrBy(redisstore.EndpointsMetaKey(sc), "version", 1).
			Append(sc.Stream(), data).Run(ctx, e.store.Redis()))
	})
	return err
}

// RotateSecret gives the endpoint a new secret; the current one also signs deliveries for
// overlap, and the secrets of earlier rotations go on signing for the overlaps they were given
// (auth.MaxPreviousSecrets at most: a rotation with overlap over that is ErrTooManySecrets). The
// previous secrets are kept in the rotation's own write, conditional on the endpoint's etag, so
// concurrent rotations each keep the secret they replaced. A stale ifMatch is ErrEndpointEtag,
// checked against the version the rotation's write is conditional on.
func (e *Endpoints) RotateSecret(ctx context.Context, tenant, id string, overlap time.Duration,
	ifMatch string) (*integrationv1.WebhookEndpoint, error) {
	key := redisstore.PreviousSecretKey(e.store.Scope(tenant), id)
	return e.change(ctx, tenant, id, integrationv1.EventWebhookEndpointSecretRotated, func(ep *integrationv1.WebhookEndpoint, w *commit.Write) error {
		if err := etag.Check(ifMatch, ep.GetEtag(), ErrEndpointEtag); err != nil {
			return err
		}
		// read after the endpoint: a rotation committed since changed its etag, and this write fails
		raw, err := e.store.Redis().Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		now := e.now()
		previous := parsePrevious(raw, ep.GetPreviousSecretExpireTime().AsTime()).alive(now)
		if overlap > 0 {
			if len(previous) >= auth.MaxPreviousSecrets {
				return tooManySecrets(auth.MaxPreviousSecrets, previous.first())
			}
			previous = append(previous, previousSecret{secret: ep.GetSecret(), end: now.Add(overlap)})
		} else {
			previous = nil // no overlap: only the new secret signs from now on (a leaked one is shut out)
		}
		ep.PreviousSecretExpireTime = nil
		if last := previous.last(); last.After(now) {
			ep.PreviousSecretExpireTime = timestamppb.New(last)
			w.SetFor(key, previous.String(), last.Sub(now))
		} else {
			w.Delete(key)
		}
		ep.Secret = NewSecret()
		return nil
	})
}

// previousSecret is a secret that signs after a rotation, until end.
type previousSecret struct {
	secret string
	end    time.Time
}

// previousSecrets are kept as "<secret> <end ms>" pairs, space-separated, in the key that expires
// with the last of them.
type previousSecrets []previousSecret

// parsePrevious reads the stored pairs; a bare secret (kept so before secrets had their own end)
// ends at legacyEnd, the endpoint's previous_secret_expire_time.
func parsePrevious(raw string, legacyEnd time.Time) previousSecrets {
	f := strings.Fields(raw)
	if len(f) == 1 {
		return previousSecrets{{secret: f[0], end: legacyEnd}}
	}
	var out previousSecrets
	for i := 0; i+1 < len(f); i += 2 {
		ms, _ := strconv.ParseInt(f[i+1], 10, 64)
		out = append(out, previousSecret{secret: f[i], end: time.UnixMilli(ms)})
	}
	return out
}

func (p previousSecrets) String() string {
	parts := make([]string, 0, 2*len(p))
	for _, s := range p {
		parts = append(parts, s.secret, strconv.FormatInt(s.end.UnixMilli(), 10))
	}
	return strings.Join(parts, " ")
}

// alive is those still signing at now.
func (p previousSecrets) alive(now time.Time) previousSecrets {
	return slices.DeleteFunc(slices.Clone(p), func(s previousSecret) bool { return !s.end.After(now) })
}

// first is when the first of them stops signing; last when the last does (zero for none).
func (p previousSecrets) first() time.Time {
	return slices.MinFunc(p, func(a, b previousSecret) int { return a.end.Compare(b.end) }).end
}

func (p previousSecrets) last() time.Time {
	var last time.Time
	for _, s := range p {
		if s.end.After(last) {
			last = s.end
		}
	}
	return last
}

// signing reads an endpoint with its secrets: the current one and those of earlier rotations still
// in their overlap.
func (e *Endpoints) signing(ctx context.Context, tenant, id string) (*integrationv1.WebhookEndpoint, []string, error) {
	sc := e.store.Scope(tenant)
	pipe := e.store.Redis().Pipeline()
	stored := commit.Read(ctx, pipe, redisstore.EndpointKey(sc, id))
	prev := pipe.Get(ctx, redisstore.PreviousSecretKey(sc, id))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	ep := &integrationv1.WebhookEndpoint{}
	found, err := stored.Decode(ep)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, ErrEndpointNotFound
	}
	secrets := []string{ep.GetSecret()}
	for _, p := range parsePrevious(prev.Val(), ep.GetPreviousSecretExpireTime().AsTime()).alive(e.now()) {
		secrets = append(secrets, p.secret)
	}
	return ep, secrets, nil
}

// failed counts a failed attempt in the endpoint's run of failures and returns the run's length.
func (e *Endpoints) failed(ctx context.Context, tenant, id string) (int64, error) {
	return e.store.Redis().Incr(ctx, redisstore.FailuresKey(e.store.Scope(tenant), id)).Result()
}

// DispatcherActor is the sweep the audit log names as the actor of the changes the webhook
// dispatcher makes itself (disabling an endpoint after a 410, pausing it after failures):
// `actor = "sweep:integration.webhooks"`.
const DispatcherActor = "integration.webhooks"

// errAlreadyStopped ends a disable that finds the endpoint disabled already: a concurrent
// failure (or its owner) stopped it, and that write's event is the one the audit log keeps.
var errAlreadyStopped = errors.New("integration: the endpoint is disabled already")

// disable stops an endpoint with the reason (410 Gone, consistent failure), as the dispatcher: only
// the write that turns it from enabled to disabled changes it and emits its event, so the many
// deliveries failing at once record one change.
func (e *Endpoints) disable(ctx context.Context, tenant, id, reason string) error {
	ctx = events.WithCause(ctx, events.BySweep(DispatcherActor))
	_, err := e.change(ctx, tenant, id, integrationv1.EventWebhookEndpointUpdated, func(ep *integrationv1.WebhookEndpoint, _ *commit.Write) error {
		if !ep.GetEnabled() {
			return errAlreadyStopped
		}
		ep.Enabled, ep.DisabledReason = proto.Bool(false), reason
		return nil
	})
	if errors.Is(err, ErrEndpointNotFound) || errors.Is(err, errAlreadyStopped) {
		return nil
	}
	return err
}

// Test sends a signed "webhook.test" ping now and returns the attempt.
func (e *Endpoints) Test(ctx context.Context, tenant, id string) (*integrationv1.DeliveryAttempt, error) {
	ep, secrets, err := e.signing(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	_, data, err := e.publisher.Envelope(ctx, integrationv1.EventWebhookEndpointTested.Of(&integrationv1.WebhookEndpointChanged{EndpointId: id}), tenant, "", e.now())
	if err != nil {
		return nil, err
	}
	if err := commit.New().Append(e.store.Scope(tenant).Stream(), data).Run(ctx, e.store.Redis()); err != nil {
		return nil, err
	}
	body := []byte(`{"type":"webhook.test","timestamp":"` + e.now().UTC().Format(time.RFC3339Nano) + `","data":{"endpointId":"` + id + `"}}`)
	a, _, _ := e.sender.attempt(ctx, ep.GetUrl(), "test_"+uuid.Must(uuid.NewV7()).String(), body, secrets...)
	return a, nil
}

// ListDeliveries reads a page of an endpoint's deliveries, newest first; state, when set, keeps
// only those in it. A filtered page reads on through the endpoint's log until it is full or
// maxDeliveriesScanned were looked at (a page may then hold fewer, with a token to go on), so a
// rare state does not answer page after page of nothing. Two round trips per log page read.
func (e *Endpoints) ListDeliveries(ctx context.Context, tenant, endpoint string, state integrationv1.DeliveryState, req page.Request) (page.Page[*integrationv1.Delivery], error) {
	if _, err := e.read(ctx, tenant, endpoint); err != nil {
		return page.Page[*integrationv1.Delivery]{}, err
	}
	logKey := redisstore.DeliveryLogKey(e.store.Scope(tenant), endpoint)
	out, after, scanned := page.Page[*integrationv1.Delivery]{}, req.After, 0
	for {
		ids, err := commit.Members(ctx, e.store.Redis(), commit.Range{Index: logKey, Desc: true, After: after, Limit: req.Limit})
		if err != nil {
			return page.Page[*integrationv1.Delivery]{}, err
		}
		read, err := e.store.ReadDeliveries(ctx, tenant, ids.Items)
		if err != nil {
			return page.Page[*integrationv1.Delivery]{}, err
		}
		for i, d := range read {
			scanned++
			if d != nil && (state == integrationv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED || d.Delivery.GetState() == state) {
				out.Items = append(out.Items, d.Delivery)
			}
			if len(out.Items) == req.Limit {
				if i < len(read)-1 || ids.Next != "" { // more may follow: go on after this one
					out.Next = ids.Items[i]
				}
				return out, nil
			}
		}
		if ids.Next == "" || scanned >= maxDeliveriesScanned {
			out.Next = ids.Next
			return out, nil
		}
		after = ids.Next
	}
}

// maxDeliveriesScanned bounds the log entries one filtered page looks at.
const maxDeliveriesScanned = 5000

// RetryDelivery sends a delivery again now: a DEAD or DELIVERED one becomes PENDING and is sent
// at once outside its customer's order (the later deliveries did not wait for it, so it arrives
// after them); a PENDING one first in its lane is due at once rather than after its backoff
// (whoever fixed the receiver should not wait hours for it), and one waiting behind an earlier
// delivery keeps waiting (sending it would break the order). Automatic retries then go on for
// MaxAge from now (RetryTime); CreateTime stays. A PENDING delivery being sent at this moment may
// go out twice, which at-least-once delivery allows: receivers dedupe on webhook-id.
func (e *Endpoints) RetryDelivery(ctx context.Context, tenant, endpoint, id string) (*integrationv1.Delivery, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrDeliveryNotFound
	}
	// An attempt that ends between the read and the write changes the record: read it again.
	for range retryDeliveryAttempts {
		d, err := e.store.ReadDelivery(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if d == nil || d.Delivery.GetEndpointId() != endpoint {
			return nil, ErrDeliveryNotFound
		}
		now := e.now()
		rec := d.Delivery
		member := redisstore.DueMember(tenant, endpoint, id)
		due := true
		if rec.GetState() == integrationv1.DeliveryState_DELIVERY_STATE_PENDING {
			inLane, first, err := e.store.InLane(ctx, tenant, endpoint, rec.GetCustomerId(), id)
			if err != nil {
				return nil, err
			}
			if inLane {
				member, due = redisstore.LaneMember(tenant, endpoint, id, rec.GetCustomerId()), first
			}
		}
		rec.State, rec.DeadReason = integrationv1.DeliveryState_DELIVERY_STATE_PENDING, ""
		rec.RetryTime, rec.NextAttemptTime = timestamppb.New(now), timestamppb.New(now)
		if !due { // the lane's first delivery makes it due when it ends
			rec.NextAttemptTime = nil
		}
		sc := e.store.Scope(tenant)
		_, data, err := e.publisher.Envelope(ctx, integrationv1.EventDeliveryRetried.Of(&integrationv1.DeliveryRetried{DeliveryId: id, EndpointId: endpoint}), tenant, "", now)
		if err != nil {
			return nil, err
		}
		seq := rec.Sequence
		rec.Sequence = 0
		w := commit.New().Save(redisstore.DeliveryKey(sc, id), rec, d.Version, etag.Next(d.Version))
		if due {
			w = w.ZAdd(e.store.Due(tenant), float64(now.UnixMilli()), member)
		}
		err = w.Append(sc.Stream(), data).Run(ctx, e.store.Redis())
		rec.Sequence = seq
		if !errors.Is(err, commit.ErrVersionMismatch) {
			return rec, err
		}
	}
	return nil, ErrDeliveryBusy
}
