package support

import (
	"context"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/protoupdate"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// defaultAutoCloseDays is how long a solved ticket stays SOLVED when the tenant has not said.
const defaultAutoCloseDays = 4

var (
	updatablePolicyFields   = []string{"first_response_target", "resolution_target", "business_hours"}
	updatableSettingsFields = []string{"auto_close_days", "business_hours"}
	errPolicyPriority       = apierr.Invalid("sla_policy.priority", "must be TICKET_PRIORITY_LOW, _NORMAL, _HIGH or _URGENT")
	errPolicyOrder          = apierr.Invalid("sla_policy.resolution_target", "must not be shorter than first_response_target")
)

// Config are the use cases of a tenant's SLA policies and settings.
type Config struct {
	store     Store
	publisher events.Publisher
	validator protovalidate.Validator
	now       Clock
}

// NewConfig returns the use cases over store.
func NewConfig(store Store, publisher events.Publisher, validator protovalidate.Validator, now Clock) *Config {
	return &Config{store: store, publisher: publisher, validator: validator, now: now}
}

// Policies returns the tenant's policy of every priority, lowest first.
func (c *Config) Policies(ctx context.Context, tenant string) ([]*SlaPolicy, error) {
	stored, err := c.store.SlaPolicies(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]*SlaPolicy, 0, len(priorities))
	for _, p := range priorities {
		out = append(out, policyFor(stored, p))
	}
	return out, nil
}

// UpdatePolicy changes the targets named by mask of one priority's policy. Tickets opened before
// keep their due times.
func (c *Config) UpdatePolicy(ctx context.Context, tenant string, in *SlaPolicy, mask *fieldmaskpb.FieldMask) (*SlaPolicy, error) {
	if _, ok := defaultTargets[in.GetPriority()]; !ok {
		return nil, errPolicyPriority
	}
	fields, err := protoupdate.Fields(in, mask, updatablePolicyFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrConfigContention, func() (*SlaPolicy, error) {
		stored, err := c.store.SlaPolicies(ctx, tenant)
		if err != nil {
			return nil, err
		}
		current := policyFor(stored, in.GetPriority())
		next, err := protoupdate.Merge(c.validator, "sla_policy", current, in, fields, ErrConfigEtag)
		if err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			return current, nil
		}
		if next.GetFirstResponseTarget() == nil || next.GetResolutionTarget() == nil {
			return nil, apierr.Invalid("sla_policy", "first_response_target and resolution_target are required")
		}
		if next.GetResolutionTarget().AsDuration() < next.GetFirstResponseTarget().AsDuration() {
			return nil, errPolicyOrder
		}
		now := c.now().UTC()
		next.UpdateTime, next.Etag = timestamppb.New(now), etag.Next(current.GetEtag())
		_, ev, err := c.publisher.Envelope(ctx, supportv1.EventSlaPolicyUpdated.Of(&supportv1.SupportConfigChanged{SlaPolicy: next}), tenant, "", now)
		if err != nil {
			return nil, err
		}
		if err := c.store.SaveSlaPolicy(ctx, tenant, next, storedVersion(current.GetEtag()), ev); err != nil {
			return nil, err
		}
		return next, nil
	})
}

// Settings returns the tenant's settings.
func (c *Config) Settings(ctx context.Context, tenant string) (*SupportSettings, error) {
	return settingsOrDefault(ctx, c.store, tenant)
}

// UpdateSettings changes the fields of the tenant's settings named by mask (when it is empty, the fields `in` sets)
// and validates the merged settings; a time zone Go does not know is INVALID_ARGUMENT.
func (c *Config) UpdateSettings(ctx context.Context, tenant string, in *SupportSettings, mask *fieldmaskpb.FieldMask) (*SupportSettings, error) {
	fields, err := protoupdate.Fields(in, mask, updatableSettingsFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrConfigContention, func() (*SupportSettings, error) {
		current, err := settingsOrDefault(ctx, c.store, tenant)
		if err != nil {
			return nil, err
		}
		next, err := protoupdate.Merge(c.validator, "settings", current, in, fields, ErrConfigEtag)
		if err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			return current, nil
		}
		if _, err := calendarOf(next.GetBusinessHours()); err != nil {
			return nil, err
		}
		now := c.now().UTC()
		next.UpdateTime, next.Etag = timestamppb.New(now), etag.Next(current.GetEtag())
		_, ev, err := c.publisher.Envelope(ctx, supportv1.EventSettingsUpdated.Of(&supportv1.SupportConfigChanged{Settings: next}), tenant, "", now)
		if err != nil {
			return nil, err
		}
		if err := c.store.SaveSettings(ctx, tenant, next, storedVersion(current.GetEtag()), ev); err != nil {
			return nil, err
		}
		return next, nil
	})
}

func settingsOrDefault(ctx context.Context, store Store, tenant string) (*SupportSettings, error) {
	s, err := store.Settings(ctx, tenant)
	if err != nil || s != nil {
		return s, err
	}
	return &SupportSettings{AutoCloseDays: defaultAutoCloseDays, Etag: defaultEtag}, nil
}

// storedVersion is the store's version of a policy or settings etag: none for a default.
func storedVersion(tag string) string {
	if tag == defaultEtag {
		return ""
	}
	return tag
}
