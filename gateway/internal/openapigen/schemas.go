package openapigen

import (
	"fmt"
	"sort"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// describeSchemas adds to every message schema what gnostic leaves out: the protovalidate limits,
// the meaning of every enum value, and which fields are immutable.
func (p *protos) describeSchemas(doc *openapi3.T) {
	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ref := doc.Components.Schemas[name]
		msg, ok := p.messages[name]
		if !ok || ref.Value == nil {
			continue
		}
		ref.Value.Description = cleanText(ref.Value.Description)
		for prop, s := range ref.Value.Properties {
			f := msg.Fields().ByJSONName(prop)
			if f == nil || s.Value == nil {
				continue
			}
			if s.Ref == "" {
				describeField(s.Value, f)
			}
		}
	}
}

// describeField applies a field's rules to its (inline) schema.
func describeField(s *openapi3.Schema, f protoreflect.FieldDescriptor) {
	s.Description = cleanText(s.Description)
	for _, b := range behaviors(f) {
		if b == annotations.FieldBehavior_IMMUTABLE {
			s.Description = strings.TrimSpace(s.Description + "\n\nImmutable: set on create, never changed after.")
			s.Extensions = withExtension(s.Extensions, "x-immutable", true)
		}
	}
	rules := fieldRules(f)
	item := s
	if f.IsList() && s.Items != nil {
		if r := rules.GetRepeated(); r != nil {
			if r.HasMinItems() {
				s.MinItems = r.GetMinItems()
			}
			if r.HasMaxItems() {
				s.MaxItems = ptr(r.GetMaxItems())
			}
			s.UniqueItems = r.GetUnique()
		}
		rules = rules.GetRepeated().GetItems()
		if s.Items.Ref != "" || s.Items.Value == nil {
			return // the items are a message schema of their own
		}
		item = s.Items.Value
	}
	if f.Enum() != nil && !f.IsMap() {
		describeEnum(item, f.Enum())
	}
	if format := int64Format(f); format != "" && item.Type.Is(openapi3.TypeString) {
		item.Format = format
	}
	if rules != nil {
		applyRules(item, rules)
	}
}

func applyRules(s *openapi3.Schema, rules *validate.FieldRules) {
	if str := rules.GetString(); str != nil {
		if str.HasMinLen() {
			s.MinLength = str.GetMinLen()
		}
		if str.HasMaxLen() {
			s.MaxLength = ptr(str.GetMaxLen())
		}
		if str.HasLen() {
			s.MinLength, s.MaxLength = str.GetLen(), ptr(str.GetLen())
		}
		if str.HasPattern() {
			s.Pattern = str.GetPattern()
		}
		switch {
		case str.GetUuid():
			s.Format = "uuid"
		case str.GetEmail():
			s.Format = "email"
		case str.GetUri():
			s.Format = "uri"
		}
		if in := str.GetIn(); len(in) > 0 {
			s.Enum = nil
			for _, v := range in {
				s.Enum = append(s.Enum, v)
			}
		}
		return
	}
	if e := rules.GetEnum(); e != nil && len(e.GetIn()) == 0 && len(e.GetNotIn()) == 0 {
		return
	}
	// Numbers: whichever of the numeric rule messages is set, read gt/gte/lt/lte by name.
	typ := rules.ProtoReflect().WhichOneof(rules.ProtoReflect().Descriptor().Oneofs().ByName("type"))
	if typ == nil || typ.Message() == nil {
		return
	}
	num := rules.ProtoReflect().Get(typ).Message()
	bound := func(name string) (protoreflect.Value, bool) {
		fd := num.Descriptor().Fields().ByName(protoreflect.Name(name))
		// Scalars only: a duration's or timestamp's bounds are messages, not documented here.
		if fd == nil || !num.Has(fd) || fd.Message() != nil {
			return protoreflect.Value{}, false
		}
		return num.Get(fd), true
	}
	if s.Type.Is(openapi3.TypeString) {
		if s.Format == "int64" || s.Format == "uint64" {
			stringBounds(s, bound)
		}
		return
	}
	number := func(v protoreflect.Value) *float64 {
		var f float64
		switch v := v.Interface().(type) {
		case int32:
			f = float64(v)
		case int64:
			f = float64(v)
		case uint32:
			f = float64(v)
		case uint64:
			f = float64(v)
		case float32:
			f = float64(v)
		case float64:
			f = v
		}
		return &f
	}
	if v, ok := bound("gte"); ok {
		s.Min = number(v)
	}
	if v, ok := bound("gt"); ok {
		s.Min, s.ExclusiveMin = number(v), openapi3.ExclusiveBound{Bool: ptr(true)}
	}
	if v, ok := bound("lte"); ok {
		s.Max = number(v)
	}
	if v, ok := bound("lt"); ok {
		s.Max, s.ExclusiveMax = number(v), openapi3.ExclusiveBound{Bool: ptr(true)}
	}
}

// int64Format is the format of a 64-bit integer field, which protojson writes as a decimal string
// (a JSON number would lose precision past 2^53): "int64" or "uint64", else "".
func int64Format(f protoreflect.FieldDescriptor) string {
	if f.IsMap() {
		return ""
	}
	switch f.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return "int64"
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return "uint64"
	}
	return ""
}

// stringBounds documents the numeric rules of a 64-bit integer, a string in JSON, where
// minimum/maximum mean nothing to a validator: a pattern for a decimal integer (no sign when it
// may not be negative) and the bounds in words ("Range: 1 to 1000000.").
func stringBounds(s *openapi3.Schema, bound func(string) (protoreflect.Value, bool)) {
	var parts []string
	nonNegative := false
	gte, hasGte := bound("gte")
	lte, hasLte := bound("lte")
	if hasGte && hasLte {
		parts = append(parts, fmt.Sprintf("%v to %v", gte.Interface(), lte.Interface()))
	} else {
		for _, b := range []struct{ rule, words string }{{"gte", "at least"}, {"gt", "greater than"}, {"lte", "at most"}, {"lt", "less than"}} {
			if v, ok := bound(b.rule); ok {
				parts = append(parts, fmt.Sprintf("%s %v", b.words, v.Interface()))
			}
		}
	}
	for _, rule := range []string{"gte", "gt"} {
		if v, ok := bound(rule); ok && !strings.HasPrefix(fmt.Sprint(v.Interface()), "-") {
			nonNegative = true
		}
	}
	if len(parts) == 0 {
		return
	}
	s.Pattern = `^-?[0-9]+$`
	if nonNegative {
		s.Pattern = `^[0-9]+$`
	}
	s.Description = strings.TrimSpace(s.Description + "\n\nRange: " + strings.Join(parts, " and ") + " (a decimal integer in a string, as protojson writes 64-bit integers).")
}

// describeEnum lists an enum's values with their comments under the field's own description.
func describeEnum(s *openapi3.Schema, e protoreflect.EnumDescriptor) {
	var b strings.Builder
	var descs []string
	for i := range e.Values().Len() {
		v := e.Values().Get(i)
		c := strings.ReplaceAll(comment(v), "\n", " ")
		fmt.Fprintf(&b, "\n- `%s`: %s", v.Name(), c)
		descs = append(descs, c)
	}
	s.Format = ""
	s.Description = strings.TrimSpace(s.Description + "\n\n" + cleanText(comment(e)) + b.String())
	s.Extensions = withExtension(s.Extensions, "x-enum-descriptions", descs)
}

func withExtension(ext map[string]any, key string, v any) map[string]any {
	if ext == nil {
		ext = map[string]any{}
	}
	ext[key] = v
	return ext
}

func ptr[T any](v T) *T { return &v }
