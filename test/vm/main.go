// Command vm runs ovsnet's end-to-end tests on Open vSwitch's kernel
// datapath. This machine's kernel may have no openvswitch module, so it
// boots Debian's own kernel under qemu with the host's root filesystem
// shared read-only (virtio-9p, a tmpfs overlay on top: every write stays in
// the guest), loads openvswitch, GRE, VXLAN, Geneve and conntrack there,
// and runs the e2e test binary, built here on the host, inside. The tests'
// sandboxes then pick datapath_type=system, as on a real Debian or Ubuntu
// host. Its output is the test binary's; its exit code the binary's.
//
//	go run ./test/vm -run 'TestSeedScenario|TestSpoofGuard'
//	go run ./test/vm -bench ./bench/kernel
//
// Without KVM (or with a nested one that cannot run a stock kernel) qemu
// emulates the CPU: 20-45x slower than the host, so compare ratios measured
// in one run, never absolute figures.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.run, "run", ".", "go test -run pattern of the e2e tests to run in the VM")
	flag.StringVar(&o.kver, "kver", "", "Debian kernel ABI to boot, such as 6.1.0-57-amd64 (default: what linux-image-amd64 depends on now)")
	flag.StringVar(&o.cache, "cache", "/var/cache/ovsnet-vm", "where the kernel and the initramfs are kept between runs")
	flag.IntVar(&o.mem, "mem", 3072, "guest memory in MiB (its /tmp is in memory too)")
	flag.IntVar(&o.cpus, "cpus", 2, "guest CPUs")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "kill the VM after this long")
	flag.StringVar(&o.pkg, "pkg", "./test/e2e", "the test package to build and run")
	flag.StringVar(&o.script, "script", "", "run this shell script in the VM instead of the tests (the built binaries are in /job)")
	flag.StringVar(&o.testArgs, "args", "", "more arguments for the test binary, such as -test.count=2")
	flag.StringVar(&o.bench, "bench", "", "run this benchmark command (a package, such as ./bench/kernel) in the VM instead of the tests")
	flag.StringVar(&o.benchOut, "bench-out", "bench/results/kernel.json", "where the benchmark's result file goes")
	flag.StringVar(&o.benchArgs, "bench-args", "", "more arguments for the benchmark (its cnitool is -cnitool "+guestBin+"/cnitool-bin/cnitool)")
	flag.Parse()
	rc, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm: "+err.Error())
		os.Exit(2)
	}
	os.Exit(rc)
}

type options struct {
	run, kver, cache, pkg, script, testArgs string
	bench, benchOut, benchArgs              string
	mem, cpus                               int
	timeout                                 time.Duration
}

func run(o options) (int, error) {
	root, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	k, err := kernelFor(o)
	if err != nil {
		return 0, err
	}
	job, err := os.MkdirTemp("", "ovsnet-vm-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(job)
	if err := build(root, job, o); err != nil {
		return 0, err
	}
	script := o.script
	if script == "" {
		body := testScript(filepath.Join(root, o.pkg), o)
		if o.bench != "" {
			body = fmt.Sprintf("cd %q && %s/bench -ovsnet %s/ovsnet -out /job/result.json %s\n", root, guestBin, guestBin, o.benchArgs)
		}
		script = filepath.Join(job, "job-script.sh")
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			return 0, err
		}
	}
	rc, err := boot(k, job, script, o)
	if err == nil && rc == 0 && o.bench != "" {
		b, err := os.ReadFile(filepath.Join(job, "result.json"))
		if err != nil {
			return 0, fmt.Errorf("the benchmark wrote no result: %w", err)
		}
		return rc, os.WriteFile(filepath.Join(root, o.benchOut), b, 0o644)
	}
	return rc, err
}

// kernelFor is the kernel to boot: -kver's, or Debian's current one. When
// apt's lists are missing or stale (the ABI they name no longer served),
// it updates them once and tries again.
func kernelFor(o options) (*kernel, error) {
	try := func() (*kernel, error) {
		ver := o.kver
		if ver == "" {
			var err error
			if ver, err = currentKernel(); err != nil {
				return nil, err
			}
		}
		return ensureKernel(o.cache, ver)
	}
	k, err := try()
	if err == nil {
		return k, nil
	}
	fmt.Fprintf(os.Stderr, "vm: %v\nvm: updating apt's lists and trying again\n", err)
	if out, uerr := exec.Command("apt-get", "update", "-q").CombinedOutput(); uerr != nil {
		return nil, fmt.Errorf("%w (apt-get update: %v: %s)", err, uerr, out)
	}
	return try()
}

// guestBin is where the guest finds what build made (job/bin): copied
// into its memory at boot, since every exec from the 9p share would read
// the binary through it again (1.5 s for ovsnet's start, measured, against
// 8 ms on the host).
const guestBin = "/opt/ovsnet-vm"

// build compiles ovsnet (static, as make build does), the test binary and
// the cnitool the CNI tests and benchmarks drive into job: Go builds in the guest would
// take minutes, and it has no network to fetch modules.
func build(root, job string, o options) error {
	bin := filepath.Join(job, "bin")
	steps := [][]string{{"go", "build", "-o", filepath.Join(bin, "ovsnet"), "./cmd/ovsnet"}}
	if o.bench != "" {
		steps = append(steps, []string{"go", "build", "-o", filepath.Join(bin, "bench"), o.bench})
	} else {
		steps = append(steps, []string{"go", "test", "-c", "-o", filepath.Join(bin, "e2e.test"), o.pkg})
	}
	steps = append(steps, []string{"env", "GOBIN=" + filepath.Join(bin, "cnitool-bin"), "go", "install", "github.com/containernetworking/cni/cnitool@v1.3.1"})
	for _, s := range steps {
		c := exec.Command(s[0], s[1:]...)
		c.Dir, c.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// testScript runs the test binary in the guest from the package's source
// directory (tests read files relative to it), with the prebuilt ovsnet.
func testScript(dir string, o options) string {
	return fmt.Sprintf(`set -u
export OVSNET_BIN=%s/ovsnet OVSNET_DATAPATH_EXPECT=system OVSNET_VM=1
cd %q
%s/e2e.test -test.v -test.count=1 -test.timeout=%s -test.run %q %s
`, guestBin, dir, guestBin, o.timeout-2*time.Minute, o.run, o.testArgs)
}
