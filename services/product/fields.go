package product

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

// maskFields resolves update_mask paths (snake_case, or lowerCamelCase as REST sends them) to the
// fields they name, each of them updatable; an empty mask names every updatable field (AIP-134).
func maskFields(msg proto.Message, mask *fieldmaskpb.FieldMask, updatable []string, maskField string) ([]protoreflect.FieldDescriptor, error) {
	fields := msg.ProtoReflect().Descriptor().Fields()
	paths := mask.GetPaths()
	if len(paths) == 0 {
		paths = updatable
	}
	out := make([]protoreflect.FieldDescriptor, 0, len(paths))
	for _, p := range paths {
		fd := fields.ByName(protoreflect.Name(p))
		if fd == nil {
			fd = fields.ByJSONName(p)
		}
		if fd == nil || !slices.Contains(updatable, string(fd.Name())) {
			return nil, apierr.Invalid(maskField, "cannot update "+p+"; updatable: "+strings.Join(updatable, ", "))
		}
		out = append(out, fd)
	}
	return out, nil
}

// applyMask sets dst's fields to src's values, clearing those src leaves unset.
func applyMask(dst, src proto.Message, fields []protoreflect.FieldDescriptor) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	for _, fd := range fields {
		if !s.Has(fd) {
			d.Clear(fd)
			continue
		}
		d.Set(fd, s.Get(fd))
	}
}

// validateAs checks a whole message against the contract's field rules, naming the fields as the
// request does (prefix.field), for messages the interceptor cannot check as a request part.
func validateAs(v protovalidate.Validator, prefix string, msg proto.Message) error {
	var verr *protovalidate.ValidationError
	if err := v.Validate(msg); !errors.As(err, &verr) {
		return err
	}
	e := apierr.Invalid(prefix, "invalid")
	e.Fields = e.Fields[:0]
	for _, viol := range verr.Violations {
		field := prefix
		if path := protovalidate.FieldPathString(viol.Proto.GetField()); path != "" {
			field += "." + path
		}
		e.Fields = append(e.Fields, apierr.FieldViolation{Field: field, Description: viol.Proto.GetMessage()})
	}
	e.Message = "invalid " + e.Fields[0].Field + ": " + e.Fields[0].Description
	return e
}
