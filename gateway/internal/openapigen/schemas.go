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
	bound := func(name string) (float64, bool) {
		fd := num.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil || !num.Has(fd) {
			return 0, false
		}
		switch v := num.Get(fd).Interface().(type) {
		case int32:
			return float64(v), true
		case int64:
			return float64(v), true
		case uint32:
			return float64(v), true
		case uint64:
			return float64(v), true
		case float32:
			return float64(v), true
		case float64:
			return v, true
		}
		return 0, false
	}
	if v, ok := bound("gte"); ok {
		s.Min = &v
	}
	if v, ok := bound("gt"); ok {
		s.Min, s.ExclusiveMin = &v, openapi3.ExclusiveBound{Bool: ptr(true)}
	}
	if v, ok := bound("lte"); ok {
		s.Max = &v
	}
	if v, ok := bound("lt"); ok {
		s.Max, s.ExclusiveMax = &v, openapi3.ExclusiveBound{Bool: ptr(true)}
	}
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
