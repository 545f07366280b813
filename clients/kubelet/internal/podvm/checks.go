package podvm

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ServiceAccountVolumePrefix starts the name of the projected token volume
// the ServiceAccount admission plugin adds to every pod that does not opt
// out (automountServiceAccountToken: false). It is accepted, and not given
// to the guest: a VM has no kube-api client. Every other volume is refused.
const ServiceAccountVolumePrefix = "kube-api-access-"

// ServiceAccountMountPath is where that volume is mounted in containers.
const ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// IsServiceAccountVolume says whether v is the admission plugin's token volume.
func IsServiceAccountVolume(v *corev1.Volume) bool {
	if !strings.HasPrefix(v.Name, ServiceAccountVolumePrefix) || v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken == nil && s.ConfigMap == nil && s.DownwardAPI == nil {
			return false
		}
	}
	return true
}

// checkPodSpec refuses the pod-level fields a VM cannot honour. Fields the
// API server fills in by default (dnsPolicy, schedulerName, an empty
// securityContext, terminationGracePeriodSeconds, enableServiceLinks) and
// fields that only steer scheduling pass.
func checkPodSpec(ps *problems, pod *corev1.Pod) {
	s := &pod.Spec
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if !IsServiceAccountVolume(v) {
			ps.add(fmt.Sprintf("spec.volumes[%d]", i), "volume %q (%s) is not supported; a VM pod has no volumes", v.Name, volumeKind(v))
		}
	}
	if len(s.InitContainers) > 0 {
		ps.add("spec.initContainers", "init containers are not supported; a VM pod has exactly one container")
	}
	if len(s.EphemeralContainers) > 0 {
		ps.add("spec.ephemeralContainers", "ephemeral containers are not supported")
	}
	switch s.RestartPolicy {
	case "", corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		ps.add("spec.restartPolicy", "unknown policy %q", s.RestartPolicy)
	}
	if s.ActiveDeadlineSeconds != nil {
		ps.add("spec.activeDeadlineSeconds", "is not supported")
	}
	if s.DNSPolicy == corev1.DNSNone || s.DNSConfig != nil {
		ps.add("spec.dnsConfig", "is not supported; the guest's DNS comes from its network's DHCP server")
	}
	flag := func(set bool, field, what string) {
		if set {
			ps.add(field, "%s is not available to a VM pod", what)
		}
	}
	flag(s.HostNetwork, "spec.hostNetwork", "the host's network namespace")
	flag(s.HostPID, "spec.hostPID", "the host's PID namespace")
	flag(s.HostIPC, "spec.hostIPC", "the host's IPC namespace")
	flag(s.ShareProcessNamespace != nil && *s.ShareProcessNamespace, "spec.shareProcessNamespace", "a shared process namespace")
	flag(s.HostUsers != nil && !*s.HostUsers, "spec.hostUsers", "a user namespace")
	flag(s.SetHostnameAsFQDN != nil && *s.SetHostnameAsFQDN, "spec.setHostnameAsFQDN", "setting the hostname")
	if s.SecurityContext != nil && !reflect.DeepEqual(*s.SecurityContext, corev1.PodSecurityContext{}) {
		ps.add("spec.securityContext", "must be empty; it applies to container processes and a VM pod has none")
	}
	if len(s.ImagePullSecrets) > 0 {
		ps.add("spec.imagePullSecrets", "images come from the host's images directory; nothing is pulled")
	}
	if s.Hostname != "" {
		ps.add("spec.hostname", "is not supported; the guest names itself")
	}
	if s.Subdomain != "" {
		ps.add("spec.subdomain", "is not supported")
	}
	if s.HostnameOverride != nil {
		ps.add("spec.hostnameOverride", "is not supported")
	}
	if len(s.HostAliases) > 0 {
		ps.add("spec.hostAliases", "is not supported")
	}
	if len(s.ReadinessGates) > 0 {
		ps.add("spec.readinessGates", "is not supported; readiness is the guest running with its address")
	}
	if s.OS != nil && s.OS.Name != corev1.Linux {
		ps.add("spec.os.name", "is %q; VM pods declare linux (or nothing)", s.OS.Name)
	}
	if len(s.ResourceClaims) > 0 {
		ps.add("spec.resourceClaims", "is not supported")
	}
	if s.Resources != nil {
		ps.add("spec.resources", "pod-level resources are not supported; set the container's resources")
	}
	if len(s.EvictionResponders) > 0 {
		ps.add("spec.evictionResponders", "is not supported")
	}
}

// checkContainer refuses container fields a VM cannot honour. stdin and
// tty pass: attach reaches the serial console.
func checkContainer(ps *problems, c *corev1.Container, base string) {
	if len(c.Command) > 0 {
		ps.add(base+".command", "is not supported; the VM boots its image (extra kernel arguments: the %s annotation)", AnnotationKernelArgs)
	}
	if len(c.Args) > 0 {
		ps.add(base+".args", "is not supported; the VM boots its image (extra kernel arguments: the %s annotation)", AnnotationKernelArgs)
	}
	if c.WorkingDir != "" {
		ps.add(base+".workingDir", "is not supported")
	}
	if len(c.Env) > 0 {
		ps.add(base+".env", "is not supported; the guest gets no environment (cloud-init user-data: the %s annotation)", AnnotationUserData)
	}
	if len(c.EnvFrom) > 0 {
		ps.add(base+".envFrom", "is not supported")
	}
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(m.Name, ServiceAccountVolumePrefix) && m.MountPath == ServiceAccountMountPath {
			continue
		}
		ps.add(fmt.Sprintf("%s.volumeMounts[%d]", base, i), "mount of %q is not supported; a VM pod has no volumes", m.Name)
	}
	if len(c.VolumeDevices) > 0 {
		ps.add(base+".volumeDevices", "is not supported")
	}
	if c.LivenessProbe != nil {
		ps.add(base+".livenessProbe", "probes are not supported")
	}
	if c.ReadinessProbe != nil {
		ps.add(base+".readinessProbe", "probes are not supported")
	}
	if c.StartupProbe != nil {
		ps.add(base+".startupProbe", "probes are not supported")
	}
	if c.Lifecycle != nil {
		ps.add(base+".lifecycle", "lifecycle hooks are not supported")
	}
	if c.RestartPolicy != nil || len(c.RestartPolicyRules) > 0 {
		ps.add(base+".restartPolicy", "container restart policies are not supported; use the pod's restartPolicy")
	}
	if len(c.ResizePolicy) > 0 {
		ps.add(base+".resizePolicy", "in-place resize is not supported")
	}
	if c.SecurityContext != nil && !reflect.DeepEqual(*c.SecurityContext, corev1.SecurityContext{}) {
		ps.add(base+".securityContext", "must be empty; it applies to container processes and a VM has none")
	}
}

// volumeKind names the source type of a volume for messages.
func volumeKind(v *corev1.Volume) string {
	rv := reflect.ValueOf(v.VolumeSource)
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			tag := rv.Type().Field(i).Tag.Get("json")
			return strings.Split(tag, ",")[0]
		}
	}
	return "unknown type"
}
