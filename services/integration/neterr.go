package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// attemptError is what the delivery log, an endpoint's disabled reason and :test show for an
// attempt that got no answer: a stable text naming the receiver's host at most, never the Go
// error, which carries the platform's own resolver and addresses ("dial tcp: lookup x on
// 10.255.255.53:53: no such host").
func attemptError(err error, host string) string {
	var dns *net.DNSError
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var alert tls.AlertError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrPrivateAddress):
		return "refused: " + host + " resolves to a loopback, private or link-local address"
	case errors.As(err, &dns):
		if dns.IsTimeout {
			return "DNS lookup timed out for " + host
		}
		return "DNS lookup failed for " + host
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return "TLS certificate not valid for " + host
	case errors.As(err, &record), errors.As(err, &alert):
		return "TLS handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	return "connection failed"
}
