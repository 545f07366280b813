package provider

import (
	"context"
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"

	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

// maxTailLines is ReadConsole's bound on tail_lines.
const maxTailLines = 100000

// GetContainerLogs streams the VM's serial console (`kubectl logs`):
// --tail, -f and --limit-bytes map onto vmmd's ReadConsole. The console
// keeps no timestamps and only the current boot, so --timestamps,
// --since and --previous are refused rather than answered wrongly.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	id, err := p.vmOfContainer(namespace, podName, containerName)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Timestamps:
		return nil, errdefs.InvalidInput("timestamps: the serial console records no timestamps")
	case opts.SinceSeconds > 0 || !opts.SinceTime.IsZero():
		return nil, errdefs.InvalidInput("since: the serial console records no timestamps to select from")
	case opts.Previous:
		return nil, errdefs.InvalidInput("previous: the console of an earlier boot is not kept")
	}
	req := &vmmv1.ReadConsoleRequest{Id: id, Follow: opts.Follow}
	if opts.Tail > 0 {
		t := uint32(min(opts.Tail, maxTailLines))
		req.TailLines = &t
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := p.vmm.ReadConsole(ctx, connect.NewRequest(req))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("vmmd ReadConsole %s: %w", id, err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer cancel()
		defer stream.Close()
		left := int64(opts.LimitBytes)
		for stream.Receive() {
			data := stream.Msg().Data
			if opts.LimitBytes > 0 {
				if int64(len(data)) > left {
					data = data[:left]
				}
				left -= int64(len(data))
			}
			if _, err := pw.Write(data); err != nil {
				return // the reader went away
			}
			if opts.LimitBytes > 0 && left == 0 {
				pw.Close()
				return
			}
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			pw.CloseWithError(fmt.Errorf("vmmd ReadConsole %s: %w", id, err))
			return
		}
		pw.Close()
	}()
	return readCloser{pr, cancel}, nil
}

type readCloser struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r readCloser) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// vmOfContainer is the VM id of a pod's (only) container on this node.
func (p *Provider) vmOfContainer(namespace, podName, containerName string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byKey[key(namespace, podName)]
	if e == nil || e.vm == nil {
		return "", errdefs.NotFoundf("pod %s/%s has no VM on node %s", namespace, podName, p.node)
	}
	if len(e.pod.Spec.Containers) != 1 || e.pod.Spec.Containers[0].Name != containerName {
		return "", errdefs.NotFoundf("pod %s/%s has no container %q", namespace, podName, containerName)
	}
	return e.vmID, nil
}
