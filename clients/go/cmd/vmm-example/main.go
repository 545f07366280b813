// vmm-example talks to a vmm daemon with connect-go: it prints the daemon's
// metadata and its VMs, and optionally creates (and then removes) a VM record.
//
//	vmm-example -socket /var/lib/vmm/vmmd.sock
//	vmm-example -url http://127.0.0.1:8080 -token "$VMM_TOKEN" -protocol grpc
//	vmm-example -socket ./vmmd.sock -create demo-1
//
// Output (one line per item):
//
//	daemon 0.1.0 on linux/x64 (qemu 8.2.2), default mode NETWORKING_MODE_USER
//	vm demo-1 "demo-1" VM_STATUS_STOPPED mac 52:54:00:12:34:56
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"connectrpc.com/connect"

	vmm "vmm.dev/vmm/clients/go"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

func main() {
	socket := flag.String("socket", os.Getenv("VMM_SOCKET"), "daemon unix socket (default $VMM_SOCKET)")
	url := flag.String("url", os.Getenv("VMM_URL"), "daemon URL, e.g. http://127.0.0.1:8080 (default $VMM_URL)")
	token := flag.String("token", os.Getenv("VMM_TOKEN"), "bearer token (default $VMM_TOKEN)")
	protocol := flag.String("protocol", "connect", "connect, grpc or grpcweb")
	create := flag.String("create", "", "create a VM record with this id, show it, then remove it")
	flag.Parse()
	if err := run(*socket, *url, *token, *protocol, *create); err != nil {
		fmt.Fprintln(os.Stderr, "vmm-example:", err)
		os.Exit(1)
	}
}

func run(socket, url, token, protocol, create string) error {
	protos := map[string]vmm.Protocol{"connect": vmm.ProtocolConnect, "grpc": vmm.ProtocolGRPC, "grpcweb": vmm.ProtocolGRPCWeb}
	p, ok := protos[protocol]
	if !ok {
		return fmt.Errorf("-protocol %q: want connect, grpc or grpcweb", protocol)
	}
	c, err := vmm.NewConnect(vmm.Target{Socket: socket, URL: url, Token: token}, p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	meta, err := c.Vmm.GetMeta(ctx, connect.NewRequest(&vmmv1.GetMetaRequest{}))
	if err != nil {
		return fmt.Errorf("GetMeta: %w", err)
	}
	m := meta.Msg
	fmt.Printf("daemon %s on %s (qemu %s), default mode %s\n", m.Version, m.Platform, orNone(m.QemuVersion), m.DefaultNetworkingMode)

	if create != "" {
		res, err := c.Vmm.CreateVm(ctx, connect.NewRequest(&vmmv1.CreateVmRequest{Id: create, Config: &vmmv1.VmConfig{Name: create}}))
		if err != nil {
			return fmt.Errorf("CreateVm: %w", err)
		}
		fmt.Printf("created %s\n", res.Msg.Vm.Id)
		defer func() {
			if _, err := c.Vmm.RemoveVm(context.Background(), connect.NewRequest(&vmmv1.RemoveVmRequest{Id: create})); err != nil {
				fmt.Fprintln(os.Stderr, "vmm-example: RemoveVm:", err)
			} else {
				fmt.Printf("removed %s\n", create)
			}
		}()
	}

	list, err := c.Vmm.ListVms(ctx, connect.NewRequest(&vmmv1.ListVmsRequest{Brief: true}))
	if err != nil {
		return fmt.Errorf("ListVms: %w", err)
	}
	for _, v := range list.Msg.Vms {
		mac := ""
		if len(v.Nics) > 0 {
			mac = " mac " + v.Nics[0].Mac
		}
		fmt.Printf("vm %s %q %s%s\n", v.Id, v.Name, v.Status, mac)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
