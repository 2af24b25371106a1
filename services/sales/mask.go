package sales

import (
	"errors"
	"slices"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/apierr"
)

// maskFields resolves update_mask paths (snake_case, or lowerCamelCase as REST clients send
// them) to fields, all of them allowed; an empty mask means every allowed field (AIP-134).
func maskFields(msg proto.Message, mask *fieldmaskpb.FieldMask, allowed []string) ([]protoreflect.FieldDescriptor, error) {
	fields := msg.ProtoReflect().Descriptor().Fields()
	var out []protoreflect.FieldDescriptor
	for _, p := range mask.GetPaths() {
		fd := fields.ByJSONName(p)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(p))
		}
		if fd == nil || !slices.Contains(allowed, string(fd.Name())) {
			return nil, apierr.Invalid("update_mask", "cannot update "+p+"; updatable: "+strings.Join(allowed, ", "))
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
