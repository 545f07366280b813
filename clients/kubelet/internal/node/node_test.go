package node

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"vmm.dev/vmm/clients/kubelet/internal/config"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

func meta() *vmmv1.GetMetaResponse {
	return &vmmv1.GetMetaResponse{
		Version: "0.1.0", QemuVersion: "7.2.22", Platform: "linux/x64", HostCpus: 8, HostMemoryBytes: 16 << 30,
		NetworkingModes: []vmmv1.NetworkingMode{
			vmmv1.NetworkingMode_NETWORKING_MODE_USER, vmmv1.NetworkingMode_NETWORKING_MODE_TAP, vmmv1.NetworkingMode_NETWORKING_MODE_CUSTOM,
		},
		Bridges: []string{"vmmbr0", "br-lab"},
	}
}

func cfg() *config.Config {
	c := config.Default()
	c.NodeName, c.NodeIP = "host-a", "10.0.0.5"
	c.ReservedCPU = resource.MustParse("1")
	return &c
}

func TestBuild(t *testing.T) {
	n := Build(cfg(), Host{Meta: meta(), Networks: []string{"lab"}, Images: []*vmmv1.Image{{Name: "busybox"}, {Name: "odd-"}}})
	for k, v := range map[string]string{
		"networking-mode.vmm.dev/user": "true", "networking-mode.vmm.dev/tap": "true",
		"bridge.vmm.dev/vmmbr0": "true", "bridge.vmm.dev/br-lab": "true", "network.vmm.dev/lab": "true", "image.vmm.dev/busybox": "true",
		"kubernetes.io/hostname": "host-a", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "virtual-kubelet",
	} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if _, ok := n.Labels["image.vmm.dev/odd-"]; ok {
		t.Error("an image name that is no label name became a label")
	}
	if _, ok := n.Labels["networking-mode.vmm.dev/custom"]; ok {
		t.Error("custom netdevs are offered to pods")
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0] != Taint {
		t.Errorf("taints %v", n.Spec.Taints)
	}
	cpu, mem := n.Status.Allocatable[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceMemory]
	if n.Status.Capacity.Cpu().Value() != 8 || cpu.Value() != 7 || mem.Value() != 16<<30-512<<20 {
		t.Errorf("capacity %v allocatable %v", n.Status.Capacity, n.Status.Allocatable)
	}
	if n.Status.Addresses[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}) || n.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("addresses %v endpoint %v", n.Status.Addresses, n.Status.DaemonEndpoints)
	}
	if c := n.Status.Conditions[0]; c.Type != corev1.NodeReady || c.Status != corev1.ConditionTrue {
		t.Errorf("ready %+v", c)
	}
}

func TestBuildWithoutQEMUIsNotReadyAndReservesNeverGoNegative(t *testing.T) {
	m := meta()
	m.QemuVersion = ""
	c := cfg()
	c.ReservedCPU = resource.MustParse("32")
	n := Build(c, Host{Meta: m})
	if r := n.Status.Conditions[0]; r.Status != corev1.ConditionFalse || r.Reason != "QEMUNotFound" {
		t.Errorf("ready %+v", r)
	}
	if cpu := n.Status.Allocatable[corev1.ResourceCPU]; cpu.Sign() != 0 {
		t.Errorf("allocatable cpu %v", cpu.String())
	}
}
