package integration

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

// declaredType is one event type a service declares in its proto package's events.go.
type declaredType struct {
	name    string                // "integration.webhook_endpoint.created"
	payload protoreflect.FullName // "crm.integration.v1.WebhookEndpointChanged"
}

// declaredTypes reads every eventv1.Type declaration of the proto packages: the platform's list
// of event types has no runtime registry, so the declarations are the source of truth.
func declaredTypes(t *testing.T) []declaredType {
	t.Helper()
	files, err := filepath.Glob("../../proto/crm/*/v1/events.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no events.go found: %v", err)
	}
	var out []declaredType
	for _, file := range files {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		pkg := "crm." + filepath.Base(filepath.Dir(filepath.Dir(file))) + ".v1."
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			idx, ok := lit.Type.(*ast.IndexExpr)
			if !ok || len(lit.Elts) != 1 {
				return true
			}
			var payload string
			switch p := idx.Index.(*ast.StarExpr).X.(type) {
			case *ast.Ident:
				payload = pkg + p.Name
			case *ast.SelectorExpr: // eventv1.Exported
				payload = "crm.event.v1." + p.Sel.Name
			}
			name, err := strconv.Unquote(lit.Elts[0].(*ast.KeyValueExpr).Value.(*ast.BasicLit).Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, declaredType{name: name, payload: protoreflect.FullName(payload)})
			return true
		})
	}
	return out
}

// sample fills every string field of m, nested messages included, with a value of its own.
func sample(m protoreflect.Message, prefix string) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.IsList() || f.IsMap() || f.ContainingOneof() != nil && i > 0 && m.WhichOneof(f.ContainingOneof()) != nil {
			continue
		}
		switch f.Kind() {
		case protoreflect.StringKind:
			v := prefix + string(f.Name()) + "-value"
			if f.Name() == "name" { // an operation's name, as OperationCancelled carries it
				v = "operations/svc." + v
			}
			m.Set(f, protoreflect.ValueOfString(v))
		case protoreflect.MessageKind:
			if !strings.HasPrefix(string(f.Message().FullName()), "google.") {
				sample(m.Mutable(f).Message(), prefix+string(f.Name())+".")
			}
		}
	}
}

// tenantWide are the event types about what the tenant has one of, or about all of a resource
// (an export): their events name no customer, and their resource id is TenantResource.
var tenantWide = map[string]bool{
	"integration.settings.updated": true, "marketing.loyalty_program.updated": true,
	"marketing.scoring_rules.updated": true, "marketing.lifecycle_settings.updated": true,
	"support.sla_policy.updated": true, "support.settings.updated": true,
	"marketing.lead.exported": true, "product.product.exported": true, "sales.account.exported": true,
	"sales.contact.exported": true, "sales.order.exported": true, "support.ticket.exported": true,
}

// customerWide are the event types whose resource is the customer's own (one lifecycle, one
// loyalty account, one value per customer): their resource id is the event's customer.
var customerWide = map[string]bool{
	"marketing.customer.merged": true, "marketing.lifecycle.stage_changed": true,
	"marketing.lifecycle.at_risk_changed": true, "marketing.loyalty.points_credited": true,
	"marketing.loyalty.points_redeemed": true, "marketing.loyalty.tier_changed": true,
	"product.adoption.changed": true, "sales.customer.value_changed": true,
}

// Every event type a service declares names its resource's id: from its payload, else (listed
// above) the customer's or the tenant's. An id left empty indexed the entry under "<type>/", where
// no resource filter finds it (webhook endpoints and settings did).
func TestEveryEventTypeNamesItsResource(t *testing.T) {
	types := declaredTypes(t)
	if len(types) < 80 {
		t.Fatalf("read %d declared event types; the events.go files moved?", len(types))
	}
	seen := map[string]bool{}
	for _, d := range types {
		seen[d.name] = true
		mt, err := protoregistry.GlobalTypes.FindMessageByName(d.payload)
		if err != nil {
			t.Errorf("%s: payload %s not registered: %v", d.name, d.payload, err)
			continue
		}
		payload := mt.New()
		sample(payload, "")
		ev := &eventv1.Event{Type: d.name, CustomerId: "customer-1", OccurredTime: timestamppb.Now()}
		if tenantWide[d.name] {
			ev.CustomerId = ""
		}
		_, id := resourceOf(ev, payload)
		switch {
		case tenantWide[d.name]:
			if id != TenantResource {
				t.Errorf("%s: resource id %q, want %q", d.name, id, TenantResource)
			}
		case customerWide[d.name]:
			if id != "customer-1" {
				t.Errorf("%s: resource id %q, want the customer's", d.name, id)
			}
		case !strings.HasSuffix(id, "-value"):
			t.Errorf("%s: resource id %q, not one of its payload (%s)", d.name, id, d.payload)
		}
	}
	for name := range tenantWide {
		if !seen[name] {
			t.Errorf("%s is listed but not declared", name)
		}
	}
	for name := range customerWide {
		if !seen[name] {
			t.Errorf("%s is listed but not declared", name)
		}
	}
	// The audit's finding: a webhook endpoint's events name the endpoint.
	ev := &eventv1.Event{Type: "integration.webhook_endpoint.updated"}
	payload := (&integrationv1.WebhookEndpointChanged{EndpointId: "ep-1"}).ProtoReflect()
	if typ, id := resourceOf(ev, payload); typ != "integration.webhook_endpoint" || id != "ep-1" {
		t.Errorf("webhook endpoint: %s/%s, want integration.webhook_endpoint/ep-1", typ, id)
	}
}
