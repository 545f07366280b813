package podvm

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

const (
	modeUser    = vmmv1.NetworkingMode_NETWORKING_MODE_USER
	modePasst   = vmmv1.NetworkingMode_NETWORKING_MODE_PASST
	modeBridge  = vmmv1.NetworkingMode_NETWORKING_MODE_BRIDGE
	modeTap     = vmmv1.NetworkingMode_NETWORKING_MODE_TAP
	modeMacvtap = vmmv1.NetworkingMode_NETWORKING_MODE_MACVTAP
	modeVmnet   = vmmv1.NetworkingMode_NETWORKING_MODE_VMNET
	tcp         = vmmv1.Protocol_PROTOCOL_TCP
	udp         = vmmv1.Protocol_PROTOCOL_UDP
)

func testHost() Host {
	return Host{
		NodeName:       "host-a",
		NodeIP:         "127.0.0.2",
		CPUs:           4,
		Modes:          []vmmv1.NetworkingMode{modeUser, modePasst, modeBridge, modeTap, modeMacvtap, modeVmnet},
		DefaultMode:    modeBridge,
		Bridges:        []string{"vmmbr0", "br-lab"},
		Networks:       []string{"lab"},
		ForwardService: true,
		Images:         []Image{{Name: "busybox", Cmdline: "console=ttyS0 quiet"}, {Name: "debian-12"}},
	}
}

// basePod is the pod the API server stores for a minimal VM pod: the
// defaults it fills in (restartPolicy, dnsPolicy, an empty securityContext,
// the service-account token volume and mount, terminationMessage*,
// imagePullPolicy) must all pass.
func basePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1ObjectMeta("web-0", "default", "0b2c8a5e-1f1d-4e8e-9d39-5c1f0e6c2a11"),
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyAlways,
			DNSPolicy:                     corev1.DNSClusterFirst,
			SecurityContext:               &corev1.PodSecurityContext{},
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			SchedulerName:                 "default-scheduler",
			EnableServiceLinks:            ptr.To(true),
			ServiceAccountName:            "default",
			Tolerations:                   []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists}},
			Volumes: []corev1.Volume{{
				Name: "kube-api-access-x7k2p",
				VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{}},
				}}},
			}},
			Containers: []corev1.Container{{
				Name:                     "vm",
				Image:                    "busybox",
				ImagePullPolicy:          corev1.PullIfNotPresent,
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				VolumeMounts:             []corev1.VolumeMount{{Name: "kube-api-access-x7k2p", MountPath: ServiceAccountMountPath, ReadOnly: true}},
			}},
		},
	}
}

func TestToVMAccepted(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*corev1.Pod)
		host func(*Host)
		want func(*vmmv1.VmConfig)
	}{
		{name: "defaults: 1 vCPU, 256 MiB, default bridge mode, auto restart"},
		{
			name: "limits win over requests; cpu rounds up to whole vCPUs; memory to MiB",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				}
			},
			want: func(c *vmmv1.VmConfig) { c.Vcpus, c.MemoryMib = 2, 512 },
		},
		{
			name: "requests alone; memory in decimal units rounds up",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("300M")}
			},
			want: func(c *vmmv1.VmConfig) { c.Vcpus, c.MemoryMib = 3, 287 },
		},
		{
			name: "hostPorts become forwards on the node IP or the given hostIP; ports without hostPort stay on the pod IP",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{
					{ContainerPort: 8080, HostPort: 18080, Protocol: corev1.ProtocolTCP},
					{ContainerPort: 53, HostPort: 10053, Protocol: corev1.ProtocolUDP, HostIP: "127.0.0.1"},
					{ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
				}
			},
			want: func(c *vmmv1.VmConfig) {
				c.Ports = []*vmmv1.PortMapping{
					{Protocol: tcp, HostAddress: "127.0.0.2", HostPort: 18080, VmPort: 8080},
					{Protocol: udp, HostAddress: "127.0.0.1", HostPort: 10053, VmPort: 53},
				}
			},
		},
		{
			name: "restartPolicy Never and OnFailure: no auto restart",
			mod:  func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: func(c *vmmv1.VmConfig) { c.AutoRestart = false },
		},
		{
			name: "bridge annotation picks an offered bridge",
			mod:  func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationBridge: "br-lab"} },
			want: func(c *vmmv1.VmConfig) { c.Nics[0].Bridge = "br-lab" },
		},
		{
			name: "tap mode with a bridge",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationNetworkingMode: "tap", AnnotationBridge: "vmmbr0"}
			},
			want: func(c *vmmv1.VmConfig) { c.Nics = []*vmmv1.NicConfig{{Mode: modeTap, Bridge: "vmmbr0"}} },
		},
		{
			name: "vmnet mode on an existing network",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationNetworkingMode: "vmnet", AnnotationNetwork: "lab"}
			},
			want: func(c *vmmv1.VmConfig) { c.Nics = []*vmmv1.NicConfig{{Mode: modeVmnet, NetworkId: "lab"}} },
		},
		{
			name: "user mode maps hostPorts natively, even without the forward service",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationNetworkingMode: "user"}
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 22, HostPort: 2222}}
			},
			host: func(h *Host) { h.ForwardService = false },
			want: func(c *vmmv1.VmConfig) {
				c.Nics = []*vmmv1.NicConfig{{Mode: modeUser}}
				c.Ports = []*vmmv1.PortMapping{{Protocol: tcp, HostAddress: "127.0.0.2", HostPort: 2222, VmPort: 22}}
			},
		},
		{
			name: "kernel args are appended to the image's command line",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationKernelArgs: " vmm.hostname=web quiet "}
			},
			want: func(c *vmmv1.VmConfig) { c.Cmdline = "console=ttyS0 quiet vmm.hostname=web quiet" },
		},
		{
			name: "an image without a command line gets vmmd's default before the kernel args",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Image = "debian-12"
				p.Annotations = map[string]string{AnnotationKernelArgs: "systemd.unit=rescue.target"}
			},
			want: func(c *vmmv1.VmConfig) { c.Image, c.Cmdline = "debian-12", "console=ttyS0 systemd.unit=rescue.target" },
		},
		{
			name: "cloud-init user-data, with the pod name as host name",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationUserData: "#cloud-config\npackages: [nginx]\n"}
			},
			want: func(c *vmmv1.VmConfig) {
				c.CloudInit = &vmmv1.CloudInit{UserData: "#cloud-config\npackages: [nginx]\n", Hostname: "web-0"}
			},
		},
		{
			name: "stdin and tty pass (attach reaches the console); other annotations pass",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Stdin, p.Spec.Containers[0].TTY = true, true
				p.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}
			},
		},
		{
			name: "scheduling fields pass: node selector, affinity, spread, priority, runtime class, overhead",
			mod: func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"type": "virtual-kubelet"}
				p.Spec.Affinity = &corev1.Affinity{}
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname"}}
				p.Spec.PriorityClassName, p.Spec.Priority = "high", ptr.To[int32](1000)
				p.Spec.RuntimeClassName = ptr.To("vmm")
				p.Spec.Overhead = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
				p.Spec.OS = &corev1.PodOS{Name: corev1.Linux}
			},
		},
		{
			name: "a long namespace and name make a shortened VM name",
			mod: func(p *corev1.Pod) {
				p.Namespace = strings.Repeat("n", 40)
				p.Name = strings.Repeat("p", 40)
			},
			want: func(c *vmmv1.VmConfig) {
				c.Name = strings.Repeat("n", 40) + "." + strings.Repeat("p", 13) + "~0b2c8a5e"
				c.Labels[LabelPodNamespace] = strings.Repeat("n", 40)
				c.Labels[LabelPodName] = strings.Repeat("p", 40)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod()
			if tc.mod != nil {
				tc.mod(pod)
			}
			h := testHost()
			if tc.host != nil {
				tc.host(&h)
			}
			want := &vmmv1.VmConfig{
				Name:        "default.web-0",
				Vcpus:       1,
				MemoryMib:   256,
				Image:       "busybox",
				Nics:        []*vmmv1.NicConfig{{Mode: modeBridge}},
				AutoRestart: true,
				Labels: map[string]string{
					LabelNode: "host-a", LabelPodNamespace: "default", LabelPodName: "web-0",
					LabelPodUID: "0b2c8a5e-1f1d-4e8e-9d39-5c1f0e6c2a11",
				},
			}
			if tc.want != nil {
				tc.want(want)
			}
			req, err := ToVM(pod, h)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if req.Id != "pod-0b2c8a5e-1f1d-4e8e-9d39-5c1f0e6c2a11" || !req.Start {
				t.Errorf("id %q start %v", req.Id, req.Start)
			}
			if !proto.Equal(req.Config, want) {
				t.Errorf("config\n got %v\nwant %v", req.Config, want)
			}
		})
	}
}

// Every refusal names the field; several problems are all reported.
func TestToVMRefused(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*corev1.Pod)
		host   func(*Host)
		fields []string // every problem's field, sorted
		msg    string   // part of the message
	}{
		{
			name: "two containers",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox"})
			},
			fields: []string{"spec.containers"}, msg: "has 2 containers",
		},
		{
			name:   "no containers",
			mod:    func(p *corev1.Pod) { p.Spec.Containers = nil },
			fields: []string{"spec.containers"}, msg: "has 0 containers",
		},
		{
			name:   "init container",
			mod:    func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}} },
			fields: []string{"spec.initContainers"},
		},
		{
			name: "ephemeral container",
			mod: func(p *corev1.Pod) {
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
			},
			fields: []string{"spec.ephemeralContainers"},
		},
		{
			name: "hostPath and emptyDir volumes",
			mod: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes,
					corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}},
					corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			},
			fields: []string{"spec.volumes[1]", "spec.volumes[2]"}, msg: `volume "data" (hostPath)`,
		},
		{
			name: "a projected volume that only looks like the token volume",
			mod: func(p *corev1.Pod) {
				p.Spec.Volumes[0].Projected.Sources = append(p.Spec.Volumes[0].Projected.Sources,
					corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}})
			},
			fields: []string{"spec.volumes[0]"}, msg: "(projected)",
		},
		{
			name: "volume mount and device",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
				p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "blk", DevicePath: "/dev/xvda"}}
			},
			fields: []string{"spec.containers[0].volumeDevices", "spec.containers[0].volumeMounts[1]"},
		},
		{
			name: "command, args, workingDir, env, envFrom",
			mod: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Command, c.Args, c.WorkingDir = []string{"/bin/sh"}, []string{"-c", "true"}, "/srv"
				c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}}
				c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{}}}
			},
			fields: []string{"spec.containers[0].args", "spec.containers[0].command", "spec.containers[0].env", "spec.containers[0].envFrom", "spec.containers[0].workingDir"},
		},
		{
			name: "probes and lifecycle",
			mod: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.LivenessProbe, c.ReadinessProbe, c.StartupProbe = &corev1.Probe{}, &corev1.Probe{}, &corev1.Probe{}
				c.Lifecycle = &corev1.Lifecycle{}
			},
			fields: []string{"spec.containers[0].lifecycle", "spec.containers[0].livenessProbe", "spec.containers[0].readinessProbe", "spec.containers[0].startupProbe"},
		},
		{
			name: "container restart policy, resize policy and security context",
			mod: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				always := corev1.ContainerRestartPolicyAlways
				c.RestartPolicy = &always
				c.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU}}
				c.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
			},
			fields: []string{"spec.containers[0].resizePolicy", "spec.containers[0].restartPolicy", "spec.containers[0].securityContext"},
		},
		{
			name: "host namespaces and process sharing",
			mod: func(p *corev1.Pod) {
				p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true
				p.Spec.ShareProcessNamespace, p.Spec.HostUsers = ptr.To(true), ptr.To(false)
			},
			fields: []string{"spec.hostIPC", "spec.hostNetwork", "spec.hostPID", "spec.hostUsers", "spec.shareProcessNamespace"},
		},
		{
			name: "pod security context",
			mod: func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
			},
			fields: []string{"spec.securityContext"},
		},
		{
			name: "hostname, subdomain, FQDN, override, aliases, DNS config",
			mod: func(p *corev1.Pod) {
				p.Spec.Hostname, p.Spec.Subdomain = "web", "svc"
				p.Spec.SetHostnameAsFQDN = ptr.To(true)
				p.Spec.HostnameOverride = ptr.To("x")
				p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.1"}}
				p.Spec.DNSPolicy = corev1.DNSNone
				p.Spec.DNSConfig = &corev1.PodDNSConfig{}
			},
			fields: []string{"spec.dnsConfig", "spec.hostAliases", "spec.hostname", "spec.hostnameOverride", "spec.setHostnameAsFQDN", "spec.subdomain"},
		},
		{
			name: "deadline, pull secrets, readiness gates, windows, claims, pod resources, eviction responders",
			mod: func(p *corev1.Pod) {
				p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
				p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "reg"}}
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "x"}}
				p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
				p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}}
				p.Spec.Resources = &corev1.ResourceRequirements{}
				p.Spec.EvictionResponders = []corev1.EvictionResponder{{}}
			},
			fields: []string{"spec.activeDeadlineSeconds", "spec.evictionResponders", "spec.imagePullSecrets", "spec.os.name", "spec.readinessGates", "spec.resourceClaims", "spec.resources"},
		},
		{
			name:   "unknown restart policy",
			mod:    func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			fields: []string{"spec.restartPolicy"},
		},
		{
			name:   "image not offered",
			mod:    func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.27" },
			fields: []string{"spec.containers[0].image"}, msg: `image "nginx:1.27" is not offered by node host-a (offered: busybox, debian-12)`,
		},
		{
			name: "other resources, claims",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")},
					Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
					Claims:   []corev1.ResourceClaim{{Name: "gpu"}},
				}
			},
			fields: []string{"spec.containers[0].resources.claims", "spec.containers[0].resources.limits[nvidia.com/gpu]", "spec.containers[0].resources.requests[ephemeral-storage]"},
		},
		{
			name: "more vCPUs than the host has",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4100m")}
			},
			fields: []string{"spec.containers[0].resources.limits[cpu]"}, msg: "is 5 vCPUs; node host-a has 4 CPUs",
		},
		{
			name: "zero cpu and memory",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0"), corev1.ResourceMemory: resource.MustParse("0")}
			},
			fields: []string{"spec.containers[0].resources.requests[cpu]", "spec.containers[0].resources.requests[memory]"}, msg: "must be positive",
		},
		{
			name: "absurd memory",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("20Ti")}
			},
			fields: []string{"spec.containers[0].resources.limits[memory]"}, msg: "at most 16Ti",
		},
		{
			name: "SCTP port, hostIP without hostPort",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{
					{ContainerPort: 9, HostPort: 9999, Protocol: corev1.ProtocolSCTP},
					{ContainerPort: 80, HostIP: "127.0.0.1"},
				}
			},
			fields: []string{"spec.containers[0].ports[0].protocol", "spec.containers[0].ports[1].hostIP"},
		},
		{
			name: "hostPort of a bridge guest on a host without the forward service",
			mod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			},
			host:   func(h *Host) { h.ForwardService = false },
			fields: []string{"spec.containers[0].ports[0].hostPort"}, msg: "forward_service_enabled",
		},
		{
			name:   "custom netdev",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationNetworkingMode: "custom"} },
			fields: []string{"metadata.annotations[vmm.dev/networking-mode]"}, msg: "custom netdevs",
		},
		{
			name:   "unknown mode",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationNetworkingMode: "slirp"} },
			fields: []string{"metadata.annotations[vmm.dev/networking-mode]"}, msg: `unknown mode "slirp"`,
		},
		{
			name:   "mode not offered by the node",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationNetworkingMode: "macvtap"} },
			host:   func(h *Host) { h.Modes = []vmmv1.NetworkingMode{modeBridge, modeUser} },
			fields: []string{"metadata.annotations[vmm.dev/networking-mode]"}, msg: "offered: bridge, user",
		},
		{
			name:   "bridge not offered",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationBridge: "br-evil"} },
			fields: []string{"metadata.annotations[vmm.dev/bridge]"}, msg: `bridge "br-evil" is not offered`,
		},
		{
			name: "bridge in passt mode; network in bridge mode",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationNetworkingMode: "passt", AnnotationBridge: "vmmbr0", AnnotationNetwork: "lab"}
			},
			fields: []string{"metadata.annotations[vmm.dev/bridge]", "metadata.annotations[vmm.dev/network]"}, msg: "applies to",
		},
		{
			name:   "vmnet without a network",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationNetworkingMode: "vmnet"} },
			fields: []string{"metadata.annotations[vmm.dev/network]"}, msg: "is required in vmnet mode",
		},
		{
			name: "vmnet network that does not exist",
			mod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationNetworkingMode: "vmnet", AnnotationNetwork: "nope"}
			},
			fields: []string{"metadata.annotations[vmm.dev/network]"}, msg: `network "nope" does not exist`,
		},
		{
			name:   "multi-line kernel args",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationKernelArgs: "quiet\ninit=/bin/sh"} },
			fields: []string{"metadata.annotations[vmm.dev/kernel-args]"}, msg: "one line",
		},
		{
			name:   "unknown vmm.dev annotation (a typo)",
			mod:    func(p *corev1.Pod) { p.Annotations = map[string]string{"vmm.dev/brige": "vmmbr0"} },
			fields: []string{"metadata.annotations[vmm.dev/brige]"}, msg: "unknown vmm.dev annotation",
		},
		{
			name:   "a pod name longer than a label value",
			mod:    func(p *corev1.Pod) { p.Name = strings.Repeat("a", 64) },
			fields: []string{"metadata.name"}, msg: "at most 63",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod()
			tc.mod(pod)
			h := testHost()
			if tc.host != nil {
				tc.host(&h)
			}
			req, err := ToVM(pod, h)
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("want a refusal, got %v (request %v)", err, req)
			}
			var got []string
			for _, p := range r.Problems {
				got = append(got, p.Field)
			}
			if strings.Join(got, " ") != strings.Join(tc.fields, " ") {
				t.Errorf("fields\n got %q\nwant %q\n(%v)", got, tc.fields, err)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err.Error(), tc.msg)
			}
		})
	}
}

func metav1ObjectMeta(name, namespace, uid string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID(uid)}
}
