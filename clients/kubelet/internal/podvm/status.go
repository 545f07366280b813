package podvm

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

// Container state reasons this mapping reports.
const (
	ReasonCreating    = "ContainerCreating" // VM being created or booting for the first time
	ReasonRestarting  = "Restarting"        // VM exited and is being started again
	ReasonCompleted   = "Completed"         // VM exited on its own
	ReasonStopped     = "Stopped"           // VM stopped and removed for the pod's deletion
	ReasonStartError  = "StartError"        // QEMU could not be started
	ReasonUnsupported = "UnsupportedPod"    // the pod cannot be a VM (see the message)
	ReasonVMGone      = "VMRemoved"         // the VM was removed outside Kubernetes
)

// Exit describes how the VM's last run ended.
type Exit struct {
	At      time.Time
	Message string
	// StartFailed: QEMU never ran (the exit is a failure).
	StartFailed bool
}

// Observed is what the provider knows of a pod's VM.
type Observed struct {
	// VM is the VM's latest info; nil when it does not exist (yet, or any more).
	VM *vmmv1.VmInfo
	// Removed: the pod was deleted and its VM stopped and removed.
	Removed bool
	// Refusal: the pod cannot become a VM.
	Refusal *Refusal
	// Gone: the VM was removed outside Kubernetes (the message says how).
	Gone string
	// Restarts counts the VM's starts after the first.
	Restarts int32
	// LastExit is the end of the previous run, if any.
	LastExit *Exit
	// NodeIP is the node's address (status.hostIP).
	NodeIP string
	// StartTime is when the pod was first seen by this node.
	StartTime time.Time
}

// ContainerID is the container id reported for a VM run.
func ContainerID(vm *vmmv1.VmInfo) string {
	if vm == nil || vm.InstanceId == "" {
		return ""
	}
	return "vmm://" + vm.Id + "/" + vm.InstanceId
}

// LeaseIP is the IPv4 lease of NIC 0 once vmmd believes it (verified on
// the wire, or trusted with verification off), or "". A lease still
// pending verification has no forwards yet and is not the pod's address.
func LeaseIP(vm *vmmv1.VmInfo) string {
	if vm == nil || len(vm.Nics) == 0 || vm.Nics[0].Lease == nil || vm.Nics[0].Lease.Verification == vmmv1.LeaseVerification_LEASE_VERIFICATION_PENDING {
		return ""
	}
	return vm.Nics[0].Lease.Ip
}

// leaseSilent says whether NIC 0's lease stopped answering (its forwards are dropped).
func leaseSilent(vm *vmmv1.VmInfo) bool {
	return len(vm.Nics) > 0 && vm.Nics[0].Lease != nil && vm.Nics[0].Lease.Verification == vmmv1.LeaseVerification_LEASE_VERIFICATION_SILENT
}

// Status computes the pod status from what is observed of its VM. The
// pod's own status contributes what only the API server decides (qosClass).
func Status(pod *corev1.Pod, o Observed, now time.Time) corev1.PodStatus {
	st := corev1.PodStatus{
		QOSClass:  pod.Status.QOSClass,
		HostIP:    o.NodeIP,
		StartTime: &metav1.Time{Time: o.StartTime},
	}
	if o.NodeIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: o.NodeIP}}
	}
	cs := corev1.ContainerStatus{
		RestartCount: o.Restarts,
		ContainerID:  ContainerID(o.VM),
	}
	if len(pod.Spec.Containers) > 0 {
		cs.Name = pod.Spec.Containers[0].Name
		cs.Image = pod.Spec.Containers[0].Image
		cs.ImageID = "vmm-image://" + pod.Spec.Containers[0].Image
	}
	if o.LastExit != nil {
		cs.LastTerminationState = corev1.ContainerState{Terminated: terminated(o.LastExit, "")}
	}
	ready := false
	switch {
	case o.Refusal != nil:
		st.Phase = corev1.PodFailed
		st.Reason = ReasonUnsupported
		st.Message = o.Refusal.Error()
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: ReasonUnsupported, Message: st.Message, FinishedAt: metav1.Time{Time: now},
		}}
		cs.LastTerminationState = corev1.ContainerState{}
	case o.Gone != "":
		st.Phase = corev1.PodFailed
		st.Reason = ReasonVMGone
		st.Message = o.Gone
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: ReasonVMGone, Message: o.Gone, FinishedAt: metav1.Time{Time: now},
		}}
	case o.Removed:
		st.Phase = corev1.PodSucceeded
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: ReasonStopped, Message: "the VM was stopped and removed", FinishedAt: metav1.Time{Time: now},
			ContainerID: cs.ContainerID,
		}}
	case o.VM == nil:
		st.Phase = corev1.PodPending
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonCreating}}
	default:
		st.Phase, cs.State, ready = vmState(pod, o, &cs)
		if ip := LeaseIP(o.VM); ip != "" && st.Phase == corev1.PodRunning {
			st.PodIP = ip
			st.PodIPs = []corev1.PodIP{{IP: ip}}
		}
	}
	cs.Ready = ready
	started := cs.State.Running != nil
	cs.Started = &started
	if prev := pod.Status.ContainerStatuses; len(prev) == 1 && prev[0].State.Terminated != nil && cs.State.Terminated != nil &&
		prev[0].State.Terminated.Reason == cs.State.Terminated.Reason && cs.State.Terminated.Reason != ReasonCompleted {
		cs.State.Terminated.FinishedAt = prev[0].State.Terminated.FinishedAt // unchanged since it was reported
	}
	st.ContainerStatuses = []corev1.ContainerStatus{cs}
	st.Conditions = conditions(pod.Status.Conditions, ready, now)
	return st
}

// vmState maps the VM's status to the pod phase and container state.
func vmState(pod *corev1.Pod, o Observed, cs *corev1.ContainerStatus) (corev1.PodPhase, corev1.ContainerState, bool) {
	vm := o.VM
	restarting := func() (corev1.PodPhase, corev1.ContainerState, bool) {
		if o.Restarts == 0 && o.LastExit == nil {
			return corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonCreating}}, false
		}
		return corev1.PodRunning, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonRestarting}}, false
	}
	switch vm.Status {
	case vmmv1.VmStatus_VM_STATUS_RUNNING, vmmv1.VmStatus_VM_STATUS_STOPPING:
		run := &corev1.ContainerStateRunning{}
		if vm.StartedAt != nil {
			run.StartedAt = metav1.Time{Time: vm.StartedAt.AsTime()}
		}
		ready := vm.Status == vmmv1.VmStatus_VM_STATUS_RUNNING
		if len(vm.Nics) > 0 && LeasesAddress(vm.Nics[0].Mode) && (LeaseIP(vm) == "" || leaseSilent(vm)) {
			ready = false // no believed address: nothing reaches it
		}
		return corev1.PodRunning, corev1.ContainerState{Running: run}, ready
	case vmmv1.VmStatus_VM_STATUS_STOPPED, vmmv1.VmStatus_VM_STATUS_EXITED:
		if o.LastExit == nil {
			// Created, not started yet.
			return restarting()
		}
		keepGoing := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" ||
			(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && o.LastExit.StartFailed)
		if keepGoing {
			return corev1.PodRunning, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: ReasonRestarting, Message: o.LastExit.Message,
			}}, false
		}
		cs.LastTerminationState = corev1.ContainerState{}
		phase := corev1.PodSucceeded
		if o.LastExit.StartFailed {
			phase = corev1.PodFailed
		}
		return phase, corev1.ContainerState{Terminated: terminated(o.LastExit, cs.ContainerID)}, false
	default: // STARTING, or a status this mapping does not know yet
		return restarting()
	}
}

func terminated(e *Exit, id string) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{Reason: ReasonCompleted, Message: e.Message, FinishedAt: metav1.Time{Time: e.At}, ContainerID: id}
	if e.StartFailed {
		t.ExitCode = 1
		t.Reason = ReasonStartError
	}
	return t
}

// conditions are the pod's conditions; a condition whose status did not
// change keeps its transition time from prev.
func conditions(prev []corev1.PodCondition, ready bool, now time.Time) []corev1.PodCondition {
	status := func(v bool) corev1.ConditionStatus {
		if v {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	out := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}, // no init containers
		{Type: corev1.ContainersReady, Status: status(ready)},
		{Type: corev1.PodReady, Status: status(ready)},
	}
	for i := range out {
		out[i].LastTransitionTime = metav1.Time{Time: now}
		for _, p := range prev {
			if p.Type == out[i].Type && p.Status == out[i].Status {
				out[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
	return out
}
