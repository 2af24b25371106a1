package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The edge decodes bodies with protojson, whose errors name neither the field's path nor, in
// terms a client knows, what is wrong ("proto: (line 1:36): invalid value for enum field
// channel"). When it refuses a body, explainBody walks the JSON against the message it was
// decoded into, as protojson reads it, to find the first bad value: its path as the client wrote
// it (lines[0].quantity) and what the field takes.

// bodyMessage is the message a grpc-gateway decoder target is (a message, or a pointer to a
// message field's pointer), nil when it is not one.
func bodyMessage(v any) protoreflect.MessageDescriptor {
	if m, ok := v.(proto.Message); ok {
		return m.ProtoReflect().Descriptor()
	}
	for t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer; t = t.Elem() {
		if t.Implements(protoMessageType) {
			return reflect.Zero(t).Interface().(proto.Message).ProtoReflect().Descriptor()
		}
	}
	return nil
}

var protoMessageType = reflect.TypeFor[proto.Message]()

// explainBody finds the first value of data that md does not take, as a field path ("" for the
// whole body) and a description. ok is false when it finds none.
func explainBody(data []byte, md protoreflect.MessageDescriptor) (field, desc string, ok bool) {
	x := &explainer{dec: json.NewDecoder(bytes.NewReader(data))}
	x.dec.UseNumber()
	defer func() {
		// A token the walk did not expect (the body was checked to be JSON) ends it with no answer.
		if r := recover(); r != nil {
			if _, stop := r.(badToken); !stop {
				panic(r)
			}
			field, desc, ok = "", "", false
		}
	}()
	if err := x.message(md, "", x.next()); err != nil {
		return err.field, err.desc, true
	}
	return "", "", false
}

// violation is one bad value: the path of the field and what is wrong with it.
type violation struct{ field, desc string }

type badToken struct{}

type explainer struct{ dec *json.Decoder }

func (x *explainer) next() json.Token {
	t, err := x.dec.Token()
	if err != nil {
		panic(badToken{})
	}
	return t
}

// skip reads past the rest of a value whose first token was t.
func (x *explainer) skip(t json.Token) {
	if d, ok := t.(json.Delim); ok && (d == '{' || d == '[') {
		for depth := 1; depth > 0; {
			if d, ok := x.next().(json.Delim); ok {
				if d == '{' || d == '[' {
					depth++
				} else {
					depth--
				}
			}
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func at(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// jsonKind names a JSON value by its first token, for "must be a string, not a number".
func jsonKind(t json.Token) string {
	switch t := t.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	case nil:
		return "null"
	}
	return "another value"
}

// message reads an object of md's fields, whose first token was t.
func (x *explainer) message(md protoreflect.MessageDescriptor, path string, t json.Token) *violation {
	if t != json.Delim('{') {
		return &violation{at(path), "must be a JSON object, not " + jsonKind(t)}
	}
	fields := md.Fields()
	seen := map[protoreflect.FieldNumber]bool{}
	oneofs := map[protoreflect.FullName]string{}
	for x.dec.More() {
		key, _ := x.next().(string)
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			return &violation{join(path, key), "unknown field" + knownFields(md)}
		}
		if seen[fd.Number()] {
			return &violation{join(path, key), "given twice"}
		}
		seen[fd.Number()] = true
		t := x.next()
		if t == nil && !takesNull(fd) {
			continue // null leaves a field unset
		}
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			if other, taken := oneofs[o.FullName()]; taken {
				return &violation{join(path, key), "only one of " + other + " and " + fd.JSONName() + " may be set"}
			}
			oneofs[o.FullName()] = fd.JSONName()
		}
		var v *violation
		switch {
		case fd.IsList():
			v = x.list(fd, join(path, key), t)
		case fd.IsMap():
			v = x.mapValue(fd, join(path, key), t)
		default:
			v = x.value(fd, join(path, key), t)
		}
		if v != nil {
			return v
		}
	}
	x.next() // }
	return nil
}

// knownFields lists a small message's fields for an unknown-field message.
func knownFields(md protoreflect.MessageDescriptor) string {
	fields := md.Fields()
	if fields.Len() == 0 || fields.Len() > 12 {
		return ""
	}
	names := make([]string, fields.Len())
	for i := range fields.Len() {
		names[i] = fields.Get(i).JSONName()
	}
	return "; this object takes " + strings.Join(names, ", ")
}

// takesNull: the fields where null is a value rather than "unset".
func takesNull(fd protoreflect.FieldDescriptor) bool {
	if fd.IsList() || fd.IsMap() {
		return false
	}
	if m := fd.Message(); m != nil {
		return m.FullName() == "google.protobuf.Value"
	}
	return fd.Enum() != nil && fd.Enum().FullName() == "google.protobuf.NullValue"
}

func (x *explainer) list(fd protoreflect.FieldDescriptor, path string, t json.Token) *violation {
	if t != json.Delim('[') {
		x.skip(t)
		return &violation{path, "must be an array, not " + jsonKind(t)}
	}
	for i := 0; x.dec.More(); i++ {
		if v := x.value(fd, fmt.Sprintf("%s[%d]", path, i), x.next()); v != nil {
			return v
		}
	}
	x.next() // ]
	return nil
}

func (x *explainer) mapValue(fd protoreflect.FieldDescriptor, path string, t json.Token) *violation {
	if t != json.Delim('{') {
		x.skip(t)
		return &violation{path, "must be a JSON object, not " + jsonKind(t)}
	}
	seen := map[string]bool{}
	for x.dec.More() {
		key, _ := x.next().(string)
		if seen[key] {
			return &violation{join(path, key), "given twice"}
		}
		seen[key] = true
		if d := scalar(fd.MapKey(), key, true); d != "" {
			return &violation{join(path, key), "the key " + d}
		}
		if v := x.value(fd.MapValue(), join(path, key), x.next()); v != nil {
			return v
		}
	}
	x.next() // }
	return nil
}

// value checks one value of fd (an element of a list, a map value, or a singular field).
func (x *explainer) value(fd protoreflect.FieldDescriptor, path string, t json.Token) *violation {
	if t == nil && !takesNull(fd) {
		return &violation{path, "must not be null"}
	}
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return x.wellKnown(fd.Message(), path, t)
	}
	if fd.Kind() == protoreflect.EnumKind {
		return enumValue(fd, path, t)
	}
	x.skip(t)
	var d string
	switch t := t.(type) {
	case string:
		d = scalar(fd, t, true)
	case json.Number:
		d = scalar(fd, t.String(), false)
	case bool:
		if fd.Kind() != protoreflect.BoolKind {
			d = "must be " + scalarKind(fd) + ", not true or false"
		}
	default:
		d = "must be " + scalarKind(fd) + ", not " + jsonKind(t)
	}
	if d != "" {
		return &violation{path, d}
	}
	return nil
}

func enumValue(fd protoreflect.FieldDescriptor, path string, t json.Token) *violation {
	ed := fd.Enum()
	if ed.FullName() == "google.protobuf.NullValue" {
		if t != nil {
			return &violation{path, "must be null"}
		}
		return nil
	}
	switch t := t.(type) {
	case string:
		if ed.Values().ByName(protoreflect.Name(t)) != nil {
			return nil
		}
		return &violation{path, fmt.Sprintf("%q is not a valid %s; use one of %s", t, fd.JSONName(), enumNames(ed))}
	case json.Number:
		if d := scalar(fd, t.String(), false); d != "" {
			return &violation{path, d}
		}
		return nil
	}
	return &violation{path, "must be one of " + enumNames(ed) + ", not " + jsonKind(t)}
}

// enumNames lists an enum's values, less the unspecified zero value.
func enumNames(ed protoreflect.EnumDescriptor) string {
	var names []string
	for i := range ed.Values().Len() {
		v := ed.Values().Get(i)
		if v.Number() == 0 && strings.HasSuffix(string(v.Name()), "_UNSPECIFIED") {
			continue
		}
		names = append(names, string(v.Name()))
	}
	return strings.Join(names, ", ")
}

// scalarKind says what JSON a scalar field takes.
func scalarKind(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return "true or false"
	case protoreflect.StringKind:
		return "a string"
	case protoreflect.BytesKind:
		return "a base64 string"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.EnumKind:
		return "an enum value name"
	default:
		return "a whole number"
	}
}

// scalar checks a scalar written as a string (quoted) or a JSON number, as protojson reads them;
// it returns what is wrong, "" when nothing is.
func scalar(fd protoreflect.FieldDescriptor, s string, quoted bool) string {
	want := "must be " + scalarKind(fd)
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !quoted {
			return want + ", not a number"
		}
		return ""
	case protoreflect.BytesKind:
		if !quoted {
			return want + ", not a number"
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if _, err := enc.DecodeString(s); err == nil {
				return ""
			}
		}
		return want
	case protoreflect.BoolKind:
		if quoted && (s == "true" || s == "false") {
			return "" // a map key
		}
		return want + ", not " + map[bool]string{true: "a string", false: "a number"}[quoted]
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if quoted && (s == "NaN" || s == "Infinity" || s == "-Infinity") {
			return ""
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || strings.TrimSpace(s) != s {
			return want
		}
		if fd.Kind() == protoreflect.FloatKind && math.Abs(f) > math.MaxFloat32 {
			return want + " within the range of a 32-bit float"
		}
		return ""
	}
	lo, hi := intRange(fd.Kind())
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.TrimSpace(s) != s || strings.ContainsAny(s, "/_xXoObB") {
		return want
	}
	if !r.IsInt() || r.Num().Cmp(lo) < 0 || r.Num().Cmp(hi) > 0 {
		return fmt.Sprintf("%s from %s to %s", want, lo, hi)
	}
	return ""
}

func intRange(k protoreflect.Kind) (lo, hi *big.Int) {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.EnumKind:
		return big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return big.NewInt(0), big.NewInt(math.MaxUint32)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)
	default:
		return big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	}
}

var durationJSON = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,9})?s$`)

// wellKnown checks a message value: the well-known types have their own JSON forms.
func (x *explainer) wellKnown(md protoreflect.MessageDescriptor, path string, t json.Token) *violation {
	str, isString := t.(string)
	switch name := md.FullName(); name {
	case "google.protobuf.Timestamp":
		x.skip(t)
		if _, err := time.Parse(time.RFC3339Nano, str); !isString || err != nil {
			return &violation{path, `must be an RFC 3339 time such as "2026-01-05T09:00:00Z"`}
		}
		return nil
	case "google.protobuf.Duration":
		x.skip(t)
		if !isString || !durationJSON.MatchString(str) {
			return &violation{path, `must be a duration in seconds such as "7200s" or "1.5s"`}
		}
		return nil
	case "google.protobuf.FieldMask":
		x.skip(t)
		if !isString {
			return &violation{path, `must be a string of comma-separated field names such as "displayName,description"`}
		}
		return nil
	case "google.protobuf.Value":
		x.skip(t)
		return nil
	case "google.protobuf.Struct":
		x.skip(t)
		if t != json.Delim('{') {
			return &violation{path, "must be a JSON object, not " + jsonKind(t)}
		}
		return nil
	case "google.protobuf.ListValue":
		x.skip(t)
		if t != json.Delim('[') {
			return &violation{path, "must be an array, not " + jsonKind(t)}
		}
		return nil
	case "google.protobuf.Any":
		x.skip(t)
		return nil
	default:
		if strings.HasPrefix(string(name), "google.protobuf.") && strings.HasSuffix(string(name), "Value") {
			return x.value(md.Fields().ByName("value"), path, t) // a wrapper: its JSON is the wrapped value
		}
	}
	return x.message(md, path, t)
}

// position is the 1-based line and column (in characters) of a byte offset of a body.
func position(body []byte, offset int) (line, column int) {
	offset = min(max(offset, 0), len(body))
	before := body[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	if utf8.Valid(before[start:]) {
		return line, utf8.RuneCount(before[start:]) + 1
	}
	return line, len(before[start:]) + 1
}
