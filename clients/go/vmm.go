// Package vmm builds clients for the vmm daemon's API (vmm.v1) from the
// generated code in gen/go: connect-go clients (Connect or gRPC protocol,
// over TCP or the daemon's unix socket) and grpc-go connections (plain gRPC
// over h2c, TCP or unix socket).
//
// Addresses:
//
//	Target{URL: "http://127.0.0.1:8080"}      TCP
//	Target{Socket: "/var/lib/vmm/vmmd.sock"}   unix socket
//
// A non-empty Token is sent as "authorization: Bearer <token>" on every call.
package vmm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"vmm.dev/vmm/gen/go/vmm/v1/vmmv1connect"
)

// Target says where the daemon listens and how to authenticate.
type Target struct {
	// URL is the daemon's TCP endpoint, e.g. "http://127.0.0.1:8080".
	URL string
	// Socket is the path of the daemon's unix socket. Takes precedence over URL.
	Socket string
	// Token is an admin or lease bearer token. Empty: no authorization header.
	Token string
}

// socketBaseURL is the base URL used over a unix socket; the host is ignored.
const socketBaseURL = "http://localhost"

func (t Target) validate() error {
	if t.Socket == "" && t.URL == "" {
		return errors.New("vmm: Target needs a Socket or a URL")
	}
	if t.Socket == "" && !strings.HasPrefix(t.URL, "http://") {
		return fmt.Errorf("vmm: URL %q must start with http:// (the daemon serves cleartext on loopback)", t.URL)
	}
	return nil
}

// HTTPClient returns an http.Client reaching the daemon. With h2c it speaks
// cleartext HTTP/2 only (needed for the gRPC protocol); otherwise HTTP/1.1.
func (t Target) HTTPClient(h2c bool) *http.Client {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	if t.Socket != "" {
		path := t.Socket
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return &http.Client{Transport: tr}
}

func (t Target) baseURL() string {
	if t.Socket != "" {
		return socketBaseURL
	}
	return strings.TrimSuffix(t.URL, "/")
}

// bearer adds the authorization header to every request, streams included.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Protocol selects the wire protocol of a connect-go client.
type Protocol int

const (
	// ProtocolConnect is the Connect protocol (binary protobuf) over HTTP/1.1.
	ProtocolConnect Protocol = iota
	// ProtocolGRPC is gRPC over cleartext HTTP/2.
	ProtocolGRPC
	// ProtocolGRPCWeb is gRPC-Web over HTTP/1.1.
	ProtocolGRPCWeb
)

func (p Protocol) String() string {
	switch p {
	case ProtocolConnect:
		return "connect"
	case ProtocolGRPC:
		return "grpc"
	case ProtocolGRPCWeb:
		return "grpcweb"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// ConnectClients are connect-go clients of both services.
type ConnectClients struct {
	Vmm     vmmv1connect.VmmServiceClient
	Network vmmv1connect.NetworkServiceClient
}

// NewConnect returns connect-go clients for t speaking protocol p.
func NewConnect(t Target, p Protocol) (*ConnectClients, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	var opts []connect.ClientOption
	switch p {
	case ProtocolConnect:
	case ProtocolGRPC:
		opts = append(opts, connect.WithGRPC())
	case ProtocolGRPCWeb:
		opts = append(opts, connect.WithGRPCWeb())
	default:
		return nil, fmt.Errorf("vmm: unknown protocol %v", p)
	}
	if t.Token != "" {
		opts = append(opts, connect.WithInterceptors(bearer(t.Token)))
	}
	hc := t.HTTPClient(p == ProtocolGRPC)
	return &ConnectClients{
		Vmm:     vmmv1connect.NewVmmServiceClient(hc, t.baseURL(), opts...),
		Network: vmmv1connect.NewNetworkServiceClient(hc, t.baseURL(), opts...),
	}, nil
}

// tokenCreds sends the bearer token on a connection without TLS; the daemon
// listens on loopback and a unix socket only, so that is allowed here.
type tokenCreds string

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(c)}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return false }

// DialGRPC returns a grpc-go connection to t: "unix://<path>" for a socket,
// host:port for a URL, plain gRPC over h2c. Close it when done.
func DialGRPC(t Target) (*grpc.ClientConn, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	target := "unix://" + t.Socket
	if t.Socket == "" {
		target = "passthrough:///" + strings.TrimSuffix(strings.TrimPrefix(t.URL, "http://"), "/")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if t.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(t.Token)))
	}
	return grpc.NewClient(target, opts...)
}
