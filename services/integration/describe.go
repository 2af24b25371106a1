package integration

import (
	"cmp"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// What an event is about, read from its type and payload without knowing each payload: the type
// is "<service>.<resource>.<what happened>", and payloads name their resource's id
// "<resource>_id" (or by the resource's last word: a webhook_endpoint's "endpoint_id", a
// referral_code's "code"), carry the resource itself as "<resource>" (with an "id" or
// "<resource>_id"), or are the resource. TestEveryEventTypeNamesItsResource walks every declared
// event type, so a payload these rules miss fails there, not silently in the audit log.

// TenantResource is the resource id of what the tenant has one of (its settings, scoring rules,
// loyalty program) and of what an event reads or changes all of (an export): "<type>/tenant".
const TenantResource = "tenant"

// resourceOf returns the event's resource type ("sales.opportunity") and id: the payload's, else
// the customer's (a customer-wide resource: lifecycle, loyalty), else TenantResource.
func resourceOf(ev *eventv1.Event, payload protoreflect.Message) (typ, id string) {
	// "<producer>.<resource>.<what happened>": the type is its first two parts, a part of the
	// event's type (no split, no copy: the recorder describes every event).
	producer, rest, _ := strings.Cut(ev.GetType(), ".")
	resource, _, ok := strings.Cut(rest, ".")
	if !ok {
		return ev.GetType(), cmp.Or(ev.GetCustomerId(), TenantResource)
	}
	typ = ev.GetType()[:len(producer)+1+len(resource)]
	if payload != nil {
		id = payloadID(payload, resource)
	}
	return typ, cmp.Or(id, ev.GetCustomerId(), TenantResource)
}

// payloadID is the id of resource in payload, "" when it names none.
func payloadID(payload protoreflect.Message, resource string) string {
	fields := payload.Descriptor().Fields()
	// The resource's name, then its last words: "webhook_endpoint", "endpoint".
	for name, whole := resource, true; name != ""; whole = false {
		if id := stringField(payload, name+"_id"); id != "" {
			return id
		}
		if !whole {
			if id := stringField(payload, name); id != "" {
				return id
			}
		}
		if f := fields.ByName(protoreflect.Name(name)); f != nil && f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && payload.Has(f) {
			inner := payload.Get(f).Message()
			if id := cmp.Or(stringField(inner, "id"), stringField(inner, name+"_id")); id != "" {
				return id
			}
		}
		_, name, _ = strings.Cut(name, "_")
	}
	if id := stringField(payload, "id"); id != "" {
		return id
	}
	// A long-running operation's name, "operations/<service>.<id>": its id as GET names it.
	if name := stringField(payload, "name"); strings.HasPrefix(name, "operations/") {
		return strings.TrimPrefix(name, "operations/")
	}
	// A rating or response (an NPS response's "response_id"), or one about another resource (a
	// CSAT rating's "ticket" with its "ticket_id").
	if id := firstID(payload); id != "" {
		return id
	}
	for i := range fields.Len() {
		if f := fields.Get(i); f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && payload.Has(f) {
			if id := stringField(payload.Get(f).Message(), string(f.Name())+"_id"); id != "" {
				return id
			}
		}
	}
	return ""
}

// stringField is m's string field name, "" when it has none.
func stringField(m protoreflect.Message, name string) string {
	if f := m.Descriptor().Fields().ByName(protoreflect.Name(name)); f != nil && f.Kind() == protoreflect.StringKind && !f.IsList() && !f.IsMap() {
		return m.Get(f).String()
	}
	return ""
}

// firstID is m's first set string field "<x>_id" that names neither a customer (the customer is
// the fallback, not the resource) nor an event (the cause of a change, not its resource).
func firstID(m protoreflect.Message) string {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Kind() == protoreflect.StringKind && !f.IsList() && !f.IsMap() && strings.HasSuffix(string(f.Name()), "_id") &&
			!strings.HasSuffix(string(f.Name()), "customer_id") && !strings.HasSuffix(string(f.Name()), "event_id") {
			if id := m.Get(f).String(); id != "" {
				return id
			}
		}
	}
	return ""
}

// factFields are the payload fields a summary may quote: states, stages, scores and counts, never
// free text or anything that names or reaches a person; and an export's filter and format
// (eventv1.Exported; the filter quoted), the caller's own query: an auditor must see what was read.
var factFields = []protoreflect.Name{
	"status", "stage", "from", "to", "to_stage", "from_stage", "priority", "score", "tier", "points", "reason_code",
	"channel", "band", "health", "quantity", "feature", "automatic", "created", "filter", "format",
}

// summaryOf is a one-line summary of the event, for example "Opportunity won (opportunity
// 0190..., stage CLOSED_WON)", from the type and the payload's facts (top level and the embedded
// resource).
func summaryOf(ev *eventv1.Event, payload protoreflect.Message, resourceID string) string {
	parts := strings.Split(ev.GetType(), ".")
	if len(parts) < 3 {
		return ev.GetType()
	}
	resource := strings.ReplaceAll(parts[1], "_", " ")
	what := strings.ReplaceAll(parts[2], "_", " ")
	var b strings.Builder
	b.WriteString(strings.ToUpper(resource[:1]) + resource[1:] + " " + what)
	var facts []string
	if resourceID != "" && resourceID != ev.GetCustomerId() && resourceID != TenantResource {
		facts = append(facts, resource+" "+resourceID)
	}
	if payload != nil {
		facts = append(facts, factsOf(payload)...)
		// The embedded resource (an opportunity) or the change's record (a lifecycle's move, a
		// loyalty ledger entry) holds the facts of many events: one level down, in field order.
		fields := payload.Descriptor().Fields()
		for i := range fields.Len() {
			f := fields.Get(i)
			if f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && payload.Has(f) &&
				!strings.HasPrefix(string(f.Message().FullName()), "google.") {
				facts = append(facts, factsOf(payload.Get(f).Message())...)
			}
		}
	}
	if len(facts) > 0 {
		b.WriteString(" (" + strings.Join(facts, ", ") + ")")
	}
	return b.String()
}

func factsOf(m protoreflect.Message) []string {
	var out []string
	fields := m.Descriptor().Fields()
	for _, name := range factFields {
		f := fields.ByName(name)
		if f == nil || f.IsList() || f.IsMap() || !m.Has(f) {
			continue
		}
		v := m.Get(f)
		switch f.Kind() {
		case protoreflect.EnumKind:
			if ev := f.Enum().Values().ByNumber(v.Enum()); ev != nil {
				out = append(out, fmt.Sprintf("%s %s", name, ev.Name()))
			}
		case protoreflect.StringKind:
			if name == "filter" {
				out = append(out, fmt.Sprintf("filter %q", v.String()))
			} else {
				out = append(out, fmt.Sprintf("%s %v", name, v.Interface()))
			}
		case protoreflect.BoolKind, protoreflect.Int32Kind, protoreflect.Int64Kind,
			protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.DoubleKind, protoreflect.FloatKind:
			out = append(out, fmt.Sprintf("%s %v", name, v.Interface()))
		}
	}
	return out
}

// actorKey is how the audit log names an actor in its filter and index: the API key id, or
// "event:<id>", "sweep:<name>", "operator:<tool>".
func actorKey(a *eventv1.Actor) string {
	switch k := a.GetKind().(type) {
	case *eventv1.Actor_ApiKeyId:
		return k.ApiKeyId
	case *eventv1.Actor_EventId:
		return "event:" + k.EventId
	case *eventv1.Actor_Sweep:
		return "sweep:" + k.Sweep
	case *eventv1.Actor_Operator:
		return "operator:" + k.Operator
	}
	return "unknown"
}
