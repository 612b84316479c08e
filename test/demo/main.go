// Command demo is the quick start: it starts a private OVS sandbox host,
// creates two container namespaces, attaches them to a bridge with ovsnet,
// pings between them and prints `ovsnet show`, then cleans everything up.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"

	"github.com/ovsnet/ovsnet/test/sandbox"
)

func main() {
	bin := flag.String("ovsnet", "bin/ovsnet", "path of the ovsnet binary")
	keep := flag.Bool("keep", false, "leave the sandbox running (clean up with `ip netns del ovsnet-demo ...`)")
	flag.Parse()
	abs, err := exec.LookPath(*bin)
	if err != nil {
		fail(fmt.Errorf("ovsnet binary: %w (run `make build`)", err))
	}
	if err := run(abs, *keep); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo: "+err.Error())
	os.Exit(1)
}

func run(bin string, keep bool) (err error) {
	fmt.Println("# starting a private Open vSwitch (userspace datapath) in netns ovsnet-demo")
	sb, err := sandbox.Start("ovsnet-demo", "")
	if err != nil {
		return err
	}
	containers := []string{"demo-c1", "demo-c2"}
	cleanup := func() {
		if keep {
			fmt.Printf("# left running: ip netns exec ovsnet-demo env OVS_RUNDIR=%s %s show\n", sb.Dir, bin)
			return
		}
		for _, c := range containers {
			sandbox.DelNetns(c)
		}
		sb.Close()
	}
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() { <-sig; cleanup(); os.Exit(130) }()

	for _, c := range containers {
		fmt.Printf("# a container: netns %s\n", c)
		if err := sandbox.AddNetns(c); err != nil {
			return err
		}
	}
	steps := [][]string{
		{bin, "add-br", "ovs-br1", "--subnet", "172.16.1.0/24"},
		{bin, "add-port", "ovs-br1", "eth1", "demo-c1", "--ipaddress=172.16.1.2/24"},
		{bin, "add-port", "ovs-br1", "eth1", "demo-c2", "--ip"},
		{"ip", "netns", "exec", "demo-c1", "ping", "-c", "3", "-i", "0.2", "172.16.1.3"},
		{"ip", "netns", "exec", "demo-c2", "ping", "-c", "3", "-i", "0.2", "172.16.1.1"},
		{bin, "show"},
	}
	for _, s := range steps {
		fmt.Println("$ " + strings.Join(s, " "))
		c := sb.Command(s[0], s[1:]...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(s, " "), err)
		}
	}
	fmt.Println("# demo passed: two containers attached to ovs-br1 reach each other and the gateway")
	return nil
}
