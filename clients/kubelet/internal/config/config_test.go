package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, args ...string) Config {
	t.Helper()
	c := Default()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaultsWithANodeAreValid(t *testing.T) {
	c := parse(t, "--node-name=host-a", "--node-ip=10.0.0.5")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ListenPort != 10250 || c.MaxPods != 110 || c.LeaseDuration != 40*time.Second || c.ReservedMemory.String() != "512Mi" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestFlags(t *testing.T) {
	c := parse(t, "--node-name=host-a", "--node-ip=10.0.0.5", "--reserved-cpu=500m", "--reserved-memory=1Gi",
		"--node-lease-duration=4s", "--default-networking-mode=tap", "--port=11250")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ReservedCPU.MilliValue() != 500 || c.ReservedMemory.Value() != 1<<30 || c.LeaseDuration != 4*time.Second || c.DefaultNetworkingMode != "tap" || c.ListenPort != 11250 {
		t.Errorf("parsed: %+v", c)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&strings.Builder{})
	d := Default()
	d.Bind(fs)
	if err := fs.Parse([]string{"--reserved-memory=lots"}); err == nil || !strings.Contains(err.Error(), "reserved-memory") {
		t.Errorf("bad quantity: %v", err)
	}
}

// Every problem is reported at once, each naming its flag.
func TestValidateReportsEveryProblem(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--node-ip=10.0.0.5"}, []string{"--node-name"}},
		{[]string{"--node-name=UPPER", "--node-ip=10.0.0.5"}, []string{"--node-name"}},
		{[]string{"--node-name=a"}, []string{"--node-ip"}},
		{[]string{"--node-name=a", "--node-ip=::"}, []string{"--node-ip"}},
		{[]string{"--node-name=a", "--node-ip=10.0.0.5", "--vmm-socket="}, []string{"--vmm-socket"}},
		{[]string{"--node-name=a", "--node-ip=10.0.0.5", "--port=70000", "--max-pods=0"}, []string{"--port", "--max-pods"}},
		{[]string{"--node-name=a", "--node-ip=10.0.0.5", "--tls-private-key-file=/k"}, []string{"--tls-cert-file"}},
		{[]string{"--node-name=a", "--node-ip=10.0.0.5", "--reserved-cpu=-1", "--reserved-memory=-1Mi"}, []string{"--reserved-cpu", "--reserved-memory"}},
		{[]string{"--node-name=a", "--node-ip=10.0.0.5", "--default-networking-mode=custom"}, []string{"--default-networking-mode"}},
		{[]string{"--node-name=a", "--node-ip=10.0.0.5", "--node-lease-duration=1s", "--node-status-update-frequency=2h"}, []string{"--node-lease-duration", "--node-status-update-frequency"}},
	}
	for _, tc := range cases {
		c := parse(t, tc.args...)
		err := c.Validate()
		if err == nil {
			t.Errorf("%v: accepted", tc.args)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tc.want) {
			t.Errorf("%v: %d problems, want %d: %v", tc.args, len(lines), len(tc.want), err)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(lines[i], w+":") {
				t.Errorf("%v: problem %d %q does not name %s", tc.args, i, lines[i], w)
			}
		}
	}
}
