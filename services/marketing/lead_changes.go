package marketing

import (
	"context"
	"errors"
	"slices"
	"strings"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Errors of changing and erasing leads.
var (
	ErrLeadEtag        = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the lead changed since it was read; read it again and retry")
	ErrLeadEmailExists = apierr.New(apierr.AlreadyExists, "LEAD_EMAIL_EXISTS", "another lead has this e-mail")
)

// updatableLeadFields are the fields UpdateLead may change (its update_mask paths).
var updatableLeadFields = []string{"email", "given_name", "family_name", "company", "consent", "tags"}

// Update changes the fields named by mask (all updatable fields when mask is empty).
func (l *Leads) Update(ctx context.Context, tenant string, in *Lead, mask *fieldmaskpb.FieldMask) (*Lead, error) {
	if in == nil {
		return nil, apierr.Invalid("lead", "required")
	}
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("lead.id", "must be a lead id (UUID)")
	}
	update, err := maskFields(in, mask, updatableLeadFields, "update_mask")
	if err != nil {
		return nil, err
	}
	existing, err := l.store.GetLead(ctx, tenant, in.GetId())
	if err != nil {
		return nil, err
	}
	if err := etag.Check(in.GetEtag(), existing.GetEtag(), ErrLeadEtag); err != nil {
		return nil, err
	}
	now := l.now().UTC()
	merged := proto.CloneOf(existing)
	applyMask(merged, in, update)
	if merged.Email, err = NormalizeEmail(merged.GetEmail()); err != nil {
		return nil, err
	}
	ts := timestamppb.New(now)
	merged.Consent = keepConsentTimes(existing.GetConsent(), merged.GetConsent(), ts)
	if err := validateAs(l.validator, "lead", merged); err != nil {
		return nil, err
	}
	rules, err := rulesOrDefaults(ctx, l.store, tenant)
	if err != nil {
		return nil, err
	}
	rescore(merged, rules, now, 0)
	touch(merged, existing, now)
	changed := make([]string, len(update))
	for i, fd := range update {
		changed[i] = string(fd.Name())
	}
	_, event, err := l.publisher.Envelope(ctx, "marketing.lead.updated", tenant, merged.GetCustomerId(), now,
		&marketingv1.LeadUpdated{LeadId: merged.GetId(), CustomerId: merged.GetCustomerId(), Fields: changed})
	if err != nil {
		return nil, err
	}
	w := LeadWrite{Lead: merged, Prev: existing, Events: [][]byte{event}}
	// New profile data or consent can be what brings the score to the threshold.
	if err := l.qualifyIfDue(ctx, tenant, &w, rules, now); err != nil {
		return nil, err
	}
	if err := l.store.UpdateLead(ctx, tenant, w); err != nil {
		if errors.Is(err, ErrStale) {
			return nil, ErrLeadEtag
		}
		return nil, err
	}
	return merged, nil
}

// Erase removes a lead's personal data for good (the right to be forgotten). Counters that counted
// the lead keep counting it; the erased event carries only ids.
func (l *Leads) Erase(ctx context.Context, tenant, id, ifMatch string) error {
	existing, err := l.store.GetLead(ctx, tenant, id)
	if err != nil {
		return err
	}
	if err := etag.Check(ifMatch, existing.GetEtag(), ErrLeadEtag); err != nil {
		return err
	}
	_, event, err := l.publisher.Envelope(ctx, "marketing.lead.erased", tenant, existing.GetCustomerId(), l.now(),
		&marketingv1.LeadErased{LeadId: existing.GetId(), CustomerId: existing.GetCustomerId()})
	if err != nil {
		return err
	}
	if err := l.store.EraseLead(ctx, tenant, existing, event); err != nil {
		if errors.Is(err, ErrStale) {
			return ErrLeadEtag
		}
		return err
	}
	return nil
}

// keepConsentTimes stamps consent entries that changed with ts and keeps the time of the others.
func keepConsentTimes(before, after []*marketingv1.Consent, ts *timestamppb.Timestamp) []*marketingv1.Consent {
	out := make([]*marketingv1.Consent, 0, len(after))
	for _, c := range after {
		c = proto.CloneOf(c)
		if c.GetSource() == "" {
			c.Source = "update"
		}
		i := slices.IndexFunc(before, func(b *marketingv1.Consent) bool {
			return b.GetChannel() == c.GetChannel() && b.GetGranted() == c.GetGranted() && b.GetSource() == c.GetSource()
		})
		if i >= 0 {
			c.UpdateTime = before[i].GetUpdateTime()
		} else {
			c.UpdateTime = ts
		}
		out = append(out, c)
	}
	return out
}

// maskFields resolves update_mask paths (snake_case, or lowerCamelCase as REST clients send
// them) to fields, all of them allowed; an empty mask means every allowed field (AIP-134).
func maskFields(msg proto.Message, mask *fieldmaskpb.FieldMask, allowed []string, maskField string) ([]protoreflect.FieldDescriptor, error) {
	fields := msg.ProtoReflect().Descriptor().Fields()
	var out []protoreflect.FieldDescriptor
	for _, p := range mask.GetPaths() {
		fd := fields.ByJSONName(p)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(p))
		}
		if fd == nil || !slices.Contains(allowed, string(fd.Name())) {
			return nil, apierr.Invalid(maskField, "cannot update "+p+"; updatable: "+strings.Join(allowed, ", "))
		}
		out = append(out, fd)
	}
	if len(out) == 0 {
		for _, name := range allowed {
			out = append(out, fields.ByName(protoreflect.Name(name)))
		}
	}
	return out, nil
}

// applyMask copies the given fields from src to dst, clearing those src does not set.
func applyMask(dst, src proto.Message, fields []protoreflect.FieldDescriptor) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	for _, fd := range fields {
		if s.Has(fd) {
			d.Set(fd, s.Get(fd))
		} else {
			d.Clear(fd)
		}
	}
}

// validateAs checks msg against the contract's rules, naming fields as the request does
// (prefix.field).
func validateAs(v protovalidate.Validator, prefix string, msg proto.Message) error {
	err := v.Validate(msg)
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	e := apierr.Invalid(prefix, "invalid")
	e.Fields = nil
	for _, viol := range verr.Violations {
		field := prefix
		if path := protovalidate.FieldPathString(viol.Proto.GetField()); path != "" {
			field += "." + path
		}
		e.Fields = append(e.Fields, apierr.FieldViolation{Field: field, Description: viol.Proto.GetMessage()})
	}
	e.Message = "invalid " + prefix + ": " + e.Fields[0].Field + ": " + e.Fields[0].Description
	return e
}
