// Package node builds the Kubernetes Node that stands for one vmmd host:
// capacity from the host, labels for the networking it offers, a taint so
// only VM pods land there, conditions, addresses; and the node provider
// that keeps it current and answers the heartbeat's ping.
package node

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"vmm.dev/vmm/clients/kubelet/internal/config"
	"vmm.dev/vmm/clients/kubelet/internal/podvm"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
	"vmm.dev/vmm/gen/go/vmm/v1/vmmv1connect"
)

// Taint keeps pods that do not tolerate it off vmm nodes: every pod here is
// a VM, so only pods written for that may land.
var Taint = corev1.Taint{Key: "virtual-kubelet.io/provider", Value: "vmm", Effect: corev1.TaintEffectNoSchedule}

// Label keys and prefixes of the node.
const (
	// LabelModePrefix + mode ("bridge") = "true" for every mode the host offers pods.
	LabelModePrefix = "networking-mode.vmm.dev/"
	// LabelBridgePrefix + bridge = "true" for every bridge pods may name.
	LabelBridgePrefix = "bridge.vmm.dev/"
	// LabelNetworkPrefix + network id = "true" for every vmnet network.
	LabelNetworkPrefix = "network.vmm.dev/"
	// LabelImagePrefix + image = "true" for every usable image (whose name
	// is a valid label name).
	LabelImagePrefix = "image.vmm.dev/"
)

// labelName is the name part of a label key.
var labelName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// KubeletVersion is the Kubernetes API version this kubelet speaks.
const KubeletVersion = "v1.37.1-vmm"

// Host is what the node reports of its vmmd host.
type Host struct {
	Meta     *vmmv1.GetMetaResponse
	Networks []string
	// Images are the usable images of the host's images directory.
	Images []*vmmv1.Image
}

// Build returns the node for host h under configuration c.
func Build(c *config.Config, h Host) *corev1.Node {
	m := h.Meta
	labels := map[string]string{
		"type":                   "virtual-kubelet",
		"kubernetes.io/role":     "agent",
		"kubernetes.io/hostname": c.NodeName,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     arch(m.Platform),
	}
	for _, mode := range Modes(m) {
		labels[LabelModePrefix+podvm.ModeName(mode)] = "true"
	}
	for _, b := range m.Bridges {
		labels[LabelBridgePrefix+b] = "true"
	}
	for _, n := range h.Networks {
		labels[LabelNetworkPrefix+n] = "true"
	}
	for _, im := range h.Images {
		if labelName.MatchString(im.Name) {
			labels[LabelImagePrefix+im.Name] = "true"
		}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(m.HostCpus), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(m.HostMemoryBytes), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(c.MaxPods), resource.DecimalSI),
	}
	allocatable := capacity.DeepCopy()
	for name, reserved := range map[corev1.ResourceName]resource.Quantity{corev1.ResourceCPU: c.ReservedCPU, corev1.ResourceMemory: c.ReservedMemory} {
		q := allocatable[name]
		q.Sub(reserved)
		if q.Sign() < 0 {
			q = *resource.NewQuantity(0, q.Format)
		}
		allocatable[name] = q
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: c.NodeName, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{Taint}},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodeRunning,
			Capacity:    capacity,
			Allocatable: allocatable,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: c.NodeIP},
				{Type: corev1.NodeHostName, Address: c.NodeName},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(c.ListenPort)}},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem:         "linux",
				Architecture:            arch(m.Platform),
				KubeletVersion:          KubeletVersion,
				OSImage:                 "vmm " + m.Version,
				ContainerRuntimeVersion: "vmm://" + m.Version + " (qemu " + orNone(m.QemuVersion) + ")",
			},
			Conditions: conditions(m),
		},
	}
}

// Modes are the networking modes the host offers pods (custom netdevs never).
func Modes(m *vmmv1.GetMetaResponse) []vmmv1.NetworkingMode {
	var out []vmmv1.NetworkingMode
	for _, mode := range m.NetworkingModes {
		if podvm.ModeName(mode) != "" {
			out = append(out, mode)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func conditions(m *vmmv1.GetMetaResponse) []corev1.NodeCondition {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: fmt.Sprintf("vmm-kubelet is ready; vmmd %s runs QEMU %s", m.Version, m.QemuVersion)}
	if m.QemuVersion == "" {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "QEMUNotFound", "vmmd found no QEMU on this host"
	}
	notMonitored := func(t corev1.NodeConditionType, what string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: "NotMonitored",
			Message: "vmm-kubelet does not monitor " + what + "; VMs get fixed resources"}
	}
	return []corev1.NodeCondition{
		ready,
		notMonitored(corev1.NodeMemoryPressure, "memory pressure"),
		notMonitored(corev1.NodeDiskPressure, "disk pressure"),
		notMonitored(corev1.NodePIDPressure, "PID pressure"),
		{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "VmmNetworking",
			Message: "VMs are networked by vmmd"},
	}
}

func arch(platform string) string {
	_, a, _ := strings.Cut(platform, "/")
	switch a {
	case "x64":
		return "amd64"
	case "":
		return "unknown"
	}
	return a
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Provider keeps the node current: vmmd answers the heartbeat's ping, and
// the node is rebuilt from the host every status interval.
type Provider struct {
	cfg  *config.Config
	vmm  vmmv1connect.VmmServiceClient
	nets vmmv1connect.NetworkServiceClient
}

// NewProvider returns the node provider of cfg's node.
func NewProvider(cfg *config.Config, vmm vmmv1connect.VmmServiceClient, nets vmmv1connect.NetworkServiceClient) *Provider {
	return &Provider{cfg: cfg, vmm: vmm, nets: nets}
}

// Host reads what the node reports from vmmd.
func (p *Provider) Host(ctx context.Context) (Host, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	meta, err := p.vmm.GetMeta(ctx, connect.NewRequest(&vmmv1.GetMetaRequest{}))
	if err != nil {
		return Host{}, fmt.Errorf("vmmd GetMeta: %w", err)
	}
	h := Host{Meta: meta.Msg}
	token := ""
	for page := 0; page < 100; page++ {
		r, err := p.nets.ListNetworks(ctx, connect.NewRequest(&vmmv1.ListNetworksRequest{PageSize: 1000, PageToken: token}))
		if err != nil {
			return Host{}, fmt.Errorf("vmmd ListNetworks: %w", err)
		}
		for _, n := range r.Msg.Networks {
			h.Networks = append(h.Networks, n.Id)
		}
		if token = r.Msg.NextPageToken; token == "" {
			break
		}
	}
	sort.Strings(h.Networks)
	im, err := p.vmm.ListImages(ctx, connect.NewRequest(&vmmv1.ListImagesRequest{}))
	if err != nil {
		return Host{}, fmt.Errorf("vmmd ListImages: %w", err)
	}
	for _, i := range im.Msg.Images {
		if i.Problem == "" {
			h.Images = append(h.Images, i)
		}
	}
	return h, nil
}

// Ping is the heartbeat's liveness check: vmmd answers GetMeta.
func (p *Provider) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.vmm.GetMeta(ctx, connect.NewRequest(&vmmv1.GetMetaRequest{})); err != nil {
		return fmt.Errorf("vmmd does not answer: %w", err)
	}
	return nil
}

// NotifyNodeStatus rebuilds the node every status interval and reports it
// when labels or status (other than heartbeat times) changed.
func (p *Provider) NotifyNodeStatus(ctx context.Context, cb func(*corev1.Node)) {
	go func() {
		var last *corev1.Node
		t := time.NewTicker(p.cfg.StatusInterval)
		defer t.Stop()
		for {
			if h, err := p.Host(ctx); err == nil {
				n := Build(p.cfg, h)
				if last == nil || !reflect.DeepEqual(last.Labels, n.Labels) || !reflect.DeepEqual(last.Status, n.Status) {
					cb(n.DeepCopy())
					last = n
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
