package provider

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
	"vmm.dev/vmm/gen/go/vmm/v1/vmmv1connect"
)

// fakeVmm is an in-memory vmmd: enough of VmmService for the provider's
// lifecycle logic (the real one is exercised by test/e2e/fleet.test.ts).
// Methods the provider does not call panic through the nil embedded
// interface.
type fakeVmm struct {
	vmmv1connect.VmmServiceClient
	mu    sync.Mutex
	vms   map[string]*vmmv1.VmInfo
	calls []string
	// startErr makes StartVm fail with this error.
	startErr error
	seq      int
}

func newFakeVmm() *fakeVmm { return &fakeVmm{vms: map[string]*vmmv1.VmInfo{}} }

func (f *fakeVmm) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls so far, one "Method id [detail]" each.
func (f *fakeVmm) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeVmm) CreateVm(_ context.Context, r *connect.Request[vmmv1.CreateVmRequest]) (*connect.Response[vmmv1.CreateVmResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("CreateVm %s start=%v", r.Msg.Id, r.Msg.Start)
	if _, ok := f.vms[r.Msg.Id]; ok {
		return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("id: VM %q already exists", r.Msg.Id))
	}
	if r.Msg.Config.Vcpus > 64 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("config.vcpus: is %d; at most 64", r.Msg.Config.Vcpus))
	}
	vm := &vmmv1.VmInfo{Id: r.Msg.Id, Name: r.Msg.Config.Name, Status: vmmv1.VmStatus_VM_STATUS_STOPPED,
		Config: proto.Clone(r.Msg.Config).(*vmmv1.VmConfig), CreatedAt: timestamppb.Now(),
		Nics: []*vmmv1.NicInfo{{Mode: r.Msg.Config.Nics[0].Mode}}}
	f.vms[r.Msg.Id] = vm
	return connect.NewResponse(&vmmv1.CreateVmResponse{Vm: proto.Clone(vm).(*vmmv1.VmInfo)}), nil
}

func (f *fakeVmm) get(id string) (*vmmv1.VmInfo, error) {
	vm, ok := f.vms[id]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("id: VM %q not found", id))
	}
	return vm, nil
}

func (f *fakeVmm) StartVm(_ context.Context, r *connect.Request[vmmv1.StartVmRequest]) (*connect.Response[vmmv1.StartVmResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("StartVm %s", r.Msg.Id)
	vm, err := f.get(r.Msg.Id)
	if err != nil {
		return nil, err
	}
	if vm.Status == vmmv1.VmStatus_VM_STATUS_RUNNING {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("VM %q is already running", r.Msg.Id))
	}
	if f.startErr != nil {
		return nil, f.startErr
	}
	f.seq++
	vm.Status, vm.InstanceId, vm.StartedAt, vm.Pid = vmmv1.VmStatus_VM_STATUS_RUNNING, fmt.Sprintf("i-%d", f.seq), timestamppb.Now(), uint32(1000+f.seq)
	return connect.NewResponse(&vmmv1.StartVmResponse{Vm: proto.Clone(vm).(*vmmv1.VmInfo)}), nil
}

func (f *fakeVmm) StopVm(_ context.Context, r *connect.Request[vmmv1.StopVmRequest]) (*connect.Response[vmmv1.StopVmResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("StopVm %s timeout=%d", r.Msg.Id, r.Msg.GetTimeoutSeconds())
	vm, err := f.get(r.Msg.Id)
	if err != nil {
		return nil, err
	}
	if vm.Status != vmmv1.VmStatus_VM_STATUS_RUNNING {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("VM %q is not running", r.Msg.Id))
	}
	vm.Status, vm.Pid = vmmv1.VmStatus_VM_STATUS_STOPPED, 0
	return connect.NewResponse(&vmmv1.StopVmResponse{Vm: proto.Clone(vm).(*vmmv1.VmInfo)}), nil
}

func (f *fakeVmm) RemoveVm(_ context.Context, r *connect.Request[vmmv1.RemoveVmRequest]) (*connect.Response[vmmv1.RemoveVmResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("RemoveVm %s", r.Msg.Id)
	if _, err := f.get(r.Msg.Id); err != nil {
		return nil, err
	}
	delete(f.vms, r.Msg.Id)
	return connect.NewResponse(&vmmv1.RemoveVmResponse{}), nil
}

func (f *fakeVmm) UpdateVm(_ context.Context, r *connect.Request[vmmv1.UpdateVmRequest]) (*connect.Response[vmmv1.UpdateVmResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("UpdateVm %s cmdline=%q", r.Msg.Id, r.Msg.GetCmdline())
	vm, err := f.get(r.Msg.Id)
	if err != nil {
		return nil, err
	}
	if r.Msg.Cmdline != nil {
		vm.Config.Cmdline = *r.Msg.Cmdline
	}
	return connect.NewResponse(&vmmv1.UpdateVmResponse{Vm: proto.Clone(vm).(*vmmv1.VmInfo)}), nil
}

func (f *fakeVmm) GetInfo(_ context.Context, r *connect.Request[vmmv1.GetInfoRequest]) (*connect.Response[vmmv1.GetInfoResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vm, err := f.get(r.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vmmv1.GetInfoResponse{Vm: proto.Clone(vm).(*vmmv1.VmInfo)}), nil
}

// ListVms understands the one selector form the provider sends: key=value.
func (f *fakeVmm) ListVms(_ context.Context, r *connect.Request[vmmv1.ListVmsRequest]) (*connect.Response[vmmv1.ListVmsResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("ListVms %s", r.Msg.LabelSelector)
	k, v, _ := strings.Cut(r.Msg.LabelSelector, "=")
	var out []*vmmv1.VmInfo
	for _, vm := range f.vms {
		if vm.Config.Labels[k] == v {
			out = append(out, proto.Clone(vm).(*vmmv1.VmInfo))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return connect.NewResponse(&vmmv1.ListVmsResponse{Vms: out, TotalSize: uint32(len(out))}), nil
}

// set changes a VM as vmmd would (exit, lease, ...).
func (f *fakeVmm) set(id string, fn func(*vmmv1.VmInfo)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.vms[id])
}
