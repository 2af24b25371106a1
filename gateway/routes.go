package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// routeTable is what the edge knows of every route, read from the OpenAPI document it serves (so
// a route added to the protos gets the conventions with no list to update): the methods of each
// path, the query parameters each operation accepts, and where If-Match applies.
type routeTable struct {
	paths []*routePath
}

type routePath struct {
	template string
	segments []string // "v1", "leads", "{id}"; the last may carry a custom verb: "{id}:qualify"
	ops      map[string]*routeOp
}

type routeOp struct {
	// query holds the accepted query parameter names, in JSON and proto (snake_case) form.
	query map[string]bool
	// intBits is the size of the integer query parameters (32 or 64), by either name.
	intBits map[string]int
	// ifMatch: the operation changes a resource with an etag (the document declares If-Match).
	ifMatch bool
	// etagBody / etagQuery: the request carries the etag itself, in the body or as ?etag=.
	etagBody, etagQuery bool
	// readOnly are the body's output-only properties (JSON and proto names), which a PATCH body may carry
	// back as read and its implied update mask leaves out (AIP-203).
	readOnly map[string]bool
	// bodyFields are the body schema's properties (JSON and proto names). A PATCH body read whole
	// also carries what the path binds (the id), which the document leaves out of the body and an
	// implied update mask must too: the path wins.
	bodyFields map[string]bool
	// bodyTypes are the media types of the body the operation takes (none when it takes none).
	bodyTypes []string
	// domain is the ErrorInfo domain of the service behind the route ("marketing.crm"), which
	// the errors the edge answers for it carry, as the service's own do.
	domain string
}

// newRouteTable reads the routes of an OpenAPI document.
func newRouteTable(doc []byte) (*routeTable, error) {
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("gateway: openapi routes: %w", err)
	}
	t := &routeTable{}
	for template, item := range d.Paths {
		p := &routePath{template: template, segments: strings.Split(strings.TrimPrefix(template, "/"), "/"), ops: map[string]*routeOp{}}
		for method, raw := range item {
			var op struct {
				OperationID string `json:"operationId"`
				Parameters  []struct {
					Ref    string `json:"$ref"`
					Name   string `json:"name"`
					In     string `json:"in"`
					Schema struct {
						Type   string `json:"type"`
						Format string `json:"format"`
					} `json:"schema"`
				} `json:"parameters"`
				RequestBody struct {
					Content map[string]struct {
						Schema struct {
							Ref string `json:"$ref"`
						} `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				continue // not an operation (a path-level field)
			}
			o := &routeOp{query: map[string]bool{}, intBits: map[string]int{}, domain: serviceDomain(op.OperationID)}
			for _, prm := range op.Parameters {
				switch {
				case prm.Ref == "#/components/parameters/IfMatch":
					o.ifMatch = true
				case prm.In == "query":
					o.query[prm.Name], o.query[snakeCase(prm.Name)] = true, true
					if bits := map[string]int{"int32": 32, "int64": 64}[prm.Schema.Format]; prm.Schema.Type == "integer" && bits > 0 {
						o.intBits[prm.Name], o.intBits[snakeCase(prm.Name)] = bits, bits
					}
					o.etagQuery = o.etagQuery || prm.Name == "etag"
				}
			}
			for mediaType := range op.RequestBody.Content {
				o.bodyTypes = append(o.bodyTypes, mediaType)
			}
			slices.Sort(o.bodyTypes)
			if ref := op.RequestBody.Content["application/json"].Schema.Ref; ref != "" {
				props := d.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")].Properties
				_, o.etagBody = props["etag"]
				o.readOnly = readOnlyProperties(props)
				o.bodyFields = map[string]bool{}
				for name := range props {
					o.bodyFields[name], o.bodyFields[snakeCase(name)] = true, true
				}
			}
			p.ops[strings.ToUpper(method)] = o
		}
		t.paths = append(t.paths, p)
	}
	return t, nil
}

// match finds the operations a request path can reach: the paths with a custom verb that the
// path ends with come first (as in grpc-gateway), else the plain ones. It returns the matching
// path (nil when none) and the path's parameter values by segment position.
func (t *routeTable) match(path string) *routePath {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var plain *routePath
	for _, p := range t.paths {
		if !p.matches(segs) {
			continue
		}
		if p.verb() != "" {
			return p
		}
		plain = p
	}
	return plain
}

// routeMatch is what the route table says of a request path, looked up once per request.
type routeMatch struct {
	route *routePath // the path's match, nil for none
	// lacking is the resource the path asks for a custom method (verb) it does not have
	// (/v1/leads/{id}:frobnicate), nil otherwise.
	lacking *routePath
	verb    string
}

func (t *routeTable) lookup(path string) routeMatch {
	m := routeMatch{route: t.match(path)}
	m.lacking, m.verb = t.unknownVerb(m.route, path)
	return m
}

// named is the route the path names: its match, unless it asks its resource for a custom method
// it lacks (/v1/leads/{id}:frobnicate is no route, not /v1/leads/{id}).
func (m routeMatch) named() *routePath {
	if m.lacking != nil {
		return nil
	}
	return m.route
}

func (p *routePath) verb() string {
	last := p.segments[len(p.segments)-1]
	if i := strings.LastIndex(last, ":"); i > strings.LastIndex(last, "}") {
		return last[i+1:]
	}
	return ""
}

func (p *routePath) matches(segs []string) bool {
	if len(segs) != len(p.segments) {
		return false
	}
	for i, tmpl := range p.segments {
		got := segs[i]
		if verb := ""; i == len(segs)-1 && p.verb() != "" {
			verb = ":" + p.verb()
			if !strings.HasSuffix(got, verb) {
				return false
			}
			got, tmpl = strings.TrimSuffix(got, verb), strings.TrimSuffix(tmpl, verb)
		}
		if strings.HasPrefix(tmpl, "{") {
			if got == "" {
				return false
			}
			continue
		}
		if got != tmpl {
			return false
		}
	}
	return true
}

// unknownVerb finds a request for a custom method its resource does not have
// (/v1/leads/{id}:frobnicate): the resource's path and the method, nil when the path asks for no
// method, one that exists (matched), or names no resource. No id holds a colon, so a colon in the
// last segment names a method: the request is not read as one for a lead "x:frobnicate".
func (t *routeTable) unknownVerb(matched *routePath, path string) (*routePath, string) {
	base := resourcePath(path)
	if base == path || base == path[:len(path)-1] || (matched != nil && matched.verb() != "") {
		return nil, ""
	}
	return t.match(base), path[len(base)+1:]
}

// verbsOf lists the custom methods of a resource path, for an unknown one's message. Its
// variables may be named otherwise in them (/v1/leads/{leadId}:convert, /v1/leads/{id}:qualify).
func (t *routeTable) verbsOf(template string) string {
	var verbs []string
	for _, p := range t.paths {
		if v := p.verb(); v != "" && blankVars(strings.TrimSuffix(p.template, ":"+v)) == blankVars(template) {
			verbs = append(verbs, ":"+v)
		}
	}
	if len(verbs) == 0 {
		return "; it has no custom methods"
	}
	slices.Sort(verbs)
	return "; its methods: " + strings.Join(slices.Compact(verbs), ", ")
}

// blankVars blanks a template's variable names: /v1/leads/{id} → /v1/leads/{}.
func blankVars(template string) string {
	segs := strings.Split(template, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// allow is the Allow header of a path: its methods, and OPTIONS.
func (p *routePath) allow() string {
	methods := []string{http.MethodOptions}
	for m := range p.ops {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	return strings.Join(slices.Compact(methods), ", ")
}

// param names the template parameter at segment i, for error details ("id").
func (p *routePath) param(i int) string {
	if i >= len(p.segments) {
		return "path"
	}
	s := p.segments[i]
	if start, end := strings.Index(s, "{"), strings.Index(s, "}"); start >= 0 && end > start {
		return s[start+1 : end]
	}
	return "path"
}

// resource is the path of the resource a custom method acts on: the path less its verb.
func resourcePath(path string) string {
	last := strings.LastIndex(path, "/")
	if i := strings.LastIndex(path, ":"); i > last {
		return path[:i]
	}
	return path
}

// serviceDomain is the ErrorInfo domain of the service an operation id names, as the services'
// errors carry it: MarketingService_QualifyLead → marketing.crm.
func serviceDomain(operationID string) string {
	service, _, _ := strings.Cut(operationID, "_")
	if name, ok := strings.CutSuffix(service, "Service"); ok && name != "" {
		return strings.ToLower(name) + ".crm"
	}
	return "gateway.crm"
}

// snakeCase turns a JSON name into its proto name: pageSize → page_size.
func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// camelPath turns a field path of proto names into the request's JSON names:
// settings.business_hours.days[0] → settings.businessHours.days[0]. Header names stay.
func camelPath(path string) string {
	if strings.Contains(path, "-") {
		return path
	}
	parts := strings.Split(path, ".")
	for i, p := range parts {
		var b strings.Builder
		up := false
		for _, r := range p {
			switch {
			case r == '_':
				up = true
				continue
			case up && r >= 'a' && r <= 'z':
				r -= 'a' - 'A'
			}
			up = false
			b.WriteRune(r)
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, ".")
}

// readOnlyProperties are the properties of a schema marked readOnly (output only).
func readOnlyProperties(props map[string]json.RawMessage) map[string]bool {
	out := map[string]bool{}
	for name, raw := range props {
		var p struct {
			ReadOnly bool `json:"readOnly"`
		}
		if json.Unmarshal(raw, &p) == nil && p.ReadOnly {
			out[name], out[snakeCase(name)] = true, true // a body may use either name
		}
	}
	return out
}
