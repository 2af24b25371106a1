// Package protoupdate is AIP-134's partial update for any resource message: resolve an update mask
// to the fields it names, copy them from the request onto the stored resource, and validate the
// merged result against the contract, naming fields as the request does.
package protoupdate

import (
	"errors"
	"slices"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
)

// Update is a resolved update mask.
type Update struct {
	// Fields are the fields the update copies from the request onto the stored resource.
	Fields []protoreflect.FieldDescriptor
	// unchanged are fields the request carries that the update may not change (immutable, or
	// changed only by other methods): accepted when they hold the stored value (AIP-203), so a
	// resource read, edited and sent back whole is an update, not an error.
	unchanged []protoreflect.FieldDescriptor
	allowed   []string
	fields    protoreflect.FieldDescriptors // the resource's, to name allowed in a refusal
	maskField string
}

// Fields resolves an update mask (proto or JSON names) to fields (AIP-134, AIP-203):
//   - an explicit mask names the fields to change: an allowed field is copied (cleared when the
//     request does not set it); an output-only field, the id or the etag is INVALID_ARGUMENT on
//     maskField (the caller asked to change it); any other field must hold its stored value.
//   - "*" alone is full replacement: every allowed field is copied (cleared when unset); the other
//     fields the request sets are treated as in an implied mask.
//   - an empty mask implies the fields msg (the request's resource) sets: the allowed ones are
//     copied, in allowed's order; output-only ones, the id and the etag are ignored; any other
//     must hold its stored value. A field can only be cleared by naming it.
func Fields(msg proto.Message, mask *fieldmaskpb.FieldMask, allowed []string, maskField string) (Update, error) {
	m := msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	u := Update{allowed: allowed, fields: fields, maskField: maskField}
	paths := mask.GetPaths()
	if len(paths) == 0 || (len(paths) == 1 && paths[0] == "*") {
		replace := len(paths) == 1
		for _, name := range allowed {
			if fd := fields.ByName(protoreflect.Name(name)); fd != nil && (replace || m.Has(fd)) {
				u.Fields = append(u.Fields, fd)
			}
		}
		for i := range fields.Len() {
			fd := fields.Get(i)
			if m.Has(fd) && !slices.Contains(allowed, string(fd.Name())) && !ignored(fd) {
				u.unchanged = append(u.unchanged, fd)
			}
		}
		return u, nil
	}
	for _, p := range paths {
		fd := fields.ByName(protoreflect.Name(p))
		if fd == nil {
			fd = fields.ByJSONName(p)
		}
		switch {
		case p == "*":
			return Update{}, apierr.Invalid(maskField, "* replaces every updatable field and must be the only path")
		case fd == nil || ignored(fd):
			return Update{}, u.refuse(p)
		case slices.Contains(allowed, string(fd.Name())):
			u.Fields = append(u.Fields, fd)
		default:
			u.unchanged = append(u.unchanged, fd)
		}
	}
	return u, nil
}

// ignored reports whether a field is never the request's to set: output only, the id, the etag
// (the concurrency token Merge checks, not a field to change).
func ignored(fd protoreflect.FieldDescriptor) bool {
	switch fd.Name() {
	case "id", "etag":
		return true
	}
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	if !ok || opts == nil {
		return false
	}
	behaviors, _ := proto.GetExtension(opts, annotations.E_FieldBehavior).([]annotations.FieldBehavior)
	return slices.Contains(behaviors, annotations.FieldBehavior_OUTPUT_ONLY) ||
		slices.Contains(behaviors, annotations.FieldBehavior_IDENTIFIER)
}

func (u Update) refuse(path string) error {
	// The updatable fields by their JSON names, the names the error's field paths use (a mask
	// takes either form).
	named := make([]string, len(u.allowed))
	for i, name := range u.allowed {
		named[i] = name
		if fd := u.fields.ByName(protoreflect.Name(name)); fd != nil {
			named[i] = fd.JSONName()
		}
	}
	return apierr.Invalid(u.maskField, "cannot update "+path+"; updatable: "+strings.Join(named, ", "))
}

// Unchanged checks that req holds the stored value in every field it names that the update may
// not change; an update with no Fields to copy checks it before answering stored as it is.
func (u Update) Unchanged(stored, req proto.Message) error {
	d, s := stored.ProtoReflect(), req.ProtoReflect()
	for _, fd := range u.unchanged {
		if d.Has(fd) != s.Has(fd) || (s.Has(fd) && !d.Get(fd).Equal(s.Get(fd))) {
			return u.refuse(fd.JSONName())
		}
	}
	return nil
}

// Apply copies the update's fields from src to dst (a field src does not set is cleared), after
// checking Unchanged; on error dst is unchanged.
func Apply(dst, src proto.Message, u Update) error {
	if err := u.Unchanged(dst, src); err != nil {
		return err
	}
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	for _, fd := range u.Fields {
		if s.Has(fd) {
			d.Set(fd, s.Get(fd))
		} else {
			d.Clear(fd)
		}
	}
	return nil
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
func Merge[T Etagged](v protovalidate.Validator, prefix string, current, in T, u Update, stale error) (T, error) {
	var none T
	if err := etag.Check(in.GetEtag(), current.GetEtag(), stale); err != nil {
		return none, err
	}
	merged := proto.CloneOf(current)
	if err := Apply(merged, in, u); err != nil {
		return none, err
	}
	if err := Validate(v, prefix, merged); err != nil {
		return none, err
	}
	return merged, nil
}
