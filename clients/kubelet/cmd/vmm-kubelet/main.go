// vmm-kubelet makes one vmmd host a Kubernetes node: it registers the
// node, runs the pods bound to it as VMs on that host (through vmmd's unix
// socket), reports their status from vmmd's event stream, and serves the
// kubelet API for `kubectl logs` and `attach`.
//
//	vmm-kubelet --node-ip 10.0.0.5 --vmm-socket /var/lib/vmm/vmmd.sock \
//	  --vmm-token-file /etc/vmm/kubelet.token --kubeconfig /etc/vmm/kubelet.kubeconfig \
//	  --client-ca-file /etc/kubernetes/pki/ca.crt
//
// See docs/kubernetes.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	logruslogger "github.com/virtual-kubelet/virtual-kubelet/log/logrus"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	vmm "vmm.dev/vmm/clients/go"
	"vmm.dev/vmm/clients/kubelet/internal/config"
	"vmm.dev/vmm/clients/kubelet/internal/kubeletapi"
	"vmm.dev/vmm/clients/kubelet/internal/node"
	"vmm.dev/vmm/clients/kubelet/internal/podvm"
	"vmm.dev/vmm/clients/kubelet/internal/provider"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
)

func main() {
	cfg := config.Default()
	fs := flag.NewFlagSet("vmm-kubelet", flag.ExitOnError)
	cfg.Bind(fs)
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vmm-kubelet: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	cfg.Fill()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "vmm-kubelet: "+strings.ReplaceAll(err.Error(), "\n", "\nvmm-kubelet: "))
		os.Exit(2)
	}
	lr := logrus.New()
	lr.SetOutput(os.Stderr)
	if cfg.Verbose {
		lr.SetLevel(logrus.DebugLevel)
	}
	log.L = logruslogger.FromLogrus(logrus.NewEntry(lr).WithField("node", cfg.NodeName))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = log.WithLogger(ctx, log.L)
	if err := run(ctx, &cfg); err != nil && !errors.Is(err, context.Canceled) {
		log.G(ctx).Error(err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config.Config) error {
	token := ""
	if cfg.VmmTokenFile != "" {
		b, err := os.ReadFile(cfg.VmmTokenFile)
		if err != nil {
			return fmt.Errorf("--vmm-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	target := vmm.Target{Socket: cfg.VmmSocket, Token: token}
	vc, err := vmm.NewConnect(target, vmm.ProtocolConnect)
	if err != nil {
		return err
	}
	// AttachConsole is a bidirectional stream: gRPC over h2c.
	vg, err := vmm.NewConnect(target, vmm.ProtocolGRPC)
	if err != nil {
		return err
	}
	kc, err := kubeClient(cfg.Kubeconfig)
	if err != nil {
		return err
	}

	np := node.NewProvider(cfg, vc.Vmm, vc.Network)
	host, err := firstHost(ctx, np)
	if err != nil {
		return err
	}
	nodeSpec := node.Build(cfg, host)

	podInformers := informers.NewSharedInformerFactoryWithOptions(kc, time.Minute, nodeutil.PodInformerFilter(cfg.NodeName))
	// Only the pod informer runs. The pod controller requires the other
	// three for the downward API, which vmm-kubelet does not resolve
	// (SkipDownwardAPIResolution), so their factory is never started and
	// needs no access to secrets, config maps or services.
	unused := informers.NewSharedInformerFactory(kc, time.Minute)
	pods := podInformers.Core().V1().Pods()
	pods.Informer() // registers it with the factory before Start

	eb := record.NewBroadcaster()
	eb.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: kc.CoreV1().Events(corev1.NamespaceAll)})
	defer eb.Shutdown()
	recorder := eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "vmm-kubelet", Host: cfg.NodeName})

	p := provider.New(cfg.NodeName, cfg.NodeIP, vc.Vmm, vg.Vmm, hostView(cfg, np), recorder)

	podInformers.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced) {
		return errors.New("pod cache never synced")
	}
	if err := p.Adopt(ctx, func(ns, name string) (*corev1.Pod, error) { return pods.Lister().Pods(ns).Get(name) }); err != nil {
		return err
	}
	go p.Run(ctx)

	pc, err := vknode.NewPodController(vknode.PodControllerConfig{
		PodClient:                 kc.CoreV1(),
		PodInformer:               pods,
		EventRecorder:             recorder,
		Provider:                  p,
		ConfigMapInformer:         unused.Core().V1().ConfigMaps(),
		SecretInformer:            unused.Core().V1().Secrets(),
		ServiceInformer:           unused.Core().V1().Services(),
		SkipDownwardAPIResolution: true,
	})
	if err != nil {
		return err
	}
	pcDone := make(chan error, 1)
	go func() { pcDone <- pc.Run(ctx, 4) }()
	select {
	case <-pc.Ready():
	case err := <-pcDone:
		return fmt.Errorf("pod controller: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}

	renew := cfg.LeaseDuration / 4
	nc, err := vknode.NewNodeController(np, nodeSpec, kc.CoreV1().Nodes(),
		vknode.WithNodeEnableLeaseV1WithRenewInterval(nodeutil.NodeLeaseV1Client(kc), int32(cfg.LeaseDuration/time.Second), renew),
		vknode.WithNodePingInterval(renew),
		vknode.WithNodeStatusUpdateInterval(cfg.StatusInterval),
	)
	if err != nil {
		return err
	}
	ncDone := make(chan error, 1)
	go func() { ncDone <- nc.Run(ctx) }()

	srv, err := kubeletapi.New(cfg, kc, api.PodHandlerConfig{
		GetPods:           p.GetPods,
		GetContainerLogs:  p.GetContainerLogs,
		AttachToContainer: p.AttachToContainer,
		RunInContainer:    p.RunInContainer,
		GetPodsFromKubernetes: func(context.Context) ([]*corev1.Pod, error) {
			return pods.Lister().List(labels.Everything())
		},
		StreamIdleTimeout:     30 * time.Minute,
		StreamCreationTimeout: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ctx) }()
	log.G(ctx).Infof("node %s registered; kubelet API on https://%s; vmmd %s", cfg.NodeName, srv.Addr(), host.Meta.Version)

	select {
	case err := <-pcDone:
		return fmt.Errorf("pod controller: %w", err)
	case err := <-ncDone:
		return fmt.Errorf("node controller: %w", err)
	case err := <-srvDone:
		return fmt.Errorf("kubelet API: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// firstHost reads the host from vmmd, trying for up to 30 s (vmmd may be
// starting next to us).
func firstHost(ctx context.Context, np *node.Provider) (node.Host, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := np.Host(ctx)
		if err == nil || time.Now().After(deadline) {
			return h, err
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// hostView builds the pod mapping's view of the host, fresh for each pod.
func hostView(cfg *config.Config, np *node.Provider) provider.HostView {
	return func(ctx context.Context) (podvm.Host, error) {
		h, err := np.Host(ctx)
		if err != nil {
			return podvm.Host{}, err
		}
		m := h.Meta
		modes := node.Modes(m)
		out := podvm.Host{
			NodeName:       cfg.NodeName,
			NodeIP:         cfg.NodeIP,
			CPUs:           m.HostCpus,
			Modes:          modes,
			DefaultMode:    m.DefaultNetworkingMode,
			Bridges:        m.Bridges,
			Networks:       h.Networks,
			ForwardService: m.ForwardServiceEnabled,
		}
		for _, mode := range modes {
			if mode == vmmv1.NetworkingMode_NETWORKING_MODE_BRIDGE {
				out.DefaultMode = mode
			}
		}
		if m, ok := podvm.ParseMode(cfg.DefaultNetworkingMode); ok {
			out.DefaultMode = m // pods are refused with a clear reason if the host does not offer it
		}
		for _, im := range h.Images {
			out.Images = append(out.Images, podvm.Image{Name: im.Name, Cmdline: im.Cmdline})
		}
		return out, nil
	}
}

func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	rc.UserAgent = "vmm-kubelet"
	return kubernetes.NewForConfig(rc)
}
