package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// CreateProduct implements productv1.ProductServiceServer.
func (s *Server) CreateProduct(ctx context.Context, req *productv1.CreateProductRequest) (*productv1.CreateProductResponse, error) {
	return call(ctx, func(tenant string) (*productv1.CreateProductResponse, error) {
		p, err := s.catalog.Create(ctx, tenant, req.GetProduct())
		return &productv1.CreateProductResponse{Product: p}, err
	})
}

// GetProduct implements productv1.ProductServiceServer.
func (s *Server) GetProduct(ctx context.Context, req *productv1.GetProductRequest) (*productv1.GetProductResponse, error) {
	return call(ctx, func(tenant string) (*productv1.GetProductResponse, error) {
		p, err := s.catalog.Get(ctx, tenant, req.GetId())
		return &productv1.GetProductResponse{Product: p}, err
	})
}

// ListProducts implements productv1.ProductServiceServer.
func (s *Server) ListProducts(ctx context.Context, req *productv1.ListProductsRequest) (*productv1.ListProductsResponse, error) {
	return call(ctx, func(tenant string) (*productv1.ListProductsResponse, error) {
		index, err := product.ParseProductFilter(req.GetFilter())
		if err != nil {
			return nil, err
		}
		list := s.list(tenant, "ListProducts", req.GetFilter())
		q := product.ProductQuery{Index: index, Request: page.Request{Limit: pagesize.Of(req.GetPageSize())}}
		if q.After, err = list.Cursor(req.GetPageToken()); err != nil {
			return nil, err
		}
		products, err := s.catalog.List(ctx, tenant, q)
		return &productv1.ListProductsResponse{Products: products.Items, NextPageToken: list.Token(products.Next)}, err
	})
}

// UpdateProduct implements productv1.ProductServiceServer.
func (s *Server) UpdateProduct(ctx context.Context, req *productv1.UpdateProductRequest) (*productv1.UpdateProductResponse, error) {
	return call(ctx, func(tenant string) (*productv1.UpdateProductResponse, error) {
		p, err := s.catalog.Update(ctx, tenant, req.GetProduct(), req.GetUpdateMask())
		return &productv1.UpdateProductResponse{Product: p}, err
	})
}

// ArchiveProduct implements productv1.ProductServiceServer.
func (s *Server) ArchiveProduct(ctx context.Context, req *productv1.ArchiveProductRequest) (*productv1.ArchiveProductResponse, error) {
	return call(ctx, func(tenant string) (*productv1.ArchiveProductResponse, error) {
		p, err := s.catalog.Archive(ctx, tenant, req.GetId(), req.GetEtag())
		return &productv1.ArchiveProductResponse{Product: p}, err
	})
}

// QuoteLineItems implements productv1.ProductServiceServer.
func (s *Server) QuoteLineItems(ctx context.Context, req *productv1.QuoteLineItemsRequest) (*productv1.QuoteLineItemsResponse, error) {
	return call(ctx, func(tenant string) (*productv1.QuoteLineItemsResponse, error) {
		return s.catalog.Quote(ctx, tenant, req.GetCurrencyCode(), req.GetItems())
	})
}
