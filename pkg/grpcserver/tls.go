package grpcserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// TLS reports whether the process serves TLS (gRPC and REST).
func (c *Config) TLS() bool { return c.CertFile != "" }

// ServerTLS is the TLS configuration of the gRPC (and REST) listeners: the serving certificate,
// and, with --tls-ca, client certificates verified against it (required with
// --tls-require-client-cert: mutual TLS between services).
func (c *Config) ServerTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: serving certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.CAFile != "" {
		if cfg.ClientCAs, err = loadPool(c.CAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// ClientTLS is the TLS configuration of the process's calls to services (gateway to services,
// service to service): their certificates are verified against --tls-ca; without it, against the
// system roots and the process's own serving certificate, so the calls a process makes to itself
// (several services in one process) verify whatever CA signed it. With --tls-client-cert the
// process presents that certificate (mutual TLS).
func (c *Config) ClientTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var err error
	if c.CAFile != "" {
		if cfg.RootCAs, err = loadPool(c.CAFile); err != nil {
			return nil, err
		}
	} else {
		if cfg.RootCAs, err = x509.SystemCertPool(); err != nil {
			cfg.RootCAs = x509.NewCertPool()
		}
		if err := addPEM(cfg.RootCAs, c.CertFile); err != nil {
			return nil, err
		}
	}
	if c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	return pool, addPEM(pool, file)
}

// addPEM adds every certificate of a PEM file to pool.
func addPEM(pool *x509.CertPool, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	added := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("tls: %s: %w", file, err)
		}
		pool.AddCert(cert)
		added++
	}
	if added == 0 {
		return errors.New("tls: " + file + " holds no certificate")
	}
	return nil
}
