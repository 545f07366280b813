package vmm_test

// Runs against a live daemon (test/integration/clients.test.ts starts one):
//
//	VMM_URL=http://127.0.0.1:PORT VMM_SOCKET=/path/vmmd.sock [VMM_TOKEN=...] go test ./...
//
// Each client kind (connect-go with the Connect, gRPC and gRPC-Web
// protocols; grpc-go) over each transport (TCP, unix socket) creates, lists,
// inspects, updates and removes its own VM record.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	vmm "vmm.dev/vmm/clients/go"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

var (
	envURL    = os.Getenv("VMM_URL")
	envSocket = os.Getenv("VMM_SOCKET")
	envToken  = os.Getenv("VMM_TOKEN")
)

func TestMain(m *testing.M) {
	// A test that cannot reach a daemon fails; it never skips.
	if envURL == "" || envSocket == "" {
		fmt.Fprintln(os.Stderr, "vmm_test: VMM_URL (http://127.0.0.1:PORT) and VMM_SOCKET (daemon unix socket) must be set; VMM_TOKEN when the daemon requires tokens")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

var macRE = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)

// api is the part of VmmService the lifecycle test needs, so the same test
// runs over connect-go and grpc-go. code() extracts the status code of an
// error as a gRPC code (Connect codes have the same numbers).
type api interface {
	create(ctx context.Context, r *vmmv1.CreateVmRequest) (*vmmv1.CreateVmResponse, error)
	list(ctx context.Context, r *vmmv1.ListVmsRequest) (*vmmv1.ListVmsResponse, error)
	info(ctx context.Context, r *vmmv1.GetInfoRequest) (*vmmv1.GetInfoResponse, error)
	update(ctx context.Context, r *vmmv1.UpdateVmRequest) (*vmmv1.UpdateVmResponse, error)
	remove(ctx context.Context, r *vmmv1.RemoveVmRequest) (*vmmv1.RemoveVmResponse, error)
	meta(ctx context.Context) (*vmmv1.GetMetaResponse, error)
	code(err error) codes.Code
}

type connectAPI struct{ c *vmm.ConnectClients }

func unwrap[T any](r *connect.Response[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

func (a connectAPI) create(ctx context.Context, r *vmmv1.CreateVmRequest) (*vmmv1.CreateVmResponse, error) {
	return unwrap(a.c.Vmm.CreateVm(ctx, connect.NewRequest(r)))
}
func (a connectAPI) list(ctx context.Context, r *vmmv1.ListVmsRequest) (*vmmv1.ListVmsResponse, error) {
	return unwrap(a.c.Vmm.ListVms(ctx, connect.NewRequest(r)))
}
func (a connectAPI) info(ctx context.Context, r *vmmv1.GetInfoRequest) (*vmmv1.GetInfoResponse, error) {
	return unwrap(a.c.Vmm.GetInfo(ctx, connect.NewRequest(r)))
}
func (a connectAPI) update(ctx context.Context, r *vmmv1.UpdateVmRequest) (*vmmv1.UpdateVmResponse, error) {
	return unwrap(a.c.Vmm.UpdateVm(ctx, connect.NewRequest(r)))
}
func (a connectAPI) remove(ctx context.Context, r *vmmv1.RemoveVmRequest) (*vmmv1.RemoveVmResponse, error) {
	return unwrap(a.c.Vmm.RemoveVm(ctx, connect.NewRequest(r)))
}
func (a connectAPI) meta(ctx context.Context) (*vmmv1.GetMetaResponse, error) {
	return unwrap(a.c.Vmm.GetMeta(ctx, connect.NewRequest(&vmmv1.GetMetaRequest{})))
}
func (connectAPI) code(err error) codes.Code {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return codes.Unknown
	}
	return codes.Code(ce.Code())
}

type grpcAPI struct{ c vmmv1.VmmServiceClient }

func (a grpcAPI) create(ctx context.Context, r *vmmv1.CreateVmRequest) (*vmmv1.CreateVmResponse, error) {
	return a.c.CreateVm(ctx, r)
}
func (a grpcAPI) list(ctx context.Context, r *vmmv1.ListVmsRequest) (*vmmv1.ListVmsResponse, error) {
	return a.c.ListVms(ctx, r)
}
func (a grpcAPI) info(ctx context.Context, r *vmmv1.GetInfoRequest) (*vmmv1.GetInfoResponse, error) {
	return a.c.GetInfo(ctx, r)
}
func (a grpcAPI) update(ctx context.Context, r *vmmv1.UpdateVmRequest) (*vmmv1.UpdateVmResponse, error) {
	return a.c.UpdateVm(ctx, r)
}
func (a grpcAPI) remove(ctx context.Context, r *vmmv1.RemoveVmRequest) (*vmmv1.RemoveVmResponse, error) {
	return a.c.RemoveVm(ctx, r)
}
func (a grpcAPI) meta(ctx context.Context) (*vmmv1.GetMetaResponse, error) {
	return a.c.GetMeta(ctx, &vmmv1.GetMetaRequest{})
}
func (grpcAPI) code(err error) codes.Code { return status.Code(err) }

func target(via string, token string) vmm.Target {
	if via == "unix" {
		return vmm.Target{Socket: envSocket, Token: token}
	}
	return vmm.Target{URL: envURL, Token: token}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialGRPC(t *testing.T, tg vmm.Target) *grpc.ClientConn {
	t.Helper()
	cc, err := vmm.DialGRPC(tg)
	if err != nil {
		t.Fatalf("DialGRPC: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Host ports per subtest; distinct so the records never conflict.
var nextPort = 21000 + (os.Getpid()%500)*20

func ports() (uint32, uint32) {
	nextPort += 2
	return uint32(nextPort), uint32(nextPort + 1)
}

func TestConnectGo(t *testing.T) {
	for _, p := range []vmm.Protocol{vmm.ProtocolConnect, vmm.ProtocolGRPC, vmm.ProtocolGRPCWeb} {
		for _, via := range []string{"tcp", "unix"} {
			t.Run(p.String()+"/"+via, func(t *testing.T) {
				c, err := vmm.NewConnect(target(via, envToken), p)
				if err != nil {
					t.Fatal(err)
				}
				lifecycle(t, connectAPI{c}, fmt.Sprintf("go-cg-%s-%s-%d", p, via, os.Getpid()))
			})
		}
	}
}

func TestGrpcGo(t *testing.T) {
	for _, via := range []string{"tcp", "unix"} {
		t.Run(via, func(t *testing.T) {
			cc := dialGRPC(t, target(via, envToken))
			lifecycle(t, grpcAPI{vmmv1.NewVmmServiceClient(cc)}, fmt.Sprintf("go-grpc-%s-%d", via, os.Getpid()))
		})
	}
}

func TestGrpcGoHealth(t *testing.T) {
	for _, via := range []string{"tcp", "unix"} {
		t.Run(via, func(t *testing.T) {
			// Health needs no token.
			cc := dialGRPC(t, target(via, ""))
			res, err := healthpb.NewHealthClient(cc).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: "vmm.v1.VmmService"})
			if err != nil {
				t.Fatalf("Health/Check: %v", err)
			}
			if res.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Health/Check: status %v, want SERVING", res.Status)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	ctx := ctxT(t)
	c, err := vmm.NewConnect(target("tcp", envToken), vmm.ProtocolConnect)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := connectAPI{c}.meta(ctx)
	if err != nil {
		t.Fatalf("GetMeta: %v", err)
	}
	if meta.AuthRequired != (envToken != "") {
		t.Fatalf("GetMeta.auth_required = %v, but VMM_TOKEN is %q", meta.AuthRequired, envToken)
	}
	if envToken == "" {
		return
	}
	for _, via := range []string{"tcp", "unix"} {
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			t.Run(fmt.Sprintf("%s/token=%q", via, tok), func(t *testing.T) {
				cc, err := vmm.NewConnect(target(via, tok), vmm.ProtocolConnect)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := (connectAPI{cc}).meta(ctx); connectAPI.code(connectAPI{}, err) != codes.Unauthenticated {
					t.Fatalf("connect-go GetMeta with token %q: got %v, want Unauthenticated", tok, err)
				}
				g := grpcAPI{vmmv1.NewVmmServiceClient(dialGRPC(t, target(via, tok)))}
				if _, err := g.meta(ctx); status.Code(err) != codes.Unauthenticated {
					t.Fatalf("grpc-go GetMeta with token %q: got %v, want Unauthenticated", tok, err)
				}
			})
		}
	}
}

func lifecycle(t *testing.T, a api, id string) {
	ctx := ctxT(t)
	p1, p2 := ports()
	name := "Go client " + id

	// Create.
	created, err := a.create(ctx, &vmmv1.CreateVmRequest{
		Id: id,
		Config: &vmmv1.VmConfig{
			Name:      name,
			MemoryMib: 128,
			Ports:     []*vmmv1.PortMapping{{Protocol: vmmv1.Protocol_PROTOCOL_TCP, HostPort: p1, VmPort: 22}},
		},
	})
	if err != nil {
		t.Fatalf("CreateVm: %v", err)
	}
	t.Cleanup(func() { _, _ = a.remove(context.Background(), &vmmv1.RemoveVmRequest{Id: id, Force: true}) })
	vm := created.Vm
	if vm.Id != id || vm.Name != name || vm.Status != vmmv1.VmStatus_VM_STATUS_STOPPED {
		t.Fatalf("CreateVm: got id %q name %q status %v", vm.Id, vm.Name, vm.Status)
	}
	if vm.Config.GetMemoryMib() != 128 || vm.Config.GetVcpus() != 1 {
		t.Fatalf("CreateVm: config memory %d vcpus %d, want 128 and the default 1", vm.Config.GetMemoryMib(), vm.Config.GetVcpus())
	}
	if len(vm.Nics) != 1 || !macRE.MatchString(vm.Nics[0].Mac) {
		t.Fatalf("CreateVm: nics %v, want one NIC with a MAC", vm.Nics)
	}
	mac := vm.Nics[0].Mac
	wantPort := &vmmv1.PortMapping{Protocol: vmmv1.Protocol_PROTOCOL_TCP, HostAddress: "127.0.0.1", HostPort: p1, VmPort: 22}
	if len(vm.Config.Ports) != 1 || !proto.Equal(vm.Config.Ports[0], wantPort) {
		t.Fatalf("CreateVm: ports %v, want [%v]", vm.Config.Ports, wantPort)
	}

	// A second create with the same id is refused.
	if _, err := a.create(ctx, &vmmv1.CreateVmRequest{Id: id, Config: &vmmv1.VmConfig{Name: "dup"}}); a.code(err) != codes.AlreadyExists {
		t.Fatalf("CreateVm duplicate: got %v, want AlreadyExists", err)
	}

	// List: by id, by keyword, brief.
	l, err := a.list(ctx, &vmmv1.ListVmsRequest{Ids: []string{id}})
	if err != nil {
		t.Fatalf("ListVms: %v", err)
	}
	if l.TotalSize != 1 || len(l.Vms) != 1 || l.Vms[0].Id != id || l.Vms[0].Config == nil {
		t.Fatalf("ListVms ids=[%s]: got total %d, %d vms", id, l.TotalSize, len(l.Vms))
	}
	l, err = a.list(ctx, &vmmv1.ListVmsRequest{Keyword: id, Brief: true})
	if err != nil {
		t.Fatalf("ListVms keyword: %v", err)
	}
	if len(l.Vms) != 1 || l.Vms[0].Id != id || l.Vms[0].Config != nil || len(l.Vms[0].Events) != 0 {
		t.Fatalf("ListVms keyword=%s brief: got %v", id, l.Vms)
	}
	all, err := a.list(ctx, &vmmv1.ListVmsRequest{})
	if err != nil {
		t.Fatalf("ListVms all: %v", err)
	}
	if !slices.ContainsFunc(all.Vms, func(v *vmmv1.VmInfo) bool { return v.Id == id }) {
		t.Fatalf("ListVms: %s missing from the full list", id)
	}

	// GetInfo.
	info, err := a.info(ctx, &vmmv1.GetInfoRequest{Id: id})
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.Vm.Id != id || info.Vm.Name != name || info.Vm.Nics[0].Mac != mac || info.Vm.Pid != 0 || info.Vm.UptimeSeconds != 0 {
		t.Fatalf("GetInfo: got %v", info.Vm)
	}
	if !slices.ContainsFunc(info.Vm.Events, func(e *vmmv1.VmEvent) bool { return e.Kind == "created" }) {
		t.Fatalf("GetInfo: no created event in %v", info.Vm.Events)
	}

	// Update: name and ports replaced; everything else unchanged.
	newName := name + " (renamed)"
	up, err := a.update(ctx, &vmmv1.UpdateVmRequest{
		Id:          id,
		Name:        proto.String(newName),
		UpdatePorts: true,
		Ports: []*vmmv1.PortMapping{
			{Protocol: vmmv1.Protocol_PROTOCOL_UDP, HostPort: p2, VmPort: 53},
			{Protocol: vmmv1.Protocol_PROTOCOL_TCP, HostAddress: "127.0.0.1", HostPort: p1, VmPort: 8080},
		},
	})
	if err != nil {
		t.Fatalf("UpdateVm: %v", err)
	}
	if up.Vm.Name != newName || len(up.Vm.Config.Ports) != 2 || up.Vm.Config.Ports[0].Protocol != vmmv1.Protocol_PROTOCOL_UDP ||
		up.Vm.Config.Ports[0].HostPort != p2 || up.Vm.Config.Ports[1].VmPort != 8080 || up.Vm.Config.MemoryMib != 128 {
		t.Fatalf("UpdateVm: got name %q config %v", up.Vm.Name, up.Vm.Config)
	}
	// Omitted fields (and update_ports=false) leave everything unchanged.
	up2, err := a.update(ctx, &vmmv1.UpdateVmRequest{Id: id, Vcpus: proto.Uint32(2)})
	if err != nil {
		t.Fatalf("UpdateVm vcpus: %v", err)
	}
	if up2.Vm.Name != newName || len(up2.Vm.Config.Ports) != 2 || up2.Vm.Config.Vcpus != 2 {
		t.Fatalf("UpdateVm vcpus only: got name %q config %v", up2.Vm.Name, up2.Vm.Config)
	}
	info, err = a.info(ctx, &vmmv1.GetInfoRequest{Id: id})
	if err != nil {
		t.Fatalf("GetInfo after update: %v", err)
	}
	if info.Vm.Name != newName || len(info.Vm.Config.Ports) != 2 || info.Vm.Nics[0].Mac != mac {
		t.Fatalf("GetInfo after update: got %v", info.Vm)
	}
	if !slices.ContainsFunc(info.Vm.Events, func(e *vmmv1.VmEvent) bool { return e.Kind == "updated" }) {
		t.Fatalf("GetInfo after update: no updated event in %v", info.Vm.Events)
	}

	// Remove.
	if _, err := a.remove(ctx, &vmmv1.RemoveVmRequest{Id: id}); err != nil {
		t.Fatalf("RemoveVm: %v", err)
	}
	if _, err := a.info(ctx, &vmmv1.GetInfoRequest{Id: id}); a.code(err) != codes.NotFound {
		t.Fatalf("GetInfo after remove: got %v, want NotFound", err)
	}
	if _, err := a.remove(ctx, &vmmv1.RemoveVmRequest{Id: id}); a.code(err) != codes.NotFound {
		t.Fatalf("RemoveVm twice: got %v, want NotFound", err)
	}
	l, err = a.list(ctx, &vmmv1.ListVmsRequest{Ids: []string{id}})
	if err != nil || l.TotalSize != 0 {
		t.Fatalf("ListVms after remove: %v, total %d", err, l.GetTotalSize())
	}
}
