package podvm

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

func TestStatus(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	started := now.Add(-time.Minute)
	vm := func(st vmmv1.VmStatus, mode vmmv1.NetworkingMode, ip string) *vmmv1.VmInfo {
		v := &vmmv1.VmInfo{Id: "pod-x", InstanceId: "i-1", Status: st, StartedAt: timestamppb.New(started),
			Nics: []*vmmv1.NicInfo{{Mode: mode}}}
		if ip != "" {
			v.Nics[0].Lease = &vmmv1.Lease{Ip: ip, Verification: vmmv1.LeaseVerification_LEASE_VERIFICATION_VERIFIED}
		}
		return v
	}
	withLease := func(v *vmmv1.VmInfo, ver vmmv1.LeaseVerification) *vmmv1.VmInfo {
		v.Nics[0].Lease.Verification = ver
		return v
	}
	exit := &Exit{At: now.Add(-time.Second), Message: "QEMU pid 7 exited on its own"}
	type want struct {
		phase   corev1.PodPhase
		ready   bool
		podIP   string
		state   string // waiting/running/terminated:<reason>
		restart int32
		last    string // reason of lastState.terminated, or ""
	}
	cases := []struct {
		name   string
		policy corev1.RestartPolicy
		o      Observed
		want   want
	}{
		{"no VM yet", "", Observed{}, want{phase: corev1.PodPending, state: "waiting:ContainerCreating"}},
		{"created, not started", "", Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_STOPPED, modeBridge, "")},
			want{phase: corev1.PodPending, state: "waiting:ContainerCreating"}},
		{"starting", "", Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_STARTING, modeBridge, "")},
			want{phase: corev1.PodPending, state: "waiting:ContainerCreating"}},
		{"running, no lease yet: not ready, no IP", "", Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeBridge, "")},
			want{phase: corev1.PodRunning, state: "running"}},
		{"running with a lease: ready, pod IP = lease", "", Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeBridge, "10.91.0.50")},
			want{phase: corev1.PodRunning, ready: true, podIP: "10.91.0.50", state: "running"}},
		{"running, lease reported but not verified yet: no IP, not ready", "",
			Observed{VM: withLease(vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeBridge, "10.91.0.50"), vmmv1.LeaseVerification_LEASE_VERIFICATION_PENDING)},
			want{phase: corev1.PodRunning, state: "running"}},
		{"running, lease trusted (verification off): ready", "",
			Observed{VM: withLease(vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeBridge, "10.91.0.50"), vmmv1.LeaseVerification_LEASE_VERIFICATION_TRUSTED)},
			want{phase: corev1.PodRunning, ready: true, podIP: "10.91.0.50", state: "running"}},
		{"running, lease gone silent: keeps its IP, not ready", "",
			Observed{VM: withLease(vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeBridge, "10.91.0.50"), vmmv1.LeaseVerification_LEASE_VERIFICATION_SILENT)},
			want{phase: corev1.PodRunning, podIP: "10.91.0.50", state: "running"}},
		{"running in user mode: ready without an address", "", Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeUser, "")},
			want{phase: corev1.PodRunning, ready: true, state: "running"}},
		{"stopping: running, not ready", "", Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_STOPPING, modeBridge, "10.91.0.50")},
			want{phase: corev1.PodRunning, podIP: "10.91.0.50", state: "running"}},
		{"exited, restartPolicy Always: restarting", corev1.RestartPolicyAlways,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_EXITED, modeBridge, ""), LastExit: exit},
			want{phase: corev1.PodRunning, state: "waiting:Restarting", last: "Completed"}},
		{"restarted once and running again", corev1.RestartPolicyAlways,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_RUNNING, modeBridge, "10.91.0.51"), LastExit: exit, Restarts: 1},
			want{phase: corev1.PodRunning, ready: true, podIP: "10.91.0.51", state: "running", restart: 1, last: "Completed"}},
		{"starting again after an exit", corev1.RestartPolicyAlways,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_STARTING, modeBridge, ""), LastExit: exit, Restarts: 1},
			want{phase: corev1.PodRunning, state: "waiting:Restarting", restart: 1, last: "Completed"}},
		{"exited, restartPolicy Never: Succeeded", corev1.RestartPolicyNever,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_EXITED, modeBridge, ""), LastExit: exit},
			want{phase: corev1.PodSucceeded, state: "terminated:Completed"}},
		{"exited, restartPolicy OnFailure: Succeeded", corev1.RestartPolicyOnFailure,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_EXITED, modeBridge, ""), LastExit: exit},
			want{phase: corev1.PodSucceeded, state: "terminated:Completed"}},
		{"QEMU failed to start, restartPolicy Never: Failed", corev1.RestartPolicyNever,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_STOPPED, modeBridge, ""), LastExit: &Exit{At: now, Message: "no such file", StartFailed: true}},
			want{phase: corev1.PodFailed, state: "terminated:StartError"}},
		{"QEMU failed to start, restartPolicy OnFailure: retried", corev1.RestartPolicyOnFailure,
			Observed{VM: vm(vmmv1.VmStatus_VM_STATUS_STOPPED, modeBridge, ""), LastExit: &Exit{At: now, Message: "no such file", StartFailed: true}},
			want{phase: corev1.PodRunning, state: "waiting:Restarting", last: "StartError"}},
		{"removed for deletion: Succeeded, terminated", corev1.RestartPolicyAlways, Observed{Removed: true},
			want{phase: corev1.PodSucceeded, state: "terminated:Stopped"}},
		{"VM removed outside Kubernetes: Failed", corev1.RestartPolicyAlways, Observed{Gone: "removed through the vmm API"},
			want{phase: corev1.PodFailed, state: "terminated:VMRemoved"}},
		{"refused", "", Observed{Refusal: &Refusal{Problems: []Problem{{"spec.containers", "has 2 containers"}}}},
			want{phase: corev1.PodFailed, state: "terminated:UnsupportedPod"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod()
			pod.Spec.RestartPolicy = tc.policy
			pod.Status.QOSClass = corev1.PodQOSBestEffort
			tc.o.NodeIP = "127.0.0.2"
			tc.o.StartTime = started
			st := Status(pod, tc.o, now)
			cs := st.ContainerStatuses[0]
			got := want{phase: st.Phase, ready: cs.Ready, podIP: st.PodIP, state: stateString(cs.State), restart: cs.RestartCount}
			if cs.LastTerminationState.Terminated != nil {
				got.last = cs.LastTerminationState.Terminated.Reason
			}
			if got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
			if st.HostIP != "127.0.0.2" || st.QOSClass != corev1.PodQOSBestEffort || cs.Name != "vm" || cs.Image != "busybox" {
				t.Errorf("hostIP %q qos %q container %q image %q", st.HostIP, st.QOSClass, cs.Name, cs.Image)
			}
			if (st.PodIP == "") != (len(st.PodIPs) == 0) {
				t.Errorf("podIP %q podIPs %v", st.PodIP, st.PodIPs)
			}
			if *cs.Started != (cs.State.Running != nil) {
				t.Errorf("started %v with state %v", *cs.Started, cs.State)
			}
			for _, c := range st.Conditions {
				if c.Type == corev1.PodReady && (c.Status == corev1.ConditionTrue) != tc.want.ready {
					t.Errorf("Ready condition %s, want ready=%v", c.Status, tc.want.ready)
				}
			}
		})
	}
}

// A condition keeps its transition time while its status holds, so
// repeated notifications do not rewrite the pod.
func TestStatusConditionsKeepTransitionTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	pod := basePod()
	o := Observed{VM: &vmmv1.VmInfo{Status: vmmv1.VmStatus_VM_STATUS_RUNNING, Nics: []*vmmv1.NicInfo{{Mode: modeUser}}}}
	pod.Status = Status(pod, o, t0)
	again := Status(pod, o, t0.Add(time.Hour))
	for i, c := range again.Conditions {
		if !c.LastTransitionTime.Equal(&metav1.Time{Time: t0}) {
			t.Errorf("condition %d (%s) moved to %v", i, c.Type, c.LastTransitionTime)
		}
	}
	o.VM.Status = vmmv1.VmStatus_VM_STATUS_STOPPING
	changed := Status(pod, o, t0.Add(time.Hour))
	for _, c := range changed.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.Equal(&metav1.Time{Time: t0.Add(time.Hour)}) {
			t.Errorf("Ready turned false but kept time %v", c.LastTransitionTime)
		}
	}
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting:" + s.Waiting.Reason
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return "terminated:" + s.Terminated.Reason
	}
	return "none"
}
