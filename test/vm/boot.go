package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stage1 is the initramfs' /init: it mounts the host's root read-only
// under a tmpfs overlay, the job folder read-write as /job and the
// kernel's modules as /lib/modules, then hands over to stage 2.
func stage1(mods []string) string {
	fail := `{ echo VM-INIT-FAIL; echo o > /proc/sysrq-trigger; sleep 5; }`
	return `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in ` + strings.Join(mods, " ") + `; do insmod /mods/$m.ko || echo "insmod $m failed"; done
opts=trans=virtio,version=9p2000.L,msize=1048576
mount -t 9p -o $opts,ro,cache=loose hostroot /lower || ` + fail + `
mount -t tmpfs -o size=75% tmpfs /rw; mkdir -p /rw/u /rw/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/u,workdir=/rw/w /newroot || ` + fail + `
mkdir -p /newroot/job /newroot/lib/modules
mount -t 9p -o $opts job /newroot/job || ` + fail + `
mount -t 9p -o $opts,ro,cache=loose modules /newroot/lib/modules || ` + fail + `
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash /job/stage2
`
}

// guestModules are loaded before the job: the kernel datapath and what
// its tunnels and conntrack need.
var guestModules = []string{"openvswitch", "veth", "tun", "ip_gre", "vxlan", "geneve", "vport_gre", "vport_vxlan",
	"vport_geneve", "nf_conntrack", "nf_nat", "iptable_nat", "iptable_filter", "ip6table_filter", "ip6table_nat", "sch_ingress", "macvlan"}

// stage2 runs as the guest's PID 1 on the overlay root: a minimal system
// (no init daemon, as on the host), then the job, then power off.
func stage2() string {
	return `mount -t proc proc /proc; mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run; mkdir -p /run/netns /run/openvswitch /var/run
# /tmp stays the overlay's (writes go to memory as everywhere): a tmpfs
# there would hide a checkout under the host's /tmp, whose tests run here.
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname ovsnet-vm; ip link set lo up
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
for m in ` + strings.Join(guestModules, " ") + `; do modprobe $m || echo "vm: modprobe $m failed"; done
cp -a /job/bin ` + guestBin + `
echo "vm: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime)s" > /job/out
bash /job/job.sh >> /job/out 2>&1
echo $? > /job/rc.tmp && mv /job/rc.tmp /job/rc
sync
echo o > /proc/sysrq-trigger
sleep 10
`
}

// boot runs script in a VM on kernel k with job as /job, streaming the
// script's output, and returns its exit code.
func boot(k *kernel, job, script string, o options) (int, error) {
	b, err := os.ReadFile(script)
	if err != nil {
		return 0, err
	}
	for name, body := range map[string]string{"stage2": stage2(), "job.sh": string(b)} {
		if err := os.WriteFile(filepath.Join(job, name), []byte(body), 0o755); err != nil {
			return 0, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	q := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(k, job, o)...)
	qlog, err := os.Create(filepath.Join(job, "qemu.log"))
	if err != nil {
		return 0, err
	}
	defer qlog.Close()
	q.Stdout, q.Stderr = qlog, qlog
	start := time.Now()
	if err := q.Start(); err != nil {
		return 0, fmt.Errorf("qemu-system-x86_64: %w (apt-get install qemu-system-x86)", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Wait() }()
	qerr := follow(filepath.Join(job, "out"), done, os.Stdout)
	rcb, err := os.ReadFile(filepath.Join(job, "rc"))
	if err != nil {
		tail(filepath.Join(job, "console.log"), 40)
		tail(filepath.Join(job, "qemu.log"), 20)
		return 0, fmt.Errorf("no exit code from the VM after %s (qemu: %v; timeout %s)", time.Since(start).Round(time.Second), qerr, o.timeout)
	}
	fmt.Printf("vm: %s in the VM\n", time.Since(start).Round(time.Second))
	return strconv.Atoi(strings.TrimSpace(string(rcb)))
}

func qemuArgs(k *kernel, job string, o options) []string {
	share := func(id, path, tag string, ro bool) []string {
		fs := "local,id=" + id + ",path=" + path + ",security_model=none"
		if ro {
			fs += ",readonly=on,multidevs=remap"
		}
		return []string{"-fsdev", fs, "-device", "virtio-9p-pci,fsdev=" + id + ",mount_tag=" + tag}
	}
	args := []string{"-accel", "tcg,thread=multi", "-cpu", "max", "-m", strconv.Itoa(o.mem), "-smp", strconv.Itoa(o.cpus),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-display", "none", "-nic", "none",
		"-serial", "file:" + filepath.Join(job, "console.log"), "-bios", "/usr/share/qemu/qboot.rom",
		"-kernel", k.image, "-initrd", k.initramfs,
		"-append", "console=ttyS0 quiet panic=-1 8250.nr_uarts=1 mitigations=off tsc=reliable"}
	args = append(args, share("r", "/", "hostroot", true)...)
	args = append(args, share("m", k.modules, "modules", true)...)
	return append(args, share("j", job, "job", false)...)
}

// follow copies what the guest appends to path to w until qemu exits.
func follow(path string, done <-chan error, w io.Writer) error {
	var off int64
	copyNew := func() {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		f.Seek(off, io.SeekStart)
		n, _ := io.Copy(w, f)
		off += n
	}
	for {
		select {
		case err := <-done:
			copyNew()
			return err
		case <-time.After(time.Second):
			copyNew()
		}
	}
}

func tail(path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(os.Stderr, "--- %s (last %d lines)\n%s\n", filepath.Base(path), n, strings.Join(lines, "\n"))
}
