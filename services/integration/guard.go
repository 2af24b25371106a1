package integration

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrPrivateAddress is a webhook target on a loopback, private, link-local or otherwise
// non-public address while the operator does not allow them.
var ErrPrivateAddress = errors.New("the address is loopback, private or link-local")

// publicAddress reports whether ip may be reached from a multi-tenant service: not loopback,
// private (RFC 1918, ULA), link-local (cloud metadata at 169.254.169.254), unspecified, multicast
// or shared (100.64/10).
func publicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() &&
		!ip.IsLinkLocalMulticast() && !ip.IsUnspecified() && !ip.IsMulticast() && !ip.IsInterfaceLocalMulticast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && !netip.MustParsePrefix("0.0.0.0/8").Contains(ip)
}

// NewHTTPClient is the webhook sender's client: no redirects followed (a 3xx is an answer like any
// other), a timeout per attempt, and unless allowPrivate the address actually dialed, after DNS
// resolution, checked at connect time (so a name that resolves, or is rebound, to a private
// address is refused).
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddress(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
			}
			return nil
		}
	}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		Proxy:                 nil, // a proxy would dial for us, past the check
		MaxIdleConnsPerHost:   32,  // above --webhook-concurrency, so each in-flight attempt keeps its connection
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// checkURLHost refuses, at registration, a URL whose host is a literal non-public address (a
// name is checked when it is dialed).
func checkURLHost(host string, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && !publicAddress(ip) {
		return ErrPrivateAddress
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return ErrPrivateAddress
	}
	return nil
}
