package events

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// The stored form of an event (its stream entry) is the envelope with its largest texts in
// compact form: a stream entry costs Redis memory for as long as it is kept, and text ids, the
// payload's type URL and the method repeat what the type already says. Encode writes it, Decode
// reads it back into the full envelope, the only form code outside this file sees. Decode also
// reads an entry stored in full (written before the compact form): nothing needs migrating.
//
//   - id, customer_id, request_id and the actor's api_key_id or event_id: the 16 bytes of their
//     UUID, when they are one in canonical form (*_bytes fields);
//   - producer: left out when it is the type's first part ("marketing" of "marketing.lead.captured");
//   - the payload's type URL: without "type.googleapis.com/crm.<producer>.v1." when the payload is
//     a message of the producer's package;
//   - method: without "/crm.<producer>.v1.<Producer>Service/" when it is the producer's own method;
//   - traceparent (version 00): trace id, span id and flags as 25 bytes (trace);
//   - in the payload (when its message type is linked in): string fields holding a canonical UUID
//     as its 16 bytes, and string fields equal to the envelope's customer_id as empty strings
//     (payload_ids and payload_customer_ids number them, see rewriteStrings). Payloads name their
//     customer and other resources by id: about 60 bytes an event.
//
// The payload's bytes come back exactly as they were written.
const typeURLPrefix = "type.googleapis.com/"

// encoder is the scratch of one Encode: the stored envelope and its payload, recycled because
// every write builds one per event (about 600 bytes each).
type encoder struct {
	ev      eventv1.Event
	payload anypb.Any
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// Encode is the stored form of ev (see above).
func Encode(ev *eventv1.Event) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer func() {
		e.ev.Reset()
		e.payload.Reset()
		encoders.Put(e)
	}()
	producer := producerOf(ev.GetType())
	w := &e.ev
	w.Type, w.TenantId, w.OccurredTime, w.Tracestate = ev.GetType(), ev.GetTenantId(), ev.GetOccurredTime(), ev.GetTracestate()
	w.Id, w.IdBytes = compactID(ev.GetId())
	w.CustomerId, w.CustomerIdBytes = compactID(ev.GetCustomerId())
	w.RequestId, w.RequestIdBytes = compactID(ev.GetRequestId())
	if ev.GetProducer() != producer {
		w.Producer = ev.GetProducer()
	}
	if p := ev.GetPayload(); p != nil {
		w.Payload, e.payload.TypeUrl, e.payload.Value = &e.payload, p.GetTypeUrl(), p.GetValue()
		if short, ok := cutPrefixes(p.GetTypeUrl(), typeURLPrefix, "crm.", producer, ".v1."); ok && !strings.Contains(short, ".") {
			e.payload.TypeUrl = short
		}
		compactPayload(w, ev)
	}
	if name, ok := cutPrefixes(ev.GetMethod(), "/crm.", producer, ".v1.", upperFirst(producer), "Service/"); ok && name != "" {
		w.MethodSuffix = name
	} else {
		w.Method = ev.GetMethod()
	}
	if trace, ok := packTraceparent(ev.GetTraceparent()); ok {
		w.Trace = trace
	} else {
		w.Traceparent = ev.GetTraceparent()
	}
	switch a := ev.GetActor().GetKind().(type) {
	case *eventv1.Actor_ApiKeyId:
		if w.ActorApiKeyIdBytes = idBytes(a.ApiKeyId); w.ActorApiKeyIdBytes == nil {
			w.Actor = ev.GetActor()
		}
	case *eventv1.Actor_EventId:
		if w.ActorEventIdBytes = idBytes(a.EventId); w.ActorEventIdBytes == nil {
			w.Actor = ev.GetActor()
		}
	default:
		w.Actor = ev.GetActor()
	}
	return proto.Marshal(w)
}

// cutPrefixes is strings.CutPrefix of the prefix the parts make, without joining them.
func cutPrefixes(s string, parts ...string) (string, bool) {
	for _, p := range parts {
		var ok bool
		if s, ok = strings.CutPrefix(s, p); !ok {
			return "", false
		}
	}
	return s, true
}

// upperFirst is name with its first letter upper-case ("sales" -> "Sales"), without allocating
// for the services' names.
func upperFirst(name string) string {
	switch name {
	case "marketing":
		return "Marketing"
	case "sales":
		return "Sales"
	case "product":
		return "Product"
	case "support":
		return "Support"
	case "integration":
		return "Integration"
	case "":
		return ""
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// typeField is the envelope's field number of its type, which Encode keeps as text.
var typeField = (&eventv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("type").Number()

// encodedType reads the type of a stored event (compact or in full) without decoding the rest;
// false when data is not a well-formed message. As in Decode, the last occurrence of the field wins.
func encodedType(data string) (string, bool) {
	b := readOnly(data)
	typ := ""
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if num == typeField && wt == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false
			}
			end := len(data) - len(b) + n // typ is a part of data, not a copy
			typ, b = data[end-len(v):end], b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, wt, b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return typ, true
}

// Decode reads a stored event, compact or in full, into the full envelope. It neither writes to
// data nor keeps it: the event holds copies.
func Decode(data []byte) (*eventv1.Event, error) {
	ev := &eventv1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, err
	}
	producer := producerOf(ev.GetType())
	ev.Id, ev.IdBytes = expandID(ev.GetId(), ev.GetIdBytes()), nil
	ev.CustomerId, ev.CustomerIdBytes = expandID(ev.GetCustomerId(), ev.GetCustomerIdBytes()), nil
	ev.RequestId, ev.RequestIdBytes = expandID(ev.GetRequestId(), ev.GetRequestIdBytes()), nil
	if ev.Producer == "" {
		ev.Producer = producer
	}
	// Each text below is built in one allocation: a consumer decodes every event it handles.
	if p := ev.GetPayload(); p != nil && p.GetTypeUrl() != "" && !strings.Contains(p.GetTypeUrl(), ".") {
		p.TypeUrl = typeURLPrefix + "crm." + producer + ".v1." + p.GetTypeUrl()
	}
	if ev.MethodSuffix != "" {
		ev.Method, ev.MethodSuffix = methodOf(producer, ev.MethodSuffix), ""
	}
	if len(ev.Trace) == 25 {
		var tp [55]byte
		copy(tp[:], "00-")
		hex.Encode(tp[3:35], ev.Trace[:16])
		tp[35] = '-'
		hex.Encode(tp[36:52], ev.Trace[16:24])
		tp[52] = '-'
		hex.Encode(tp[53:], ev.Trace[24:])
		ev.Traceparent, ev.Trace = string(tp[:]), nil
	}
	if len(ev.ActorApiKeyIdBytes) == 16 {
		ev.Actor = &eventv1.Actor{Kind: &eventv1.Actor_ApiKeyId{ApiKeyId: uuid.UUID(ev.ActorApiKeyIdBytes).String()}}
	} else if len(ev.ActorEventIdBytes) == 16 {
		ev.Actor = &eventv1.Actor{Kind: &eventv1.Actor_EventId{EventId: uuid.UUID(ev.ActorEventIdBytes).String()}}
	}
	ev.ActorApiKeyIdBytes, ev.ActorEventIdBytes = nil, nil
	if err := expandPayload(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// compactPayload puts ev's payload into w in its stored form, when that is smaller.
func compactPayload(w, ev *eventv1.Event) {
	p := ev.GetPayload()
	if len(p.GetValue()) == 0 {
		return
	}
	typ, err := protoregistry.GlobalTypes.FindMessageByURL(p.GetTypeUrl())
	if err != nil {
		return // a type this binary does not know: stored as it is
	}
	customer := ev.GetCustomerId()
	var ids, customers []uint32
	value, err := rewriteStrings(typ.Descriptor(), p.GetValue(), new(uint32), 0, func(i uint32, v []byte) []byte {
		if customer != "" && string(v) == customer {
			customers = append(customers, i)
			return nil
		}
		if len(v) == 36 {
			if b := idBytes(string(v)); b != nil {
				ids = append(ids, i)
				return b
			}
		}
		return v
	})
	if err != nil || len(ids)+len(customers) == 0 {
		return
	}
	w.Payload.Value = value // w.Payload is Encode's own copy
	w.PayloadIds, w.PayloadCustomerIds = ids, customers
}

// expandPayload turns a decoded event's stored payload back into the payload as written.
func expandPayload(ev *eventv1.Event) error {
	ids, customers := ev.GetPayloadIds(), ev.GetPayloadCustomerIds()
	if len(ids)+len(customers) == 0 {
		return nil
	}
	ev.PayloadIds, ev.PayloadCustomerIds = nil, nil
	p := ev.GetPayload()
	typ, err := protoregistry.GlobalTypes.FindMessageByURL(p.GetTypeUrl())
	if err != nil {
		return fmt.Errorf("events: the payload of %s %s: %w", ev.GetType(), ev.GetId(), err)
	}
	// What f answers is copied into the rewritten payload at once: the customer id's bytes are read
	// in place and each id's text is written into one buffer.
	customer := readOnly(ev.GetCustomerId())
	var text [36]byte
	grow := (36-16)*len(ids) + 36*len(customers)
	value, err := rewriteStrings(typ.Descriptor(), p.GetValue(), new(uint32), grow, func(i uint32, v []byte) []byte {
		switch {
		case slices.Contains(customers, i):
			return customer
		case len(v) == 16 && slices.Contains(ids, i):
			uuidText(&text, v)
			return text[:]
		}
		return v
	})
	if err != nil {
		return fmt.Errorf("events: the payload of %s %s: %w", ev.GetType(), ev.GetId(), err)
	}
	p.Value = value
	return nil
}

// rewriteStrings copies the message b of type md with the value of each of its string fields
// passed through f, with the field's number: the string fields are numbered from *n on in the
// order they are met, depth first through the nested messages md declares (so the numbering
// depends only on the message's type and field order, which a rewrite keeps). Everything else is
// copied as it is. A message none of whose strings f changes is b itself, not a copy (most nested
// messages: times, moves); grow is how many bytes the rewrite may add, to size the copy.
func rewriteStrings(md protoreflect.MessageDescriptor, b []byte, n *uint32, grow int, f func(i uint32, v []byte) []byte) ([]byte, error) {
	var out []byte // nil until a field changes
	for rest := b; len(rest) > 0; {
		num, typ, tagLen := protowire.ConsumeTag(rest)
		if tagLen < 0 {
			return nil, protowire.ParseError(tagLen)
		}
		if typ != protowire.BytesType {
			valueLen := protowire.ConsumeFieldValue(num, typ, rest[tagLen:])
			if valueLen < 0 {
				return nil, protowire.ParseError(valueLen)
			}
			if out != nil {
				out = append(out, rest[:tagLen+valueLen]...)
			}
			rest = rest[tagLen+valueLen:]
			continue
		}
		v, valueLen := protowire.ConsumeBytes(rest[tagLen:])
		if valueLen < 0 {
			return nil, protowire.ParseError(valueLen)
		}
		w := v
		switch fd := md.Fields().ByNumber(num); {
		case fd == nil:
		case fd.Kind() == protoreflect.MessageKind:
			nested, err := rewriteStrings(fd.Message(), v, n, grow, f)
			if err != nil {
				return nil, err
			}
			w = nested
		case fd.Kind() == protoreflect.StringKind:
			w = f(*n, v)
			*n++
		}
		if out == nil && !bytes.Equal(w, v) {
			out = append(make([]byte, 0, len(b)+grow), b[:len(b)-len(rest)]...)
		}
		if out != nil {
			out = protowire.AppendBytes(append(out, rest[:tagLen]...), w)
		}
		rest = rest[tagLen+valueLen:]
	}
	if out == nil {
		return b, nil
	}
	return out, nil
}

// readOnly is s's bytes without a copy, for parsers that only read them (a stream entry's data
// is read once per group that reads it, and copying it was about a tenth of what the consumers
// allocated). The bytes must not be written to: Go's strings are immutable.
func readOnly(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// producerOf is the producing service an event type names: "marketing" of "marketing.lead.captured".
func producerOf(typ string) string {
	p, _, _ := strings.Cut(typ, ".")
	return p
}

// methodOf is the gRPC method name of a service: "/crm.sales.v1.SalesService/" + name.
func methodOf(service, name string) string {
	if service == "" {
		return "/" + name
	}
	return "/crm." + service + ".v1." + upperFirst(service) + "Service/" + name
}

// uuidText writes the canonical text of the UUID b (16 bytes) into dst.
func uuidText(dst *[36]byte, b []byte) {
	hex.Encode(dst[:8], b[:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], b[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], b[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], b[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:], b[10:])
}

// compactID moves a canonical UUID to its 16 bytes; anything else stays text.
func compactID(id string) (string, []byte) {
	if b := idBytes(id); b != nil {
		return "", b
	}
	return id, nil
}

// idBytes is the 16 bytes of id when it is a UUID in canonical form (lower-case hex, hyphenated
// 8-4-4-4-12), the only form expandID gives back.
func idBytes(id string) []byte {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return nil
	}
	var digits [32]byte
	copy(digits[:], id[:8])
	copy(digits[8:], id[9:13])
	copy(digits[12:], id[14:18])
	copy(digits[16:], id[19:23])
	copy(digits[20:], id[24:])
	for _, c := range digits {
		if ('0' > c || c > '9') && ('a' > c || c > 'f') {
			return nil
		}
	}
	out := make([]byte, 16)
	_, _ = hex.Decode(out, digits[:])
	return out
}

func expandID(text string, b []byte) string {
	if len(b) == 16 {
		return uuid.UUID(b).String()
	}
	return text
}

// packTraceparent packs a version-00 traceparent ("00-<32 hex>-<16 hex>-<2 hex>", lower case).
func packTraceparent(tp string) ([]byte, bool) {
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return nil, false
	}
	out := make([]byte, 25)
	for _, part := range []struct {
		text string
		into []byte
	}{{tp[3:35], out[:16]}, {tp[36:52], out[16:24]}, {tp[53:], out[24:]}} {
		if _, err := hex.Decode(part.into, []byte(part.text)); err != nil || strings.ToLower(part.text) != part.text {
			return nil, false
		}
	}
	return out, true
}
