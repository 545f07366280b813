package provider

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"vmm.dev/vmm/clients/kubelet/internal/podvm"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

const tap = vmmv1.NetworkingMode_NETWORKING_MODE_TAP

type harness struct {
	p      *Provider
	vmm    *fakeVmm
	events *record.FakeRecorder
	mu     sync.Mutex
	seen   []*corev1.Pod
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{vmm: newFakeVmm(), events: record.NewFakeRecorder(100)}
	host := func(context.Context) (podvm.Host, error) {
		return podvm.Host{NodeName: "host-a", NodeIP: "127.0.0.2", CPUs: 4, Modes: []vmmv1.NetworkingMode{tap},
			DefaultMode: tap, Bridges: []string{"br0"}, ForwardService: true, Images: []podvm.Image{{Name: "busybox"}}}, nil
	}
	h.p = New("host-a", "127.0.0.2", h.vmm, nil, host, h.events)
	h.p.NotifyPods(context.Background(), func(p *corev1.Pod) {
		h.mu.Lock()
		h.seen = append(h.seen, p)
		h.mu.Unlock()
	})
	return h
}

// last is the latest status the pod controller was notified of.
func (h *harness) last(t *testing.T) *corev1.Pod {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		t.Fatal("no pod status was published")
	}
	return h.seen[len(h.seen)-1]
}

func (h *harness) eventReasons() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, strings.Fields(e)[1])
		default:
			return out
		}
	}
}

func vmPod(name, uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: typesUID(uid)},
		Spec: corev1.PodSpec{
			NodeName:                      "host-a",
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](7),
			Containers:                    []corev1.Container{{Name: "vm", Image: "busybox"}},
		},
	}
}

func TestCreatePodMakesAndStartsTheVMWithThePodsIdentity(t *testing.T) {
	h := newHarness(t)
	pod := vmPod("web-0", "u-1")
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.vmm.Calls(), "; "); got != "CreateVm pod-u-1 start=false; StartVm pod-u-1" {
		t.Errorf("calls: %s", got)
	}
	vm := h.vmm.vms["pod-u-1"]
	want := map[string]string{podvm.LabelNode: "host-a", podvm.LabelPodNamespace: "default", podvm.LabelPodName: "web-0", podvm.LabelPodUID: "u-1"}
	for k, v := range want {
		if vm.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, vm.Config.Labels[k], v)
		}
	}
	got, err := h.p.GetPod(context.Background(), "default", "web-0")
	if err != nil || got.Status.Phase != corev1.PodRunning {
		t.Fatalf("GetPod: %v %v", got, err)
	}
	if got.Status.ContainerStatuses[0].Ready {
		t.Error("ready without a lease")
	}
	// The lease arrives: the watch refreshes the pod, which becomes ready with the lease as pod IP.
	h.vmm.set("pod-u-1", func(v *vmmv1.VmInfo) { v.Nics[0].Lease = &vmmv1.Lease{Ip: "10.91.0.50"} })
	h.p.onEvent(context.Background(), "pod-u-1", &vmmv1.VmEvent{Kind: "lease", Message: "nics[0] leased 10.91.0.50", Time: timestamppb.Now()})
	last := h.last(t)
	if last.Status.PodIP != "10.91.0.50" || !last.Status.ContainerStatuses[0].Ready {
		t.Errorf("after the lease: ip %q ready %v", last.Status.PodIP, last.Status.ContainerStatuses[0].Ready)
	}
	if r := h.eventReasons(); strings.Join(r, ",") != "VMCreated,VMLeased" {
		t.Errorf("events %v", r)
	}
}

func TestCreatePodRefusesWhatItCannotRun(t *testing.T) {
	h := newHarness(t)
	pod := vmPod("two", "u-2")
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "b", Image: "busybox"})
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if c := h.vmm.Calls(); len(c) != 0 {
		t.Errorf("vmmd was called: %v", c)
	}
	last := h.last(t)
	if last.Status.Phase != corev1.PodFailed || last.Status.Reason != podvm.ReasonUnsupported || !strings.Contains(last.Status.Message, "spec.containers: has 2 containers") {
		t.Errorf("status %+v", last.Status)
	}
	if r := h.eventReasons(); len(r) != 1 || r[0] != EventRefused {
		t.Errorf("events %v", r)
	}
	// vmmd's own refusal of the VM fails the pod the same way.
	big := vmPod("big", "u-3")
	h.vmm.vms = map[string]*vmmv1.VmInfo{}
	hostWith100CPUs := h.p.host
	h.p.host = func(ctx context.Context) (podvm.Host, error) {
		hh, err := hostWith100CPUs(ctx)
		hh.CPUs = 100
		return hh, err
	}
	big.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: mustQuantity("65")}
	if err := h.p.CreatePod(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if last := h.last(t); last.Status.Phase != corev1.PodFailed || !strings.Contains(last.Status.Message, "vmmd refused the VM: config.vcpus: is 65") {
		t.Errorf("status %+v", last.Status)
	}
}

func TestStartFailureFailsANeverPodAndRetriesOthers(t *testing.T) {
	h := newHarness(t)
	h.vmm.startErr = connect.NewError(connect.CodeInternal, errors.New("qemu: could not open /dev/kvm"))
	never := vmPod("once", "u-4")
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	if err := h.p.CreatePod(context.Background(), never); err != nil {
		t.Fatal(err)
	}
	if last := h.last(t); last.Status.Phase != corev1.PodFailed || last.Status.ContainerStatuses[0].State.Terminated.Reason != podvm.ReasonStartError {
		t.Errorf("Never: %+v", last.Status)
	}
	always := vmPod("again", "u-5")
	if err := h.p.CreatePod(context.Background(), always); err != nil {
		t.Fatal(err)
	}
	if last := h.last(t); last.Status.Phase != corev1.PodRunning || last.Status.ContainerStatuses[0].State.Waiting.Reason != podvm.ReasonRestarting {
		t.Errorf("Always: %+v", last.Status)
	}
	h.p.mu.Lock()
	pending := h.p.byVM["pod-u-5"].pending
	h.p.mu.Unlock()
	if !pending {
		t.Error("no restart scheduled")
	}
	// An unreachable vmmd is an error the pod controller retries, and GetPod
	// hides the pod so that it calls CreatePod again.
	h.vmm.startErr = connect.NewError(connect.CodeUnavailable, errors.New("dial unix: connection refused"))
	if err := h.p.CreatePod(context.Background(), vmPod("later", "u-6")); err == nil {
		t.Error("no error while vmmd is unreachable")
	}
}

func TestDeletePodStopsWithinTheGracePeriodRemovesAndReportsTermination(t *testing.T) {
	h := newHarness(t)
	pod := vmPod("web-0", "u-1")
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	del := pod.DeepCopy()
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &metav1.Time{Time: time.Now()}, ptr.To[int64](3)
	if err := h.p.DeletePod(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	calls := h.vmm.Calls()
	if got := strings.Join(calls[len(calls)-2:], "; "); got != "StopVm pod-u-1 timeout=3; RemoveVm pod-u-1" {
		t.Errorf("calls: %s", got)
	}
	last := h.last(t)
	if last.Status.Phase != corev1.PodSucceeded || last.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Errorf("status %+v", last.Status)
	}
	if _, err := h.p.GetPod(context.Background(), "default", "web-0"); err == nil {
		t.Error("GetPod still finds the deleted pod")
	}
	// Again: harmless.
	if err := h.p.DeletePod(context.Background(), del); err == nil || !strings.Contains(err.Error(), "not on node") {
		t.Errorf("second DeletePod: %v", err)
	}
}

func TestAdoptFollowsVMsWhosePodExistsAndRemovesTheRest(t *testing.T) {
	h := newHarness(t)
	for _, p := range []*corev1.Pod{vmPod("kept", "u-k"), vmPod("gone", "u-g"), vmPod("replaced", "u-old")} {
		if err := h.p.CreatePod(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	// A VM of another node is never touched.
	h.vmm.vms["pod-other"] = &vmmv1.VmInfo{Id: "pod-other", Config: &vmmv1.VmConfig{Labels: map[string]string{podvm.LabelNode: "host-b"}}}
	kept := vmPod("kept", "u-k")
	kept.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "vm", RestartCount: 3}}
	cluster := map[string]*corev1.Pod{"default/kept": kept, "default/replaced": vmPod("replaced", "u-new")}
	lookup := func(ns, name string) (*corev1.Pod, error) {
		if p, ok := cluster[ns+"/"+name]; ok {
			return p, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
	}

	fresh := New("host-a", "127.0.0.2", h.vmm, nil, h.p.host, h.events)
	fresh.NotifyPods(context.Background(), func(*corev1.Pod) {})
	before := len(h.vmm.Calls())
	if err := fresh.Adopt(context.Background(), lookup); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.vmm.Calls()[before:], "; ")
	want := "ListVms vmm.dev/node=host-a; StopVm pod-u-g timeout=1; RemoveVm pod-u-g; StopVm pod-u-old timeout=1; RemoveVm pod-u-old"
	if got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
	pods, _ := fresh.GetPods(context.Background())
	if len(pods) != 1 || pods[0].Name != "kept" || pods[0].Status.ContainerStatuses[0].RestartCount != 3 || pods[0].Status.Phase != corev1.PodRunning {
		t.Errorf("adopted %v", pods)
	}
	if _, ok := h.vmm.vms["pod-other"]; !ok {
		t.Error("another node's VM was removed")
	}
}

func TestVMEventsOutsideKubernetes(t *testing.T) {
	h := newHarness(t)
	if err := h.p.CreatePod(context.Background(), vmPod("web-0", "u-1")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := timestamppb.Now()
	// The guest exits and vmmd restarts it (auto_restart): a new instance is one restart.
	h.vmm.set("pod-u-1", func(v *vmmv1.VmInfo) { v.Status = vmmv1.VmStatus_VM_STATUS_EXITED })
	h.p.onEvent(ctx, "pod-u-1", &vmmv1.VmEvent{Kind: "exited", Message: "QEMU exited on its own", Time: now})
	if last := h.last(t); last.Status.ContainerStatuses[0].State.Waiting == nil {
		t.Errorf("after exit: %+v", last.Status.ContainerStatuses[0].State)
	}
	h.vmm.set("pod-u-1", func(v *vmmv1.VmInfo) { v.Status, v.InstanceId = vmmv1.VmStatus_VM_STATUS_RUNNING, "i-2" })
	h.p.onEvent(ctx, "pod-u-1", &vmmv1.VmEvent{Kind: "started", Message: "running", Time: now})
	cs := h.last(t).Status.ContainerStatuses[0]
	if cs.RestartCount != 1 || cs.State.Running == nil || cs.LastTerminationState.Terminated == nil {
		t.Errorf("after the restart: %+v", cs)
	}
	// Someone removes the VM through the vmm API: the pod fails, saying so.
	delete(h.vmm.vms, "pod-u-1")
	h.p.onEvent(ctx, "pod-u-1", &vmmv1.VmEvent{Kind: "removed", Message: "removed", Time: now})
	if last := h.last(t); last.Status.Phase != corev1.PodFailed || last.Status.Reason != podvm.ReasonVMGone {
		t.Errorf("after removal: %+v", last.Status)
	}
	// Events of VMs that are not pods of this node are ignored.
	n := len(h.seen)
	h.p.onEvent(ctx, "someone-elses", &vmmv1.VmEvent{Kind: "started", Time: now})
	if len(h.seen) != n {
		t.Error("published for a foreign VM")
	}
}

func TestUpdatePodRestartsTheVMWithNewKernelArgs(t *testing.T) {
	h := newHarness(t)
	pod := vmPod("web-0", "u-1")
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	up := pod.DeepCopy()
	up.Annotations = map[string]string{podvm.AnnotationKernelArgs: "quiet"}
	if err := h.p.UpdatePod(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	calls := h.vmm.Calls()
	if got := strings.Join(calls[2:], "; "); got != `UpdateVm pod-u-1 cmdline="console=ttyS0 quiet"; StopVm pod-u-1 timeout=7; StartVm pod-u-1` {
		t.Errorf("calls: %s", got)
	}
	// A networking change cannot be applied: refused in an event, nothing called.
	net := up.DeepCopy()
	net.Annotations[podvm.AnnotationBridge] = "br0"
	h.eventReasons()
	if err := h.p.UpdatePod(context.Background(), net); err != nil {
		t.Fatal(err)
	}
	if r := h.eventReasons(); len(r) != 1 || r[0] != EventRefused {
		t.Errorf("events %v", r)
	}
	if len(h.vmm.Calls()) != len(calls) {
		t.Errorf("vmmd called: %v", h.vmm.Calls()[len(calls):])
	}
}

func typesUID(s string) types.UID { return types.UID(s) }

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
