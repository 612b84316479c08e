package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// kernel is a Debian kernel unpacked for booting: its image, its modules
// tree (shared with the guest as /lib/modules) and the initramfs that
// mounts the host's root.
type kernel struct {
	ver, image, modules, initramfs string
}

var kverRE = regexp.MustCompile(`linux-image-([0-9][^\s]*-amd64)`)

// currentKernel is the ABI Debian's linux-image-amd64 depends on today:
// Debian serves only current kernels, so a pinned one ages out.
func currentKernel() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if m := kverRE.FindSubmatch(out); err == nil && m != nil {
		return string(m[1]), nil
	}
	return "", fmt.Errorf("cannot tell Debian's current kernel (apt-cache depends linux-image-amd64: %v %s): run apt-get update, or give -kver", err, strings.TrimSpace(string(out)))
}

// ensureKernel downloads and unpacks linux-image-VER into cache once, with
// its module dependencies and the initramfs.
func ensureKernel(cache, ver string) (*kernel, error) {
	dir := filepath.Join(cache, ver)
	k := &kernel{ver: ver, image: filepath.Join(dir, "boot", "vmlinuz-"+ver), modules: filepath.Join(dir, "lib", "modules"),
		initramfs: filepath.Join(dir, "initramfs.cpio.gz")}
	if _, err := os.Stat(k.initramfs); err == nil {
		return k, nil
	}
	tmp, err := os.MkdirTemp(cache0(cache), ver+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	steps := []struct {
		dir  string
		args []string
	}{
		{tmp, []string{"apt-get", "download", "linux-image-" + ver}},
		{tmp, []string{"sh", "-c", "dpkg-deb -x linux-image-*.deb root"}},
		{tmp, []string{"depmod", "-b", "root", ver}},
	}
	for _, s := range steps {
		c := exec.Command(s.args[0], s.args[1:]...)
		c.Dir, c.Env = s.dir, append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
		if out, err := c.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("fetch kernel %s: %s: %v\n%s", ver, strings.Join(s.args, " "), err, out)
		}
	}
	root := filepath.Join(tmp, "root")
	if err := writeInitramfs(root, ver, filepath.Join(root, "initramfs.cpio.gz")); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(root, dir); err != nil {
		return nil, err
	}
	return k, nil
}

func cache0(cache string) string {
	os.MkdirAll(cache, 0o755)
	return cache
}

// initModules are what the initramfs loads to reach the host's root: virtio
// PCI, 9p over virtio, overlayfs.
var initModules = []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
	"9pnet", "9pnet_virtio", "netfs", "fscache", "9p", "overlay"}

// writeInitramfs makes the initramfs: busybox, the modules above and
// stage1 as /init.
func writeInitramfs(root, ver, out string) error {
	ir, err := os.MkdirTemp("", "ovsnet-initramfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ir)
	for _, d := range []string{"bin", "proc", "sys", "dev", "mods", "lower", "rw", "newroot"} {
		if err := os.MkdirAll(filepath.Join(ir, d), 0o755); err != nil {
			return err
		}
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox not installed: apt-get install busybox-static")
	}
	if err := copyFile(busybox, filepath.Join(ir, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	for _, m := range initModules {
		src, err := findModule(filepath.Join(root, "lib", "modules", ver, "kernel"), m+".ko")
		if err != nil {
			return err
		}
		if err := copyFile(src, filepath.Join(ir, "mods", m+".ko"), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(ir, "init"), []byte(stage1(initModules)), 0o755); err != nil {
		return err
	}
	c := exec.Command("sh", "-c", `find . | cpio -o -H newc --quiet | gzip -1 > "$OUT"`)
	c.Dir, c.Env = ir, append(os.Environ(), "OUT="+out)
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("initramfs: %v %s (needs cpio)", err, b)
	}
	return nil
}

func findModule(dir, name string) (string, error) {
	var found string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && found == "" && d.Name() == name {
			found = p
		}
		return nil
	})
	if found == "" {
		return "", fmt.Errorf("module %s not in %s", name, dir)
	}
	return found, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}
