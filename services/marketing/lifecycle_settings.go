package marketing

import (
	"context"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/protoupdate"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// LifecycleSettings are a tenant's lifecycle settings: the churn window.
type LifecycleSettings = marketingv1.LifecycleSettings

// ErrLifecycleSettingsEtag is a settings update sent with an etag that is not the current one.
var ErrLifecycleSettingsEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
	"the lifecycle settings changed since they were read; read them again and retry")

// ErrLifecycleSettingsContention is a settings update that kept losing races to other updates.
var ErrLifecycleSettingsContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
	"the lifecycle settings kept changing concurrently; retry")

// updatableLifecycleSettings are the fields UpdateLifecycleSettings may change.
var updatableLifecycleSettings = []string{"churn_window_days"}

// DefaultLifecycleSettings are a tenant's settings until it changes them: a churn window of
// DefaultChurnWindow.
func DefaultLifecycleSettings() *LifecycleSettings {
	return &LifecycleSettings{ChurnWindowDays: int32(DefaultChurnWindow / (24 * time.Hour)), Etag: defaultRulesEtag}
}

// ChurnWindow is the churn window the settings give.
func ChurnWindow(s *LifecycleSettings) time.Duration {
	return time.Duration(s.GetChurnWindowDays()) * 24 * time.Hour
}

// StoredSettingsEtag is the version the store holds for settings s: "" for the defaults, which
// are not stored. Writes computed with a churn window check it (LifecycleWrite.SettingsVersion,
// ScheduleChurn), so none commits a stage or a schedule computed from a window since changed.
func StoredSettingsEtag(s *LifecycleSettings) string {
	if s.GetEtag() == defaultRulesEtag {
		return ""
	}
	return s.GetEtag()
}

// LifecycleSettingsStore keeps a tenant's lifecycle settings.
type LifecycleSettingsStore interface {
	// LifecycleSettings returns the tenant's settings; nil when it never set any.
	LifecycleSettings(ctx context.Context, tenant string) (*LifecycleSettings, error)
	// PutLifecycleSettings stores s if the stored ones are still at prevEtag ("" for none) with
	// event; ErrStale otherwise.
	PutLifecycleSettings(ctx context.Context, tenant string, s *LifecycleSettings, prevEtag string, event []byte) error
}

// Settings returns the tenant's lifecycle settings, the defaults until it sets its own.
func (l *Lifecycle) Settings(ctx context.Context, tenant string) (*LifecycleSettings, error) {
	s, err := l.store.LifecycleSettings(ctx, tenant)
	if err != nil || s != nil {
		return s, err
	}
	return DefaultLifecycleSettings(), nil
}

// UpdateSettings changes the fields named by mask (when it is empty, the fields `in` sets). An etag that is not
// the current one is ABORTED. The change is announced as marketing.lifecycle_settings.updated,
// on which marketing re-times the tenant's pending churn schedule (Reactions.retimeChurn).
func (l *Lifecycle) UpdateSettings(ctx context.Context, tenant string, in *LifecycleSettings, mask *fieldmaskpb.FieldMask) (*LifecycleSettings, error) {
	if in == nil {
		return nil, apierr.Invalid("settings", "required")
	}
	update, err := protoupdate.Fields(in, mask, updatableLifecycleSettings, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrLifecycleSettingsContention, func() (*LifecycleSettings, error) {
		existing, err := l.Settings(ctx, tenant)
		if err != nil {
			return nil, err
		}
		merged, err := protoupdate.Merge(protovalidate.GlobalValidator, "settings", existing, in, update,
			ErrLifecycleSettingsEtag)
		if err != nil {
			return nil, err
		}
		if len(update.Fields) == 0 { // nothing to change: no write, no new etag
			return existing, nil
		}
		now := l.now().UTC()
		merged.UpdateTime = timestamppb.New(now)
		merged.Etag = etag.Next(existing.GetEtag())
		_, event, err := l.publisher.Envelope(ctx, marketingv1.EventLifecycleSettingsUpdated.Of(merged), tenant, "", now)
		if err != nil {
			return nil, err
		}
		if err := l.store.PutLifecycleSettings(ctx, tenant, merged, StoredSettingsEtag(existing), event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}
