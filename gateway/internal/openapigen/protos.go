package openapigen

import (
	"fmt"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// protos indexes what the document is generated from: the messages behind its schemas and the
// methods behind its operations, with their comments, HTTP rules and validation rules.
type protos struct {
	files    *protoregistry.Files
	messages map[string]protoreflect.MessageDescriptor // schema name (message name) → message
	// ambiguous names two messages share: gnostic would give both one schema.
	ambiguous map[string]string
	methods   map[string]protoreflect.MethodDescriptor // operationId (Service_Method) → method
}

// loadProtos reads a buf image (a FileDescriptorSet with source info). Extensions of the options
// (google.api.http, field_behavior, buf.validate) are decoded by the types linked into this binary.
func loadProtos(image []byte, apiPackage string) (*protos, error) {
	var set descriptorpb.FileDescriptorSet
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(image, &set); err != nil {
		return nil, fmt.Errorf("openapigen: read image: %w", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("openapigen: image: %w", err)
	}
	p := &protos{files: files, messages: map[string]protoreflect.MessageDescriptor{}, ambiguous: map[string]string{}, methods: map[string]protoreflect.MethodDescriptor{}}
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), apiPackage) {
			return true
		}
		var walk func(protoreflect.MessageDescriptors)
		walk = func(ms protoreflect.MessageDescriptors) {
			for i := range ms.Len() {
				m := ms.Get(i)
				if prev, ok := p.messages[string(m.Name())]; ok {
					p.ambiguous[string(m.Name())] = string(prev.FullName()) + " and " + string(m.FullName())
				}
				p.messages[string(m.Name())] = m
				walk(m.Messages())
			}
		}
		walk(f.Messages())
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				p.methods[string(s.Name())+"_"+string(m.Name())] = m
			}
		}
		return true
	})
	return p, nil
}

// checkNames refuses a document whose schema stands for two messages of one name (gnostic names
// schemas by the bare message name): better no contract than a wrong one.
func (p *protos) checkNames(doc *openapi3.T) error {
	for name := range doc.Components.Schemas {
		if both, ok := p.ambiguous[name]; ok {
			return fmt.Errorf("openapigen: schema %s is both %s; rename one", name, both)
		}
	}
	return nil
}

// comment is the leading comment of a descriptor, one paragraph per line as written.
func comment(d protoreflect.Descriptor) string {
	loc := d.ParentFile().SourceLocations().ByDescriptor(d)
	return cleanText(loc.LeadingComments)
}

// cleanText drops the space that follows "//" on every line of a proto comment.
func cleanText(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, " ")
	}
	return strings.Join(lines, "\n")
}

func httpRule(m protoreflect.MethodDescriptor) *annotations.HttpRule {
	rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
	return rule
}

// pathFields are the field paths of a method's path variables (`lead.id` of
// "/v1/leads/{lead.id}"), in the order of the path, which is the order of the document's path
// parameters.
func pathFields(m protoreflect.MethodDescriptor) []string {
	rule := httpRule(m)
	var template string
	for _, t := range []string{rule.GetGet(), rule.GetPost(), rule.GetPatch(), rule.GetPut(), rule.GetDelete(), rule.GetCustom().GetPath()} {
		if t != "" {
			template = t
		}
	}
	var fields []string
	for _, v := range pathParam.FindAllStringSubmatch(template, -1) {
		fields = append(fields, strings.SplitN(v[1], "=", 2)[0])
	}
	return fields
}

// pathField is the request field a path parameter of an operation stands for: its field path and
// descriptor (nil when the method has no such variable).
func pathField(m protoreflect.MethodDescriptor, path, name string) (string, protoreflect.FieldDescriptor) {
	fields := pathFields(m)
	for i, v := range pathParam.FindAllStringSubmatch(path, -1) {
		if v[1] == name && i < len(fields) {
			return fields[i], fieldByJSONPath(m.Input(), fields[i])
		}
	}
	return "", nil
}

func fieldRules(f protoreflect.FieldDescriptor) *validate.FieldRules {
	rules, _ := proto.GetExtension(f.Options(), validate.E_Field).(*validate.FieldRules)
	return rules
}

func behaviors(f protoreflect.FieldDescriptor) []annotations.FieldBehavior {
	b, _ := proto.GetExtension(f.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
	return b
}

// fieldByJSONPath follows a dotted path of JSON (or proto) names from a message.
func fieldByJSONPath(m protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	var f protoreflect.FieldDescriptor
	for _, name := range strings.Split(path, ".") {
		if m == nil {
			return nil
		}
		f = m.Fields().ByJSONName(name)
		if f == nil {
			f = m.Fields().ByName(protoreflect.Name(name))
		}
		if f == nil {
			return nil
		}
		m = f.Message()
	}
	return f
}
