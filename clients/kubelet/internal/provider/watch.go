package provider

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"

	"vmm.dev/vmm/clients/kubelet/internal/podvm"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

// Restart backoff after QEMU failed to start (as the kubelet's crash-loop
// backoff: doubling, capped).
const (
	restartBackoffMin = 10 * time.Second
	restartBackoffMax = 5 * time.Minute
)

// Run follows vmmd's WatchEvents stream until ctx ends; the pod status of a
// VM changes only when an event of that VM arrives. When the stream breaks
// it reconnects (backing off up to 10 s) and, once subscribed again,
// refreshes every VM once: events may have been missed meanwhile.
func (p *Provider) Run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		subscribed, err := p.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff = 500 * time.Millisecond
		}
		log.G(ctx).WithError(err).Warnf("vmmd event stream ended; reconnecting in %s", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (p *Provider) watchOnce(ctx context.Context) (subscribed bool, err error) {
	stream, err := p.vmm.WatchEvents(ctx, connect.NewRequest(&vmmv1.WatchEventsRequest{}))
	if err != nil {
		return false, err
	}
	defer stream.Close()
	for stream.Receive() {
		m := stream.Msg()
		if m.Subscribed {
			subscribed = true
			p.resync(ctx)
			continue
		}
		if m.Event != nil {
			p.onEvent(ctx, m.VmId, m.Event)
		}
	}
	return subscribed, stream.Err()
}

// resync refreshes every VM this node runs.
func (p *Provider) resync(ctx context.Context) {
	p.mu.Lock()
	entries := make([]*entry, 0, len(p.byVM))
	for _, e := range p.byVM {
		entries = append(entries, e)
	}
	p.mu.Unlock()
	for _, e := range entries {
		p.refresh(ctx, e)
	}
}

// onEvent turns one VM event into pod events and a fresh pod status.
func (p *Provider) onEvent(ctx context.Context, vmID string, ev *vmmv1.VmEvent) {
	p.mu.Lock()
	e := p.byVM[vmID]
	var deleting bool
	var policy corev1.RestartPolicy
	if e != nil {
		deleting, policy = e.deleting, e.pod.Spec.RestartPolicy
	}
	p.mu.Unlock()
	if e == nil {
		return
	}
	at := ev.Time.AsTime()
	switch ev.Kind {
	case "started":
		p.event(e, corev1.EventTypeNormal, EventStarted, "VM %s: %s", vmID, ev.Message)
	case "lease":
		p.event(e, corev1.EventTypeNormal, EventLeased, "VM %s: %s", vmID, ev.Message)
	case "lease_mismatch", "lease_revoked", "lease_silent":
		p.event(e, corev1.EventTypeWarning, EventLeaseLost, "VM %s: %s", vmID, ev.Message)
	case "forward_failed":
		p.event(e, corev1.EventTypeWarning, EventForwardFailed, "VM %s: %s", vmID, ev.Message)
	case "exited":
		p.setExit(e, &podvm.Exit{At: at, Message: ev.Message})
		p.event(e, corev1.EventTypeNormal, EventExited, "VM %s: %s", vmID, ev.Message)
	case "start_failed":
		p.setExit(e, &podvm.Exit{At: at, Message: ev.Message, StartFailed: true})
		p.event(e, corev1.EventTypeWarning, EventStartFailed, "VM %s: %s", vmID, ev.Message)
		if !deleting && policy != corev1.RestartPolicyNever {
			p.restartLater(ctx, e)
		}
	case "stopped":
		if !deleting {
			// Stopped through the vmm API, not by Kubernetes.
			p.setExit(e, &podvm.Exit{At: at, Message: "stopped through the vmm API"})
			p.event(e, corev1.EventTypeWarning, EventStopped, "VM %s was stopped outside Kubernetes", vmID)
			if policy == corev1.RestartPolicyAlways || policy == "" {
				p.restartLater(ctx, e)
			}
		}
	case "removed":
		if !deleting {
			p.mu.Lock()
			e.vm, e.gone = nil, "VM "+vmID+" was removed through the vmm API"
			p.mu.Unlock()
			p.event(e, corev1.EventTypeWarning, EventRemoved, "VM %s was removed outside Kubernetes", vmID)
			p.publish(e)
		}
		return
	}
	if !deleting {
		p.refresh(ctx, e)
	}
}

func (p *Provider) setExit(e *entry, x *podvm.Exit) {
	p.mu.Lock()
	e.lastExit = x
	p.mu.Unlock()
}

// refresh reads the VM's current state and publishes the pod status. A new
// instance id means the VM started again: one more restart.
func (p *Provider) refresh(ctx context.Context, e *entry) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	g, err := p.vmm.GetInfo(ctx, connect.NewRequest(&vmmv1.GetInfoRequest{Id: e.vmID, MaxEvents: 1}))
	if err != nil {
		if connect.CodeOf(err) != connect.CodeNotFound {
			log.G(ctx).WithError(err).Warnf("vmmd GetInfo %s", e.vmID)
		}
		return
	}
	vm := g.Msg.Vm
	p.mu.Lock()
	if e.deleting || e.gone != "" {
		p.mu.Unlock()
		return
	}
	if vm.InstanceId != "" {
		if e.instance != "" && vm.InstanceId != e.instance {
			e.restarts++
		}
		e.instance = vm.InstanceId
	}
	e.vm = vm
	p.mu.Unlock()
	p.publish(e)
}

// restartLater starts the VM again after a backoff, unless the pod is being
// deleted by then or the VM already runs again.
func (p *Provider) restartLater(ctx context.Context, e *entry) {
	p.mu.Lock()
	if e.pending {
		p.mu.Unlock()
		return
	}
	e.pending = true
	if e.backoff == 0 {
		e.backoff = restartBackoffMin
	} else {
		e.backoff = min(2*e.backoff, restartBackoffMax)
	}
	d := e.backoff
	p.mu.Unlock()
	time.AfterFunc(d, func() {
		p.mu.Lock()
		e.pending = false
		skip := e.deleting || e.gone != "" || p.byVM[e.vmID] != e
		p.mu.Unlock()
		if skip || ctx.Err() != nil || p.isLive(ctx, e.vmID) {
			return
		}
		if _, err := p.vmm.StartVm(ctx, connect.NewRequest(&vmmv1.StartVmRequest{Id: e.vmID})); err != nil {
			log.G(ctx).WithError(err).Warnf("restarting VM %s", e.vmID)
		}
	})
}
