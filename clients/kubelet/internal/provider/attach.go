package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
	"vmm.dev/vmm/gen/go/vmm/v1/vmmv1connect"
)

// Console attach limits of vmmd's AttachConsole.
const (
	// maxInput is the most input one request may carry.
	maxInput = 64 << 10
	// keepAlive is how often an idle attach sends an empty request: vmmd
	// resets a request stream that carries nothing for its body timeout.
	keepAlive = 3 * time.Second
)

// ErrNoExec is the answer to `kubectl exec`: a VM has no container
// processes to start a command next to.
var ErrNoExec = errdefs.InvalidInput("exec: a VM pod runs no container processes to exec into; `kubectl attach -i` reaches the guest's serial console")

// RunInContainer refuses: see ErrNoExec.
func (p *Provider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return ErrNoExec
}

// AttachToContainer connects `kubectl attach` to the VM's serial console
// through vmmd's AttachConsole: stdin is typed into the console, what the
// guest writes goes to stdout. `console` must speak a protocol with
// bidirectional streams (gRPC over h2c). The console has no size, so
// terminal resizes are drained and dropped.
func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	if p.console == nil {
		return errdefs.InvalidInput("attach: this vmm-kubelet has no console client")
	}
	id, err := p.vmOfContainer(namespace, podName, containerName)
	if err != nil {
		return err
	}
	return attachConsole(ctx, p.console, id, attach)
}

func attachConsole(ctx context.Context, c vmmv1connect.VmmServiceClient, id string, attach api.AttachIO) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := c.AttachConsole(ctx)
	if err := stream.Send(&vmmv1.AttachConsoleRequest{VmId: id}); err != nil {
		return fmt.Errorf("vmmd AttachConsole %s: %w", id, err)
	}
	first, err := stream.Receive()
	if err != nil {
		return fmt.Errorf("vmmd AttachConsole %s: %w", id, err)
	}
	if !first.Attached {
		return fmt.Errorf("vmmd AttachConsole %s: the first response is not the attach confirmation", id)
	}
	if r := attach.Resize(); r != nil {
		go func() {
			for range r {
			}
		}()
	}
	// One sender: typed input and keep-alives.
	input := make(chan []byte)
	if in := attach.Stdin(); in != nil {
		go func() {
			buf := make([]byte, maxInput)
			for {
				n, err := in.Read(buf)
				if n > 0 {
					select {
					case input <- append([]byte(nil), buf[:n]...):
					case <-ctx.Done():
						return
					}
				}
				if err != nil {
					return // stdin closed: output keeps flowing until the client leaves
				}
			}
		}()
	}
	go func() {
		t := time.NewTicker(keepAlive)
		defer t.Stop()
		for {
			var b []byte
			select {
			case <-ctx.Done():
				return
			case b = <-input:
			case <-t.C:
			}
			if err := stream.Send(&vmmv1.AttachConsoleRequest{Input: b}); err != nil {
				cancel()
				return
			}
		}
	}()
	out := attach.Stdout()
	for {
		m, err := stream.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil // the VM stopped, or the client left
			}
			return fmt.Errorf("vmmd AttachConsole %s: %w", id, err)
		}
		if out != nil && len(m.Output) > 0 {
			if _, err := out.Write(m.Output); err != nil {
				return nil // the client left
			}
		}
	}
}
