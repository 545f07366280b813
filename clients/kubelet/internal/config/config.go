// Package config holds vmm-kubelet's configuration: the types, their
// defaults (which cannot fail), flag binding, and one validation that
// reports every problem with the flag that causes it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Config is vmm-kubelet's configuration.
type Config struct {
	// Kubeconfig is the kubeconfig file; "": $KUBECONFIG, then the
	// in-cluster service account.
	Kubeconfig string
	// NodeName is the Kubernetes node name; "": the host name, lower-cased.
	NodeName string
	// NodeIP is the node's InternalIP, the default host address of hostPorts
	// and the address the kubelet API listens on.
	NodeIP string
	// VmmSocket is vmmd's unix socket.
	VmmSocket string
	// VmmTokenFile holds a vmmd admin token; "": no token.
	VmmTokenFile string
	// ListenPort is the port of the kubelet API (logs, attach) on NodeIP.
	ListenPort int
	// TLSCertFile and TLSKeyFile are the kubelet API's serving certificate;
	// both "": a self-signed certificate made at start.
	TLSCertFile, TLSKeyFile string
	// ClientCAFile verifies client certificates on the kubelet API (the API
	// server's --kubelet-client-certificate); "": no client certificates.
	ClientCAFile string
	// ReservedCPU and ReservedMemory are kept back from the host's capacity
	// for the host itself; the rest is the node's allocatable.
	ReservedCPU, ReservedMemory resource.Quantity
	// MaxPods is the node's pod capacity.
	MaxPods int
	// DefaultNetworkingMode is the mode of pods without the
	// vmm.dev/networking-mode annotation; "": bridge when the host offers
	// it, otherwise the host's default mode.
	DefaultNetworkingMode string
	// LeaseDuration is the node lease's duration; it is renewed every quarter of it.
	LeaseDuration time.Duration
	// StatusInterval is how often the node status is refreshed.
	StatusInterval time.Duration
	// Verbose turns on debug logging.
	Verbose bool
}

// Default returns the defaults; it cannot fail.
func Default() Config {
	return Config{
		VmmSocket:      "/var/lib/vmm/vmmd.sock",
		ListenPort:     10250,
		ReservedCPU:    resource.MustParse("0"),
		ReservedMemory: resource.MustParse("512Mi"),
		MaxPods:        110,
		LeaseDuration:  40 * time.Second,
		StatusInterval: time.Minute,
	}
}

// quantityFlag parses a Kubernetes quantity ("1", "500m", "512Mi").
type quantityFlag struct{ q *resource.Quantity }

func (f quantityFlag) String() string {
	if f.q == nil {
		return ""
	}
	return f.q.String()
}
func (f quantityFlag) Set(v string) error {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return err
	}
	*f.q = q
	return nil
}

// Bind registers the flags on fs, writing into c (which holds the defaults).
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (default $KUBECONFIG, then the in-cluster service account)")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "Kubernetes node name (default: the host name)")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "the node's InternalIP: kubelet API address and default hostPort address (required)")
	fs.StringVar(&c.VmmSocket, "vmm-socket", c.VmmSocket, "vmmd's unix socket")
	fs.StringVar(&c.VmmTokenFile, "vmm-token-file", c.VmmTokenFile, "file holding a vmmd admin token")
	fs.IntVar(&c.ListenPort, "port", c.ListenPort, "port of the kubelet API (logs, attach) on --node-ip")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "serving certificate of the kubelet API (default: self-signed)")
	fs.StringVar(&c.TLSKeyFile, "tls-private-key-file", c.TLSKeyFile, "key of --tls-cert-file")
	fs.StringVar(&c.ClientCAFile, "client-ca-file", c.ClientCAFile, "CA bundle verifying client certificates on the kubelet API")
	fs.Var(quantityFlag{&c.ReservedCPU}, "reserved-cpu", "CPUs kept back for the host (a quantity, e.g. 1 or 500m)")
	fs.Var(quantityFlag{&c.ReservedMemory}, "reserved-memory", "memory kept back for the host (a quantity, e.g. 512Mi)")
	fs.IntVar(&c.MaxPods, "max-pods", c.MaxPods, "pod capacity of the node")
	fs.StringVar(&c.DefaultNetworkingMode, "default-networking-mode", c.DefaultNetworkingMode, "networking mode of pods without the vmm.dev/networking-mode annotation (default: bridge if offered, else the host's default)")
	fs.DurationVar(&c.LeaseDuration, "node-lease-duration", c.LeaseDuration, "duration of the node lease (renewed every quarter of it)")
	fs.DurationVar(&c.StatusInterval, "node-status-update-frequency", c.StatusInterval, "how often the node status is refreshed")
	fs.BoolVar(&c.Verbose, "v", c.Verbose, "debug logging")
}

var (
	// nodeName is a DNS subdomain (RFC 1123), as Kubernetes node names are.
	nodeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	modes    = []string{"user", "passt", "bridge", "tap", "macvtap", "vmnet"}
)

// Fill resolves the defaults that depend on the host (node name).
func (c *Config) Fill() {
	if c.NodeName == "" {
		if h, err := os.Hostname(); err == nil {
			c.NodeName = strings.ToLower(h)
		}
	}
	if c.Kubeconfig == "" {
		c.Kubeconfig = os.Getenv("KUBECONFIG")
	}
}

// Validate reports every problem at once, each naming its flag.
func (c *Config) Validate() error {
	var errs []error
	add := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if len(c.NodeName) == 0 || len(c.NodeName) > 253 || !nodeName.MatchString(c.NodeName) {
		add("node-name", "%q is not a DNS subdomain (lower-case letters, digits, '-' and '.'; at most 253)", c.NodeName)
	}
	if ip := net.ParseIP(c.NodeIP); ip == nil {
		add("node-ip", "%q is not an IP address (required)", c.NodeIP)
	} else if ip.IsUnspecified() {
		add("node-ip", "must be a concrete address, not %s", c.NodeIP)
	}
	if c.VmmSocket == "" {
		add("vmm-socket", "is required")
	}
	if c.ListenPort < 1 || c.ListenPort > 65535 {
		add("port", "is %d; must be 1-65535", c.ListenPort)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		add("tls-cert-file", "and --tls-private-key-file go together")
	}
	if c.ReservedCPU.Sign() < 0 {
		add("reserved-cpu", "is negative")
	}
	if c.ReservedMemory.Sign() < 0 {
		add("reserved-memory", "is negative")
	}
	if c.MaxPods < 1 || c.MaxPods > 10000 {
		add("max-pods", "is %d; must be 1-10000", c.MaxPods)
	}
	if c.DefaultNetworkingMode != "" && !contains(modes, c.DefaultNetworkingMode) {
		add("default-networking-mode", "%q is not one of %s", c.DefaultNetworkingMode, strings.Join(modes, ", "))
	}
	if c.LeaseDuration < 2*time.Second || c.LeaseDuration > time.Hour {
		add("node-lease-duration", "is %s; must be 2s-1h", c.LeaseDuration)
	}
	if c.StatusInterval < time.Second || c.StatusInterval > time.Hour {
		add("node-status-update-frequency", "is %s; must be 1s-1h", c.StatusInterval)
	}
	return errors.Join(errs...)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
