package rpc

import (
	"context"
	"strings"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	"github.com/crmcycle/crm/pkg/pagetoken"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// CreateSegment implements marketingv1.MarketingServiceServer.
func (s *Server) CreateSegment(ctx context.Context, req *marketingv1.CreateSegmentRequest) (*marketingv1.CreateSegmentResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	seg, err := s.segments.Create(ctx, tenant, req.GetSegment())
	if err != nil {
		return nil, err
	}
	return &marketingv1.CreateSegmentResponse{Segment: seg}, nil
}

// GetSegment implements marketingv1.MarketingServiceServer.
func (s *Server) GetSegment(ctx context.Context, req *marketingv1.GetSegmentRequest) (*marketingv1.GetSegmentResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	seg, err := s.segments.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetSegmentResponse{Segment: seg}, nil
}

// ListSegments implements marketingv1.MarketingServiceServer.
func (s *Server) ListSegments(ctx context.Context, req *marketingv1.ListSegmentsRequest) (*marketingv1.ListSegmentsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListSegments", "")
	after, err := list.Cursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	segs, err := s.segments.List(ctx, tenant, page.Request{After: after, Limit: pagesize.Of(req.GetPageSize())})
	if err != nil {
		return nil, err
	}
	return &marketingv1.ListSegmentsResponse{Segments: segs.Items, NextPageToken: list.Token(segs.Next)}, nil
}

// DeleteSegment implements marketingv1.MarketingServiceServer.
func (s *Server) DeleteSegment(ctx context.Context, req *marketingv1.DeleteSegmentRequest) (*marketingv1.DeleteSegmentResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.segments.Delete(ctx, tenant, req.GetId(), req.GetEtag()); err != nil {
		return nil, err
	}
	return &marketingv1.DeleteSegmentResponse{}, nil
}

// ListSegmentMembers implements marketingv1.MarketingServiceServer. The page token carries the
// driving index with the last member examined, signed and bound to the segment.
func (s *Server) ListSegmentMembers(ctx context.Context, req *marketingv1.ListSegmentMembersRequest) (*marketingv1.ListSegmentMembersResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListSegmentMembers", req.GetId())
	raw, err := list.Cursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var cursor *marketing.MemberCursor
	if raw != "" {
		parts := strings.SplitN(raw, "\x00", 3)
		if len(parts) != 3 {
			return nil, pagetoken.ErrInvalid
		}
		cursor = &marketing.MemberCursor{Driver: marketing.Driver{Kind: marketing.DriverKind(parts[0]), Value: parts[1]}, After: parts[2]}
	}
	leads, next, err := s.segments.Members(ctx, tenant, req.GetId(), cursor, pagesize.Of(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	token := ""
	if next != nil {
		token = list.Token(string(next.Driver.Kind) + "\x00" + next.Driver.Value + "\x00" + next.After)
	}
	return &marketingv1.ListSegmentMembersResponse{Leads: leads, NextPageToken: token}, nil
}
