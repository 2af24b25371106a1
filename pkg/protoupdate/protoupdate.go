// Package protoupdate is AIP-134's partial update for any resource message: resolve an update mask
// to the fields it names, copy them from the request onto the stored resource, and validate the
// merged result against the contract, naming fields as the request does.
package protoupdate

import (
	"errors"
	"slices"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
)

// Fields resolves an update mask (proto or JSON names) to fields; a path outside allowed is
// INVALID_ARGUMENT on maskField. An empty mask implies the allowed fields msg (the request's
// resource) has populated, in allowed's order (AIP-134): none when msg sets none, an update that
// changes nothing. A field can only be cleared by naming it.
func Fields(msg proto.Message, mask *fieldmaskpb.FieldMask, allowed []string, maskField string) ([]protoreflect.FieldDescriptor, error) {
	m := msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	paths := mask.GetPaths()
	if len(paths) == 0 {
		paths = nil // appended to below: a new array, not the mask's
		for _, name := range allowed {
			if fd := fields.ByName(protoreflect.Name(name)); fd != nil && m.Has(fd) {
				paths = append(paths, name)
			}
		}
	}
	out := make([]protoreflect.FieldDescriptor, 0, len(paths))
	for _, p := range paths {
		fd := fields.ByName(protoreflect.Name(p))
		if fd == nil {
			fd = fields.ByJSONName(p)
		}
		if fd == nil || !slices.Contains(allowed, string(fd.Name())) {
			return nil, apierr.Invalid(maskField, "cannot update "+p+"; updatable: "+strings.Join(allowed, ", "))
		}
		out = append(out, fd)
	}
	return out, nil
}

// Apply copies fields from src to dst; a field src does not set is cleared.
func Apply(dst, src proto.Message, fields []protoreflect.FieldDescriptor) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	for _, fd := range fields {
		if s.Has(fd) {
			d.Set(fd, s.Get(fd))
		} else {
			d.Clear(fd)
		}
	}
}

// Validate checks a merged resource against the contract's rules, naming fields as the request
// does (prefix.field).
func Validate(v protovalidate.Validator, prefix string, msg proto.Message) error {
	var verr *protovalidate.ValidationError
	if err := v.Validate(msg); !errors.As(err, &verr) {
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

// Etagged is a resource with an etag (AIP-154).
type Etagged interface {
	proto.Message
	GetEtag() string
}

// Merge is the middle of every etag-checked partial update: when in carries no etag or current's
// (stale otherwise), the fields of in are applied to a copy of current, and the copy is validated as
// a whole, naming fields under prefix. current is left as it is, for the conditional write.
func Merge[T Etagged](v protovalidate.Validator, prefix string, current, in T, fields []protoreflect.FieldDescriptor, stale error) (T, error) {
	var none T
	if err := etag.Check(in.GetEtag(), current.GetEtag(), stale); err != nil {
		return none, err
	}
	merged := proto.CloneOf(current)
	Apply(merged, in, fields)
	if err := Validate(v, prefix, merged); err != nil {
		return none, err
	}
	return merged, nil
}
