package integration

import (
	"cmp"
	"context"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/protoupdate"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// settingsTTL is how long the recorder and the retention sweep trust the retention they read.
const settingsTTL = time.Minute

// ErrSettingsEtag answers an update whose etag is not the stored settings'.
var ErrSettingsEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the settings changed since they were read; read them again and retry")

// ErrSettingsBusy is an update whose write lost the race to other writes on every try.
var ErrSettingsBusy = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the settings kept changing concurrently; retry")

// defaultEtag is the etag of settings never changed.
const defaultEtag = "0"

// Settings are the tenant's integration settings.
type Settings struct {
	store     *redisstore.Store
	publisher events.Publisher
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]cachedRetention
}

type cachedRetention struct {
	d       time.Duration
	expires time.Time
}

// NewSettings returns the settings use cases.
func NewSettings(store *redisstore.Store, publisher events.Publisher, now func() time.Time) *Settings {
	return &Settings{store: store, publisher: publisher, now: now, cache: map[string]cachedRetention{}}
}

// Get reads the tenant's settings, with the defaults filled in.
func (s *Settings) Get(ctx context.Context, tenant string) (*integrationv1.IntegrationSettings, error) {
	stored := commit.Read(ctx, s.store.Redis(), redisstore.SettingsKey(s.store.Scope(tenant)))
	st := &integrationv1.IntegrationSettings{}
	if _, err := stored.Decode(st); err != nil {
		return nil, err
	}
	return withDefaults(st, stored.Version()), nil
}

// withDefaults is st as stored at version, with its etag and the default retention filled in.
func withDefaults(st *integrationv1.IntegrationSettings, version string) *integrationv1.IntegrationSettings {
	st.Etag = cmp.Or(version, defaultEtag)
	if st.GetAuditRetentionDays() == 0 { // never set, or a stored 0 from before 0 was refused
		st.AuditRetentionDays = proto.Int32(int32(DefaultRetention / (24 * time.Hour)))
	}
	return st
}

// Update changes the fields in mask (when it is empty, the fields `in` sets), only at the settings' etag when the
// request carries one. A shorter retention applies to the whole history at the next sweep, a
// longer one keeps what is still there for longer.
func (s *Settings) Update(ctx context.Context, tenant string, in *integrationv1.IntegrationSettings, mask *fieldmaskpb.FieldMask) (*integrationv1.IntegrationSettings, error) {
	fields, err := protoupdate.Fields(in, mask, []string{"audit_retention_days"}, "update_mask")
	if err != nil {
		return nil, err
	}
	sc := s.store.Scope(tenant)
	return etag.Retry(errLostRace, ErrSettingsBusy, func() (*integrationv1.IntegrationSettings, error) {
		stored := commit.Read(ctx, s.store.Redis(), redisstore.SettingsKey(sc))
		st := &integrationv1.IntegrationSettings{}
		if _, err := stored.Decode(st); err != nil {
			return nil, err
		}
		prev := stored.Version()
		if err := etag.Check(in.GetEtag(), cmp.Or(prev, defaultEtag), ErrSettingsEtag); err != nil {
			return nil, err
		}
		if err := protoupdate.Apply(st, in, fields); err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			return withDefaults(st, prev), nil
		}
		// The contract's 1 to 3650 (the request's settings are not validated as a whole: an
		// update may leave the retention out). Named in the mask but left out of the body, it
		// goes back to the default.
		if err := protoupdate.Validate(protovalidate.GlobalValidator, "settings", st); err != nil {
			return nil, err
		}
		st.Etag, st.UpdateTime = "", timestamppb.New(s.now())
		_, data, err := s.publisher.Envelope(ctx, integrationv1.EventSettingsUpdated.Of(&integrationv1.SettingsChanged{
			Settings: &integrationv1.IntegrationSettingsFacts{AuditRetentionDays: st.GetAuditRetentionDays()}}), tenant, "", s.now())
		if err != nil {
			return nil, err
		}
		if err := commit.New().Save(redisstore.SettingsKey(sc), st, prev, etag.Next(prev)).Append(sc.Stream(), data).Run(ctx, s.store.Redis()); err != nil {
			return nil, lostRace(err)
		}
		s.mu.Lock()
		delete(s.cache, tenant)
		s.mu.Unlock()
		return withDefaults(st, etag.Next(prev)), nil
	})
}

// retention is how long the tenant's history is kept.
func (s *Settings) retention(ctx context.Context, tenant string) (time.Duration, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[tenant]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.d, nil
	}
	st, err := s.Get(ctx, tenant)
	if err != nil {
		return 0, err
	}
	d := time.Duration(st.GetAuditRetentionDays()) * 24 * time.Hour
	s.mu.Lock()
	s.cache[tenant] = cachedRetention{d: d, expires: now.Add(settingsTTL)}
	s.mu.Unlock()
	return d, nil
}
