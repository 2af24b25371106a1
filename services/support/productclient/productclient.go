// Package productclient answers support's entitlement questions by asking the product service
// over gRPC (CheckEntitlement), on the process's shared, traced connection with a deadline.
package productclient

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/apierr"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/support"
)

// Entitlements implements support.Entitlements.
type Entitlements struct {
	// dial returns the connection to the product service; it fails when the process knows no
	// address for it, which makes every check UNAVAILABLE rather than the process unable to start.
	dial func() (*grpc.ClientConn, error)
}

var _ support.Entitlements = (*Entitlements)(nil)

// New returns the client; dial is called on each check (the pool behind it keeps one connection).
func New(dial func() (*grpc.ClientConn, error)) *Entitlements { return &Entitlements{dial: dial} }

var errProductScope = apierr.New(apierr.PermissionDenied, "PRODUCT_SCOPE_REQUIRED",
	"checking the entitlement needs the caller's key to be allowed to call the product service")

// Check implements support.Entitlements.
func (e *Entitlements) Check(ctx context.Context, customer, product string) (string, error) {
	conn, err := e.dial()
	if err != nil {
		return "", support.ErrProductUnavailable.Wrap(err)
	}
	resp, err := productv1.NewProductServiceClient(conn).CheckEntitlement(ctx,
		&productv1.CheckEntitlementRequest{CustomerId: customer, ProductId: product})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		return "", support.ErrNotEntitled.With("reason", "PRODUCT_NOT_FOUND")
	case codes.PermissionDenied:
		return "", errProductScope.Wrap(err)
	default:
		// Down, overloaded, timed out or refusing: the ticket cannot be checked, so it is not opened.
		return "", support.ErrProductUnavailable.Wrap(err)
	}
	if !resp.GetEntitled() {
		return "", support.ErrNotEntitled.With("reason", resp.GetReason())
	}
	return resp.GetGrantId(), nil
}
