// Package kubeletapi serves the kubelet API the Kubernetes API server
// calls for `kubectl logs`, `attach` and `exec`: HTTPS on the node's
// address, every request authenticated (client certificate or bearer token
// via TokenReview) and authorized (SubjectAccessReview), as the kubelet's
// webhook mode does.
package kubeletapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"

	"vmm.dev/vmm/clients/kubelet/internal/config"
)

// Server is the kubelet API of one node.
type Server struct {
	srv *http.Server
	ln  net.Listener
	// SelfSigned: no certificate was configured; one was made at start.
	SelfSigned bool
}

// New prepares the API (routes from h) on cfg.NodeIP:cfg.ListenPort; auth
// asks the cluster through client.
func New(cfg *config.Config, client kubernetes.Interface, h api.PodHandlerConfig) (*Server, error) {
	var opts []nodeutil.WebhookAuthOption
	if cfg.ClientCAFile != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		opts = append(opts, func(c *nodeutil.WebhookAuthConfig) error {
			c.AuthnConfig.ClientCertificateCAContentProvider = ca
			return nil
		})
	}
	auth, err := nodeutil.WebhookAuth(client, cfg.NodeName, opts...)
	if err != nil {
		return nil, fmt.Errorf("kubelet API auth: %w", err)
	}
	s := &Server{}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert-file/--tls-private-key-file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	} else {
		cert, err := selfSigned(cfg.NodeName, cfg.NodeIP)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
		s.SelfSigned = true
	}
	addr := net.JoinHostPort(cfg.NodeIP, strconv.Itoa(cfg.ListenPort))
	ln, err := tls.Listen("tcp", addr, tc)
	if err != nil {
		return nil, fmt.Errorf("kubelet API: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           nodeutil.WithAuth(auth, api.PodHandler(h, false)),
		ReadHeaderTimeout: 30 * time.Second,
	}
	return s, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	}()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// selfSigned makes a serving certificate for the node's name and address.
// The API server does not verify kubelet certificates unless it is given
// --kubelet-certificate-authority; production setups pass a real one.
func selfSigned(name, ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
