// Package rpc is the integration service's gRPC adapter. The tenant always comes from the
// authenticated caller.
package rpc

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/filter"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	"github.com/crmcycle/crm/pkg/pagetoken"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration"
)

// UseCases are what the adapter exposes.
type UseCases struct {
	History   *integration.History
	Endpoints *integration.Endpoints
	ApiKeys   *integration.ApiKeys
	Settings  *integration.Settings
}

// Server implements integrationv1.IntegrationServiceServer.
type Server struct {
	integrationv1.UnimplementedIntegrationServiceServer
	uc     UseCases
	tokens *pagetoken.Codec
}

// New returns the adapter.
func New(uc UseCases, tokens *pagetoken.Codec) *Server { return &Server{uc: uc, tokens: tokens} }

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	integrationv1.RegisterIntegrationServiceServer(r, s)
}

func (s *Server) pageOf(tenant, method, filter, token string, size int32) (pagetoken.List, page.Request, error) {
	l := s.tokens.List(tenant, method, filter)
	after, err := l.Cursor(token)
	return l, page.Request{Limit: pagesize.Of(size), After: after}, err
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func apiKeyOf(k auth.KeyInfo) *integrationv1.ApiKey {
	return &integrationv1.ApiKey{
		Id: k.ID, DisplayName: k.DisplayName, Scopes: k.Scopes, ExpireTime: ts(k.ExpireTime),
		CreateTime: ts(k.CreateTime), LastUsedTime: ts(k.LastUsedTime), RevokeTime: ts(k.RevokeTime),
		PreviousSecretExpireTime: ts(k.PreviousSecretExpireTime), CreatorKeyId: k.CreatorKeyID,
	}
}

// ListAuditEntries implements the RPC.
func (s *Server) ListAuditEntries(ctx context.Context, req *integrationv1.ListAuditEntriesRequest) (*integrationv1.ListAuditEntriesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	q, err := integration.ParseAuditFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	l, pr, err := s.pageOf(tenant, "ListAuditEntries", req.GetFilter(), req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	p, err := s.uc.History.Audit(ctx, tenant, q, pr)
	if err != nil {
		return nil, err
	}
	return &integrationv1.ListAuditEntriesResponse{AuditEntries: p.Items, NextPageToken: l.Token(p.Next)}, nil
}

// ListTimeline implements the RPC.
func (s *Server) ListTimeline(ctx context.Context, req *integrationv1.ListTimelineRequest) (*integrationv1.ListTimelineResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	l, pr, err := s.pageOf(tenant, "ListTimeline", req.GetCustomerId(), req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	p, err := s.uc.History.Timeline(ctx, tenant, req.GetCustomerId(), pr)
	if err != nil {
		return nil, err
	}
	return &integrationv1.ListTimelineResponse{TimelineEntries: p.Items, NextPageToken: l.Token(p.Next)}, nil
}

// CreateApiKey implements the RPC.
func (s *Server) CreateApiKey(ctx context.Context, req *integrationv1.CreateApiKeyRequest) (*integrationv1.CreateApiKeyResponse, error) {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return nil, auth.ErrUnauthenticated
	}
	k, secret, err := s.uc.ApiKeys.Create(ctx, caller, req.GetApiKey())
	if err != nil {
		return nil, err
	}
	return &integrationv1.CreateApiKeyResponse{ApiKey: apiKeyOf(k), Secret: secret}, nil
}

// ListApiKeys implements the RPC.
func (s *Server) ListApiKeys(ctx context.Context, req *integrationv1.ListApiKeysRequest) (*integrationv1.ListApiKeysResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	l, pr, err := s.pageOf(tenant, "ListApiKeys", "", req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	keys, next, err := s.uc.ApiKeys.List(ctx, tenant, pr.After, pr.Limit)
	if err != nil {
		return nil, err
	}
	out := &integrationv1.ListApiKeysResponse{NextPageToken: l.Token(next)}
	for _, k := range keys {
		out.ApiKeys = append(out.ApiKeys, apiKeyOf(k))
	}
	return out, nil
}

// RevokeApiKey implements the RPC.
func (s *Server) RevokeApiKey(ctx context.Context, req *integrationv1.RevokeApiKeyRequest) (*integrationv1.RevokeApiKeyResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.uc.ApiKeys.Revoke(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &integrationv1.RevokeApiKeyResponse{ApiKey: apiKeyOf(k)}, nil
}

// RotateApiKey implements the RPC.
func (s *Server) RotateApiKey(ctx context.Context, req *integrationv1.RotateApiKeyRequest) (*integrationv1.RotateApiKeyResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	k, secret, err := s.uc.ApiKeys.Rotate(ctx, tenant, req.GetId(), time.Duration(req.GetOverlapSeconds())*time.Second)
	if err != nil {
		return nil, err
	}
	return &integrationv1.RotateApiKeyResponse{ApiKey: apiKeyOf(k), Secret: secret}, nil
}

// principal is the authenticated caller, whose scopes an endpoint's filter is checked against.
func principal(ctx context.Context) (auth.Principal, error) {
	if _, err := auth.TenantID(ctx); err != nil {
		return auth.Principal{}, err
	}
	p, _ := auth.FromContext(ctx)
	return p, nil
}

// CreateWebhookEndpoint implements the RPC.
func (s *Server) CreateWebhookEndpoint(ctx context.Context, req *integrationv1.CreateWebhookEndpointRequest) (*integrationv1.CreateWebhookEndpointResponse, error) {
	caller, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := s.uc.Endpoints.Create(ctx, caller, req.GetWebhookEndpoint())
	if err != nil {
		return nil, err
	}
	return &integrationv1.CreateWebhookEndpointResponse{WebhookEndpoint: ep}, nil
}

// GetWebhookEndpoint implements the RPC.
func (s *Server) GetWebhookEndpoint(ctx context.Context, req *integrationv1.GetWebhookEndpointRequest) (*integrationv1.GetWebhookEndpointResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := s.uc.Endpoints.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &integrationv1.GetWebhookEndpointResponse{WebhookEndpoint: ep}, nil
}

// ListWebhookEndpoints implements the RPC.
func (s *Server) ListWebhookEndpoints(ctx context.Context, req *integrationv1.ListWebhookEndpointsRequest) (*integrationv1.ListWebhookEndpointsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	l, pr, err := s.pageOf(tenant, "ListWebhookEndpoints", "", req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	p, err := s.uc.Endpoints.List(ctx, tenant, pr)
	if err != nil {
		return nil, err
	}
	return &integrationv1.ListWebhookEndpointsResponse{WebhookEndpoints: p.Items, NextPageToken: l.Token(p.Next)}, nil
}

// UpdateWebhookEndpoint implements the RPC.
func (s *Server) UpdateWebhookEndpoint(ctx context.Context, req *integrationv1.UpdateWebhookEndpointRequest) (*integrationv1.UpdateWebhookEndpointResponse, error) {
	caller, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := s.uc.Endpoints.Update(ctx, caller, req.GetWebhookEndpoint(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &integrationv1.UpdateWebhookEndpointResponse{WebhookEndpoint: ep}, nil
}

// DeleteWebhookEndpoint implements the RPC.
func (s *Server) DeleteWebhookEndpoint(ctx context.Context, req *integrationv1.DeleteWebhookEndpointRequest) (*integrationv1.DeleteWebhookEndpointResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	return &integrationv1.DeleteWebhookEndpointResponse{}, s.uc.Endpoints.Delete(ctx, tenant, req.GetId(), req.GetEtag())
}

// RotateWebhookSecret implements the RPC.
func (s *Server) RotateWebhookSecret(ctx context.Context, req *integrationv1.RotateWebhookSecretRequest) (*integrationv1.RotateWebhookSecretResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := s.uc.Endpoints.RotateSecret(ctx, tenant, req.GetId(), time.Duration(req.GetOverlapSeconds())*time.Second, req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &integrationv1.RotateWebhookSecretResponse{WebhookEndpoint: ep}, nil
}

// TestWebhookEndpoint implements the RPC.
func (s *Server) TestWebhookEndpoint(ctx context.Context, req *integrationv1.TestWebhookEndpointRequest) (*integrationv1.TestWebhookEndpointResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Endpoints.Test(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &integrationv1.TestWebhookEndpointResponse{Attempt: a}, nil
}

var deliveryList = filter.List{Fields: []filter.Field{{Name: "state", Ops: []filter.Operator{filter.Equal}}}}

// ListDeliveries implements the RPC.
func (s *Server) ListDeliveries(ctx context.Context, req *integrationv1.ListDeliveriesRequest) (*integrationv1.ListDeliveriesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	terms, err := deliveryList.Parse(req.GetFilter())
	if err != nil {
		return nil, err
	}
	state := integrationv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED
	if len(terms) == 1 {
		v, err := terms[0].Enum(integrationv1.DeliveryState_value)
		if err != nil {
			return nil, err
		}
		state = integrationv1.DeliveryState(v)
	}
	l, pr, err := s.pageOf(tenant, "ListDeliveries", req.GetEndpointId()+" "+req.GetFilter(), req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	p, err := s.uc.Endpoints.ListDeliveries(ctx, tenant, req.GetEndpointId(), state, pr)
	if err != nil {
		return nil, err
	}
	return &integrationv1.ListDeliveriesResponse{Deliveries: p.Items, NextPageToken: l.Token(p.Next)}, nil
}

// RetryDelivery implements the RPC.
func (s *Server) RetryDelivery(ctx context.Context, req *integrationv1.RetryDeliveryRequest) (*integrationv1.RetryDeliveryResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.uc.Endpoints.RetryDelivery(ctx, tenant, req.GetEndpointId(), req.GetId())
	if err != nil {
		return nil, err
	}
	return &integrationv1.RetryDeliveryResponse{Delivery: d}, nil
}

// GetIntegrationSettings implements the RPC.
func (s *Server) GetIntegrationSettings(ctx context.Context, _ *integrationv1.GetIntegrationSettingsRequest) (*integrationv1.GetIntegrationSettingsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.uc.Settings.Get(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return &integrationv1.GetIntegrationSettingsResponse{Settings: st}, nil
}

// UpdateIntegrationSettings implements the RPC.
func (s *Server) UpdateIntegrationSettings(ctx context.Context, req *integrationv1.UpdateIntegrationSettingsRequest) (*integrationv1.UpdateIntegrationSettingsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.uc.Settings.Update(ctx, tenant, req.GetSettings(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &integrationv1.UpdateIntegrationSettingsResponse{Settings: st}, nil
}
