// Package provider is the Virtual Kubelet pod provider: it turns the pods
// bound to this node into VMs on its vmmd host, follows every VM through
// vmmd's WatchEvents stream (no polling) to keep the pod status current,
// re-adopts the VMs of a previous run and removes those whose pod is gone.
package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"vmm.dev/vmm/clients/kubelet/internal/podvm"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
	"vmm.dev/vmm/gen/go/vmm/v1/vmmv1connect"
)

// Event reasons recorded on pods.
const (
	EventRefused       = "Refused"
	EventCreated       = "VMCreated"
	EventStarted       = "VMStarted"
	EventLeased        = "VMLeased"
	EventLeaseLost     = "VMLeaseLost"
	EventForwardFailed = "VMForwardFailed"
	EventExited        = "VMExited"
	EventStartFailed   = "VMStartFailed"
	EventStopped       = "VMStopped"
	EventRemoved       = "VMRemoved"
	EventAdopted       = "VMAdopted"
	EventNoTokenVolume = "ServiceAccountTokenNotMounted"
)

// HostView returns the host as the pod mapping needs it, fresh.
type HostView func(ctx context.Context) (podvm.Host, error)

// PodLister finds pods of this node in the informer cache.
type PodLister func(namespace, name string) (*corev1.Pod, error)

// entry is what the provider knows of one pod and its VM.
type entry struct {
	pod      *corev1.Pod // latest pod object (spec from Kubernetes)
	vmID     string
	vm       *vmmv1.VmInfo
	refusal  *podvm.Refusal
	restarts int32
	lastExit *podvm.Exit
	instance string // instance id of the VM's latest start: a new one is a restart
	start    time.Time
	deleting bool
	removed  bool
	gone     string // the VM was removed outside Kubernetes
	// backoff of the next restart after a failed start; pending: one is scheduled.
	backoff time.Duration
	pending bool
	// retry: the VM could not be made; GetPod hides the entry so the pod
	// controller calls CreatePod again.
	retry bool
}

// Provider implements the Virtual Kubelet PodLifecycleHandler and PodNotifier.
type Provider struct {
	node     string
	nodeIP   string
	vmm      vmmv1connect.VmmServiceClient
	console  vmmv1connect.VmmServiceClient // bidirectional streams (AttachConsole); nil: no attach
	host     HostView
	recorder record.EventRecorder

	mu     sync.Mutex
	byKey  map[string]*entry // namespace/name
	byVM   map[string]*entry
	notify func(*corev1.Pod)
	now    func() time.Time
}

// New returns the provider of node `node` (InternalIP nodeIP). `console`
// serves attach and must speak a protocol with bidirectional streams; nil
// turns attach off.
func New(node, nodeIP string, vmm, console vmmv1connect.VmmServiceClient, host HostView, recorder record.EventRecorder) *Provider {
	return &Provider{
		node: node, nodeIP: nodeIP, vmm: vmm, console: console, host: host, recorder: recorder,
		byKey: map[string]*entry{}, byVM: map[string]*entry{},
		notify: func(*corev1.Pod) {}, now: time.Now,
	}
}

func key(namespace, name string) string { return namespace + "/" + name }

// Selector selects the VMs of this node.
func (p *Provider) Selector() string { return podvm.LabelNode + "=" + p.node }

// ----- startup ---------------------------------------------------------------

// Adopt takes over the VMs a previous run left on the host, before the pod
// controller starts (lookup must read a synced cache): a VM whose pod (same
// namespace, name and UID) exists is followed again; a VM whose pod is gone
// is stopped and removed.
func (p *Provider) Adopt(ctx context.Context, lookup PodLister) error {
	vms, err := p.listVMs(ctx)
	if err != nil {
		return err
	}
	for _, vm := range vms {
		l := vm.GetConfig().GetLabels()
		ns, name, uid := l[podvm.LabelPodNamespace], l[podvm.LabelPodName], l[podvm.LabelPodUID]
		if ns == "" || name == "" || uid == "" || vm.Id != podvm.VMID(uid) {
			log.G(ctx).Warnf("VM %s carries the label %s but no complete pod identity; leaving it alone", vm.Id, p.Selector())
			continue
		}
		pod, err := lookup(ns, name)
		if err != nil || pod == nil || string(pod.UID) != uid {
			log.G(ctx).Infof("removing VM %s: its pod %s (uid %s) is gone", vm.Id, key(ns, name), uid)
			if err := p.removeVM(ctx, vm.Id, 1); err != nil {
				log.G(ctx).WithError(err).Errorf("removing VM %s of a pod that is gone", vm.Id)
			}
			continue
		}
		e := &entry{pod: pod.DeepCopy(), vmID: vm.Id, vm: vm, instance: vm.InstanceId, start: vm.CreatedAt.AsTime(), restarts: restartsOf(pod)}
		if pod.Status.StartTime != nil {
			e.start = pod.Status.StartTime.Time
		}
		p.mu.Lock()
		p.byKey[key(ns, name)] = e
		p.byVM[e.vmID] = e
		p.mu.Unlock()
		p.event(e, corev1.EventTypeNormal, EventAdopted, "vmm-kubelet restarted; following VM %s again", vm.Id)
	}
	return nil
}

func restartsOf(pod *corev1.Pod) int32 {
	if len(pod.Status.ContainerStatuses) == 1 {
		return pod.Status.ContainerStatuses[0].RestartCount
	}
	return 0
}

func (p *Provider) listVMs(ctx context.Context) ([]*vmmv1.VmInfo, error) {
	var out []*vmmv1.VmInfo
	token := ""
	for page := 0; page < 1000; page++ {
		r, err := p.vmm.ListVms(ctx, connect.NewRequest(&vmmv1.ListVmsRequest{LabelSelector: p.Selector(), PageSize: 1000, PageToken: token}))
		if err != nil {
			return nil, fmt.Errorf("vmmd ListVms %s: %w", p.Selector(), err)
		}
		out = append(out, r.Msg.Vms...)
		if token = r.Msg.NextPageToken; token == "" {
			return out, nil
		}
	}
	return nil, errors.New("vmmd ListVms: more than 1000 pages")
}

// ----- PodLifecycleHandler -----------------------------------------------------

// CreatePod maps the pod to a VM, creates and starts it. A pod that cannot
// be a VM fails (phase Failed, reason UnsupportedPod, every field named).
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	return p.ensure(ctx, pod)
}

// UpdatePod takes the changes of a pod it already runs. Only image and
// kernel arguments can change: the VM restarts with them, as a container
// restarts with a new image; anything else is refused in an event.
func (p *Provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	return p.ensure(ctx, pod)
}

func (p *Provider) ensure(ctx context.Context, pod *corev1.Pod) error {
	k := key(pod.Namespace, pod.Name)
	p.mu.Lock()
	e := p.byKey[k]
	if e != nil && e.pod.UID != pod.UID {
		// A VM of an earlier pod with this name: it goes first.
		stale := e
		delete(p.byKey, k)
		p.mu.Unlock()
		if err := p.removeVM(ctx, stale.vmID, 1); err != nil {
			return err
		}
		p.mu.Lock()
		e = nil
	}
	if e != nil && (e.refusal != nil || e.deleting) {
		e.pod = pod.DeepCopy()
		p.mu.Unlock()
		return nil
	}
	fresh := e == nil
	if fresh {
		e = &entry{vmID: podvm.VMID(string(pod.UID)), start: p.now(), restarts: restartsOf(pod)}
		if pod.Status.StartTime != nil {
			e.start = pod.Status.StartTime.Time
		}
		p.byKey[k] = e
		p.byVM[e.vmID] = e
	}
	e.pod = pod.DeepCopy()
	p.mu.Unlock()

	h, err := p.host(ctx)
	if err != nil {
		p.setRetry(e, true)
		return fmt.Errorf("reading host %s: %w", p.node, err)
	}
	req, err := podvm.ToVM(pod, h)
	var refusal *podvm.Refusal
	if errors.As(err, &refusal) {
		if e.vm != nil {
			// An update the VM cannot take: the running VM stays as it is.
			p.event(e, corev1.EventTypeWarning, EventRefused, "update not applied: %s", refusal.Error())
			return nil
		}
		p.mu.Lock()
		e.refusal, e.retry = refusal, false
		p.mu.Unlock()
		p.event(e, corev1.EventTypeWarning, EventRefused, "%s", refusal.Error())
		p.publish(e)
		return nil
	}
	if err != nil {
		return err
	}
	if fresh || e.vm == nil || e.retry {
		return p.create(ctx, e, req)
	}
	return p.update(ctx, e, req)
}

func (p *Provider) setRetry(e *entry, v bool) {
	p.mu.Lock()
	e.retry = v
	p.mu.Unlock()
}

// create makes and starts the VM; an existing VM of this pod (left by a
// crash between create and start) is taken over.
func (p *Provider) create(ctx context.Context, e *entry, req *vmmv1.CreateVmRequest) error {
	for _, v := range e.pod.Spec.Volumes {
		if podvm.IsServiceAccountVolume(&v) {
			p.event(e, corev1.EventTypeNormal, EventNoTokenVolume, "volume %s (the service account token) is not given to the guest", v.Name)
		}
	}
	req.Start = false
	r, err := p.vmm.CreateVm(ctx, connect.NewRequest(req))
	var vm *vmmv1.VmInfo
	switch {
	case err == nil:
		vm = r.Msg.Vm
		p.event(e, corev1.EventTypeNormal, EventCreated, "created VM %s (%d vCPUs, %d MiB)", vm.Id, req.Config.Vcpus, req.Config.MemoryMib)
	case connect.CodeOf(err) == connect.CodeAlreadyExists:
		g, gerr := p.vmm.GetInfo(ctx, connect.NewRequest(&vmmv1.GetInfoRequest{Id: req.Id}))
		if gerr != nil {
			p.setRetry(e, true)
			return fmt.Errorf("vmmd CreateVm %s: %w", req.Id, err)
		}
		vm = g.Msg.Vm
	case connect.CodeOf(err) == connect.CodeInvalidArgument:
		return p.refuse(e, fmt.Sprintf("vmmd refused the VM: %s", errMessage(err)))
	default:
		p.setRetry(e, true)
		return fmt.Errorf("vmmd CreateVm %s: %w", req.Id, err)
	}
	p.mu.Lock()
	e.vm = vm
	p.mu.Unlock()
	if vm.Status == vmmv1.VmStatus_VM_STATUS_STOPPED || vm.Status == vmmv1.VmStatus_VM_STATUS_EXITED {
		if err := p.startVM(ctx, e); err != nil {
			return err
		}
	}
	p.setRetry(e, false)
	p.refresh(ctx, e)
	return nil
}

// refuse fails the pod with vmmd's own refusal of its VM.
func (p *Provider) refuse(e *entry, msg string) error {
	p.mu.Lock()
	e.refusal = &podvm.Refusal{Problems: []podvm.Problem{{Field: "spec", Message: msg}}}
	e.retry = false
	p.mu.Unlock()
	p.event(e, corev1.EventTypeWarning, EventRefused, "%s", msg)
	p.publish(e)
	return nil
}

// startVM starts the VM. When QEMU cannot start, restartPolicy Never fails
// the pod; otherwise it is tried again after a growing backoff.
func (p *Provider) startVM(ctx context.Context, e *entry) error {
	_, err := p.vmm.StartVm(ctx, connect.NewRequest(&vmmv1.StartVmRequest{Id: e.vmID}))
	if err == nil || connect.CodeOf(err) == connect.CodeFailedPrecondition && p.isLive(ctx, e.vmID) {
		return nil
	}
	if c := connect.CodeOf(err); c == connect.CodeUnavailable || c == connect.CodeUnknown || c == connect.CodeCanceled || c == connect.CodeDeadlineExceeded {
		return fmt.Errorf("vmmd StartVm %s: %w", e.vmID, err) // vmmd unreachable: the pod controller retries
	}
	msg := errMessage(err)
	p.mu.Lock()
	e.lastExit = &podvm.Exit{At: p.now(), Message: msg, StartFailed: true}
	never := e.pod.Spec.RestartPolicy == corev1.RestartPolicyNever
	p.mu.Unlock()
	p.event(e, corev1.EventTypeWarning, EventStartFailed, "%s", msg)
	if !never {
		p.restartLater(ctx, e)
	}
	p.refresh(ctx, e)
	return nil
}

func (p *Provider) isLive(ctx context.Context, id string) bool {
	g, err := p.vmm.GetInfo(ctx, connect.NewRequest(&vmmv1.GetInfoRequest{Id: id}))
	if err != nil {
		return false
	}
	s := g.Msg.Vm.Status
	return s == vmmv1.VmStatus_VM_STATUS_RUNNING || s == vmmv1.VmStatus_VM_STATUS_STARTING
}

// update applies an image or kernel-argument change by restarting the VM
// with the new boot settings; other differences are refused in an event.
func (p *Provider) update(ctx context.Context, e *entry, req *vmmv1.CreateVmRequest) error {
	cur := e.vm.GetConfig()
	if cur == nil {
		g, err := p.vmm.GetInfo(ctx, connect.NewRequest(&vmmv1.GetInfoRequest{Id: e.vmID}))
		if err != nil {
			return fmt.Errorf("vmmd GetInfo %s: %w", e.vmID, err)
		}
		cur = g.Msg.Vm.GetConfig()
	}
	want := req.Config
	var fixed []string
	if cur.Vcpus != want.Vcpus || cur.MemoryMib != want.MemoryMib {
		fixed = append(fixed, "spec.containers[0].resources")
	}
	if len(cur.Nics) != len(want.Nics) || (len(cur.Nics) > 0 && (cur.Nics[0].Mode != want.Nics[0].Mode ||
		(want.Nics[0].Bridge != "" && cur.Nics[0].Bridge != want.Nics[0].Bridge) || cur.Nics[0].NetworkId != want.Nics[0].NetworkId)) {
		fixed = append(fixed, "metadata.annotations (networking)")
	}
	if len(fixed) > 0 {
		p.event(e, corev1.EventTypeWarning, EventRefused, "update not applied: %v cannot change on a running VM pod; delete the pod to recreate it", fixed)
	}
	if cur.Kernel == want.Kernel && cur.Initrd == want.Initrd && cur.Cmdline == want.Cmdline {
		return nil
	}
	_, err := p.vmm.UpdateVm(ctx, connect.NewRequest(&vmmv1.UpdateVmRequest{
		Id: e.vmID, Kernel: &want.Kernel, Initrd: &want.Initrd, Cmdline: &want.Cmdline,
	}))
	if err != nil {
		return fmt.Errorf("vmmd UpdateVm %s: %w", e.vmID, err)
	}
	if p.isLive(ctx, e.vmID) {
		if _, err := p.vmm.StopVm(ctx, connect.NewRequest(&vmmv1.StopVmRequest{Id: e.vmID, TimeoutSeconds: ptr.To(graceSeconds(e.pod))})); err != nil {
			return fmt.Errorf("vmmd StopVm %s: %w", e.vmID, err)
		}
	}
	if err := p.startVM(ctx, e); err != nil {
		return err
	}
	p.refresh(ctx, e)
	return nil
}

// DeletePod stops the VM (gracefully within the pod's grace period), removes
// it, and reports the pod terminated. Repeated calls are harmless.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	k := key(pod.Namespace, pod.Name)
	p.mu.Lock()
	e := p.byKey[k]
	if e == nil || e.pod.UID != pod.UID {
		// Not known by name (or a newer pod has the name): find it by VM id.
		e = p.byVM[podvm.VMID(string(pod.UID))]
	}
	if e == nil {
		p.mu.Unlock()
		return errdefs.NotFoundf("pod %s is not on node %s", k, p.node)
	}
	e.deleting = true
	e.pod.DeletionTimestamp, e.pod.DeletionGracePeriodSeconds = pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds
	p.mu.Unlock()

	if e.refusal == nil {
		if err := p.removeVM(ctx, e.vmID, graceSeconds(pod)); err != nil {
			return err
		}
		p.event(e, corev1.EventTypeNormal, EventRemoved, "stopped and removed VM %s", e.vmID)
	}
	p.mu.Lock()
	e.removed = e.refusal == nil
	e.vm = nil
	if p.byKey[k] == e {
		delete(p.byKey, k)
	}
	delete(p.byVM, e.vmID)
	p.mu.Unlock()
	p.publish(e)
	return nil
}

// removeVM stops (graceful up to `grace` seconds, then killed) and removes
// a VM; one that is already gone is fine.
func (p *Provider) removeVM(ctx context.Context, id string, grace uint32) error {
	_, err := p.vmm.StopVm(ctx, connect.NewRequest(&vmmv1.StopVmRequest{Id: id, TimeoutSeconds: &grace}))
	switch connect.CodeOf(err) {
	case connect.CodeNotFound:
		return nil
	case connect.CodeFailedPrecondition: // not running
	default:
		if err != nil {
			return fmt.Errorf("vmmd StopVm %s: %w", id, err)
		}
	}
	_, err = p.vmm.RemoveVm(ctx, connect.NewRequest(&vmmv1.RemoveVmRequest{Id: id, Force: true}))
	if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		return fmt.Errorf("vmmd RemoveVm %s: %w", id, err)
	}
	return nil
}

// graceSeconds is the pod's deletion grace period for the ACPI power-down,
// 1-3600 s (vmmd's bounds).
func graceSeconds(pod *corev1.Pod) uint32 {
	g := int64(30)
	if pod.DeletionGracePeriodSeconds != nil {
		g = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	return uint32(min(max(g, 1), 3600))
}

// errMessage is a vmmd error's message without the code prefix.
func errMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// GetPod returns the pod with its current status, or nil when this node
// does not run it (or must be asked to create it again).
func (p *Provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byKey[key(namespace, name)]
	if e == nil || e.retry {
		return nil, errdefs.NotFoundf("pod %s/%s is not on node %s", namespace, name, p.node)
	}
	return p.podLocked(e), nil
}

// GetPodStatus returns the pod's current status.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod this node runs.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.byKey))
	for _, e := range p.byKey {
		out = append(out, p.podLocked(e))
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i].Namespace, out[i].Name) < key(out[j].Namespace, out[j].Name) })
	return out, nil
}

// NotifyPods registers the pod controller's status callback.
func (p *Provider) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	p.notify = cb
	p.mu.Unlock()
}

// podLocked is the entry's pod with its status computed now.
func (p *Provider) podLocked(e *entry) *corev1.Pod {
	pod := e.pod.DeepCopy()
	pod.Status = podvm.Status(e.pod, podvm.Observed{
		VM: e.vm, Removed: e.removed, Refusal: e.refusal, Gone: e.gone, Restarts: e.restarts, LastExit: e.lastExit,
		NodeIP: p.nodeIP, StartTime: e.start,
	}, p.now())
	return pod
}

// publish hands the entry's current status to the pod controller.
func (p *Provider) publish(e *entry) {
	p.mu.Lock()
	pod, cb := p.podLocked(e), p.notify
	p.mu.Unlock()
	cb(pod)
}

func (p *Provider) event(e *entry, kind, reason, format string, args ...any) {
	if p.recorder != nil && e.pod != nil {
		p.recorder.Eventf(e.pod, kind, reason, format, args...)
	}
}
