// Package podvm maps Kubernetes pods to vmm VMs and VMs back to pod
// status. Everything here is pure: no clients, no clocks but the ones
// passed in, so the mapping is tested table-driven.
//
// A pod is one VM: its only container is the VM, `image` names a base image
// in the host's images directory, resources become vCPUs and memory,
// containerPorts with a hostPort become forwarded host ports, and
// annotations under vmm.dev/ choose the networking. What cannot be honoured
// is refused with every offending field named, never dropped.
package podvm

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

// Pod annotations read by the mapping.
const (
	// AnnotationPrefix starts every annotation the mapping reads; an unknown
	// key under it is refused (a typo must not pass as a default).
	AnnotationPrefix = "vmm.dev/"
	// AnnotationNetworkingMode selects the NIC's mode: user, passt, bridge,
	// tap, macvtap or vmnet. Omitted: the node's default mode.
	AnnotationNetworkingMode = "vmm.dev/networking-mode"
	// AnnotationBridge names the bridge of a bridge or tap NIC. Omitted: the
	// host's default bridge.
	AnnotationBridge = "vmm.dev/bridge"
	// AnnotationNetwork names the vmnet network of a vmnet NIC (required there).
	AnnotationNetwork = "vmm.dev/network"
	// AnnotationUserData is cloud-init user-data for the guest.
	AnnotationUserData = "vmm.dev/user-data"
	// AnnotationKernelArgs is appended to the kernel command line.
	AnnotationKernelArgs = "vmm.dev/kernel-args"
)

// Labels every pod VM carries: the pod's identity, so that a restarted
// vmm-kubelet finds its VMs again.
const (
	LabelNode         = "vmm.dev/node"
	LabelPodNamespace = "vmm.dev/pod-namespace"
	LabelPodName      = "vmm.dev/pod-name"
	LabelPodUID       = "vmm.dev/pod-uid"
)

// VMIDPrefix starts the id of every pod VM; the rest is the pod's UID.
const VMIDPrefix = "pod-"

// Defaults of a container without resources.
const (
	DefaultVCPUs     = 1
	DefaultMemoryMiB = 256
)

// Image is a usable image of the host's images directory.
type Image struct {
	Name string
	// Cmdline is the image's kernel command line ("": none); the
	// kernel-args annotation is appended to it.
	Cmdline string
}

// defaultCmdline is vmmd's command line for a VM that sets none.
const defaultCmdline = "console=ttyS0"

// hostname is a guest host name cloud-init accepts (meta-data local-hostname).
var hostname = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Host is what the node offers, as the mapping needs it.
type Host struct {
	// NodeName is the Kubernetes node this vmm-kubelet registers.
	NodeName string
	// NodeIP is the host address of hostPorts without a hostIP.
	NodeIP string
	// CPUs is the host's logical CPU count: no VM gets more.
	CPUs uint32
	// Modes are the networking modes pods may use here.
	Modes []vmmv1.NetworkingMode
	// DefaultMode is the mode of a pod without the networking-mode annotation.
	DefaultMode vmmv1.NetworkingMode
	// Bridges are the bridges bridge/tap NICs may name (default first).
	Bridges []string
	// Networks are the ids of the host's vmnet networks.
	Networks []string
	// ForwardService says whether the host forwards ports of bridge-like NICs.
	ForwardService bool
	// Images are the images pods may name.
	Images []Image
}

// Problem is one reason a pod cannot become a VM.
type Problem struct {
	// Field is the pod field path, e.g. "spec.containers[0].ports[1].protocol".
	Field   string
	Message string
}

// Refusal lists every reason a pod cannot become a VM.
type Refusal struct {
	Problems []Problem
}

func (r *Refusal) Error() string {
	parts := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return strings.Join(parts, "; ")
}

type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// VMID is the id of the VM that runs the pod with this UID.
func VMID(uid string) string {
	return VMIDPrefix + strings.ToLower(uid)
}

// vmName is the VM's human-readable name: "<namespace>.<name>", shortened
// with the UID's start when longer than a VM name may be.
func vmName(pod *corev1.Pod) string {
	n := pod.Namespace + "." + pod.Name
	if len(n) <= 63 {
		return n
	}
	uid := string(pod.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return n[:63-len(uid)-1] + "~" + uid
}

var (
	modeNames = map[string]vmmv1.NetworkingMode{
		"user":    vmmv1.NetworkingMode_NETWORKING_MODE_USER,
		"passt":   vmmv1.NetworkingMode_NETWORKING_MODE_PASST,
		"bridge":  vmmv1.NetworkingMode_NETWORKING_MODE_BRIDGE,
		"tap":     vmmv1.NetworkingMode_NETWORKING_MODE_TAP,
		"macvtap": vmmv1.NetworkingMode_NETWORKING_MODE_MACVTAP,
		"vmnet":   vmmv1.NetworkingMode_NETWORKING_MODE_VMNET,
	}
	// labelValue is a Kubernetes label value (and a VM label value).
	labelValue = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// ModeName is the annotation spelling of a mode ("bridge"), or "" for modes
// pods may not use.
func ModeName(m vmmv1.NetworkingMode) string {
	for n, v := range modeNames {
		if v == m {
			return n
		}
	}
	return ""
}

// ParseMode is the mode of an annotation spelling ("bridge").
func ParseMode(name string) (vmmv1.NetworkingMode, bool) {
	m, ok := modeNames[name]
	return m, ok
}

// forwarded modes reach the guest through the host's forward service;
// user and passt map host ports themselves.
func forwarded(m vmmv1.NetworkingMode) bool {
	return m != vmmv1.NetworkingMode_NETWORKING_MODE_USER && m != vmmv1.NetworkingMode_NETWORKING_MODE_PASST
}

// LeasesAddress says whether a NIC in mode m gets a DHCP lease the host
// learns (so the pod has an IP).
func LeasesAddress(m vmmv1.NetworkingMode) bool {
	return forwarded(m)
}

// ToVM maps a pod to the CreateVm request of its VM, or returns a *Refusal
// naming every field that cannot be honoured.
func ToVM(pod *corev1.Pod, h Host) (*vmmv1.CreateVmRequest, error) {
	var ps problems
	checkPodSpec(&ps, pod)
	cfg := &vmmv1.VmConfig{
		Name: vmName(pod),
		Labels: map[string]string{
			LabelNode:         h.NodeName,
			LabelPodNamespace: pod.Namespace,
			LabelPodName:      pod.Name,
			LabelPodUID:       string(pod.UID),
		},
		AutoRestart: pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "",
	}
	if !labelValue.MatchString(pod.Name) {
		ps.add("metadata.name", "is %d characters; a VM pod's name is at most 63 (it is kept as a VM label)", len(pod.Name))
	}
	if len(pod.Spec.Containers) != 1 {
		ps.add("spec.containers", "has %d containers; a VM pod has exactly one (the VM)", len(pod.Spec.Containers))
	}
	mode := networking(&ps, pod, h, cfg)
	if len(pod.Spec.Containers) > 0 {
		c := &pod.Spec.Containers[0]
		checkContainer(&ps, c, "spec.containers[0]")
		image(&ps, pod, c, h, cfg)
		resources(&ps, c, h, cfg)
		ports(&ps, c, h, mode, cfg)
	}
	if ud, ok := pod.Annotations[AnnotationUserData]; ok {
		cfg.CloudInit = &vmmv1.CloudInit{UserData: ud}
		if hostname.MatchString(pod.Name) {
			cfg.CloudInit.Hostname = pod.Name
		}
	}
	for k := range pod.Annotations {
		if strings.HasPrefix(k, AnnotationPrefix) && !known(k) {
			ps.add("metadata.annotations["+k+"]", "unknown vmm.dev annotation (known: %s)", strings.Join(knownAnnotations, ", "))
		}
	}
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Field < ps[j].Field })
		return nil, &Refusal{Problems: ps}
	}
	return &vmmv1.CreateVmRequest{Id: VMID(string(pod.UID)), Config: cfg, Start: true}, nil
}

var knownAnnotations = []string{AnnotationBridge, AnnotationKernelArgs, AnnotationNetwork, AnnotationNetworkingMode, AnnotationUserData}

func known(k string) bool {
	for _, a := range knownAnnotations {
		if a == k {
			return true
		}
	}
	return false
}

func networking(ps *problems, pod *corev1.Pod, h Host, cfg *vmmv1.VmConfig) vmmv1.NetworkingMode {
	field := func(k string) string { return "metadata.annotations[" + k + "]" }
	mode := h.DefaultMode
	if name, ok := pod.Annotations[AnnotationNetworkingMode]; ok {
		m, known := modeNames[name]
		switch {
		case name == "custom":
			ps.add(field(AnnotationNetworkingMode), "custom netdevs are not available to pods")
			return mode
		case !known:
			ps.add(field(AnnotationNetworkingMode), "unknown mode %q (user, passt, bridge, tap, macvtap or vmnet)", name)
			return mode
		}
		mode = m
	}
	if !contains(h.Modes, mode) {
		offered := make([]string, 0, len(h.Modes))
		for _, m := range h.Modes {
			if n := ModeName(m); n != "" {
				offered = append(offered, n)
			}
		}
		sort.Strings(offered)
		ps.add(field(AnnotationNetworkingMode), "mode %s is not offered by node %s (offered: %s)", ModeName(mode), h.NodeName, strings.Join(offered, ", "))
	}
	nic := &vmmv1.NicConfig{Mode: mode}
	bridge, hasBridge := pod.Annotations[AnnotationBridge]
	switch {
	case !hasBridge:
	case mode != vmmv1.NetworkingMode_NETWORKING_MODE_BRIDGE && mode != vmmv1.NetworkingMode_NETWORKING_MODE_TAP:
		ps.add(field(AnnotationBridge), "applies to bridge and tap mode only (mode is %s)", ModeName(mode))
	case !containsString(h.Bridges, bridge):
		ps.add(field(AnnotationBridge), "bridge %q is not offered by node %s (offered: %s)", bridge, h.NodeName, strings.Join(h.Bridges, ", "))
	default:
		nic.Bridge = bridge
	}
	network, hasNetwork := pod.Annotations[AnnotationNetwork]
	switch {
	case mode == vmmv1.NetworkingMode_NETWORKING_MODE_VMNET && !hasNetwork:
		ps.add(field(AnnotationNetwork), "is required in vmnet mode")
	case !hasNetwork:
	case mode != vmmv1.NetworkingMode_NETWORKING_MODE_VMNET:
		ps.add(field(AnnotationNetwork), "applies to vmnet mode only (mode is %s)", ModeName(mode))
	case !containsString(h.Networks, network):
		ps.add(field(AnnotationNetwork), "network %q does not exist on node %s", network, h.NodeName)
	default:
		nic.NetworkId = network
	}
	cfg.Nics = []*vmmv1.NicConfig{nic}
	return mode
}

// image boots the VM from the named image, with the kernel-args annotation
// appended to the image's command line.
func image(ps *problems, pod *corev1.Pod, c *corev1.Container, h Host, cfg *vmmv1.VmConfig) {
	field := "spec.containers[0].image"
	for _, im := range h.Images {
		if im.Name != c.Image {
			continue
		}
		cfg.Image = im.Name
		args, ok := pod.Annotations[AnnotationKernelArgs]
		switch {
		case !ok || strings.TrimSpace(args) == "":
		case strings.ContainsAny(args, "\n\r\x00"):
			ps.add("metadata.annotations["+AnnotationKernelArgs+"]", "must be one line")
		default:
			base := im.Cmdline
			if base == "" {
				base = defaultCmdline
			}
			cfg.Cmdline = base + " " + strings.TrimSpace(args)
		}
		return
	}
	names := make([]string, len(h.Images))
	for i, im := range h.Images {
		names[i] = im.Name
	}
	sort.Strings(names)
	ps.add(field, "image %q is not offered by node %s (offered: %s)", c.Image, h.NodeName, strings.Join(names, ", "))
}

func resources(ps *problems, c *corev1.Container, h Host, cfg *vmmv1.VmConfig) {
	base := "spec.containers[0].resources"
	for _, set := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
		for name := range set.list {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
				ps.add(fmt.Sprintf("%s.%s[%s]", base, set.name, name), "only cpu and memory can be given to a VM")
			}
		}
	}
	if len(c.Resources.Claims) > 0 {
		ps.add(base+".claims", "resource claims are not supported")
	}
	pick := func(name corev1.ResourceName) (resource.Quantity, string, bool) {
		if q, ok := c.Resources.Limits[name]; ok {
			return q, fmt.Sprintf("%s.limits[%s]", base, name), true
		}
		if q, ok := c.Resources.Requests[name]; ok {
			return q, fmt.Sprintf("%s.requests[%s]", base, name), true
		}
		return resource.Quantity{}, "", false
	}
	cfg.Vcpus = DefaultVCPUs
	if q, field, ok := pick(corev1.ResourceCPU); ok {
		milli := q.MilliValue()
		vcpus := (milli + 999) / 1000
		switch {
		case milli <= 0:
			ps.add(field, "must be positive")
		case h.CPUs > 0 && vcpus > int64(h.CPUs):
			ps.add(field, "is %d vCPUs; node %s has %d CPUs", vcpus, h.NodeName, h.CPUs)
		default:
			cfg.Vcpus = uint32(vcpus)
		}
	}
	cfg.MemoryMib = DefaultMemoryMiB
	if q, field, ok := pick(corev1.ResourceMemory); ok {
		const mi = 1 << 20
		b := q.Value()
		mib := (b + mi - 1) / mi
		switch {
		case b <= 0:
			ps.add(field, "must be positive")
		case mib > 1<<24: // 16 TiB
			ps.add(field, "is %s; at most 16Ti", q.String())
		default:
			cfg.MemoryMib = uint32(mib)
		}
	}
}

func ports(ps *problems, c *corev1.Container, h Host, mode vmmv1.NetworkingMode, cfg *vmmv1.VmConfig) {
	for i, p := range c.Ports {
		field := fmt.Sprintf("spec.containers[0].ports[%d]", i)
		var proto vmmv1.Protocol
		switch p.Protocol {
		case corev1.ProtocolTCP, "":
			proto = vmmv1.Protocol_PROTOCOL_TCP
		case corev1.ProtocolUDP:
			proto = vmmv1.Protocol_PROTOCOL_UDP
		default:
			ps.add(field+".protocol", "%s is not supported (TCP or UDP)", p.Protocol)
			continue
		}
		if p.HostPort == 0 {
			if p.HostIP != "" {
				ps.add(field+".hostIP", "needs a hostPort")
			}
			continue // reachable on the pod IP, as in any pod
		}
		if forwarded(mode) && !h.ForwardService {
			ps.add(field+".hostPort", "node %s does not forward ports of %s guests (forward_service_enabled is off in its vmm.toml)", h.NodeName, ModeName(mode))
			continue
		}
		addr := p.HostIP
		if addr == "" {
			addr = h.NodeIP
		}
		cfg.Ports = append(cfg.Ports, &vmmv1.PortMapping{
			Protocol:    proto,
			HostAddress: addr,
			HostPort:    uint32(p.HostPort),
			VmPort:      uint32(p.ContainerPort),
		})
	}
}

func contains(ms []vmmv1.NetworkingMode, m vmmv1.NetworkingMode) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
