# ovsnet: build, quick start and tests. Tests and the demo need root (they
# create network namespaces and run a private Open vSwitch). The binary is
# static (CGO_ENABLED=0): no dynamic loader at each command's start (0.7 ms
# of 3.5 measured here), and it runs on any Linux host.
GO ?= go
# Recipes run in bash with pipefail: a test run piped into its progress
# report fails when the tests do.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build deps demo test unit e2e e2e-kernel vet bench bench-kernel screenshots

# bin/cni/ovsnet is the CNI plugin a runtime runs (copy it to /opt/cni/bin):
# the same program, which acts as the plugin when CNI_COMMAND is set.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.Version=$(VERSION)" -o bin/ovsnet ./cmd/ovsnet
	mkdir -p bin/cni && ln -f bin/ovsnet bin/cni/ovsnet

deps:
	./deploy/deps.sh

# Quick start: install what the demo needs if missing (Open vSwitch and a
# few tools, not the tests' Docker, Podman, OVN, browser and VM), build,
# attach two containers to a bridge in a private OVS sandbox, ping, show.
demo:
	./deploy/deps.sh demo
	$(MAKE) build
	$(GO) run ./test/demo -ovsnet bin/ovsnet

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Every package's unit tests: everything but the end-to-end tests.
unit:
	$(GO) test $$($(GO) list ./... | grep -v /test/e2e)

e2e:
	$(GO) test -count=1 -timeout 30m -v ./test/e2e/

# The end-to-end tests on OVS's kernel datapath (datapath_type=system), in a
# VM booting Debian's own kernel under qemu (test/vm): RUN is a go test -run
# pattern. KERNEL_TESTS are the ones `make test` runs there (the others need
# Docker, Podman or a browser, which the VM does not run, or only repeat
# what these cover; each one that cannot run on the kernel datapath says so
# when run there).
KERNEL_TESTS ?= ^(TestSeedScenario|TestAllocationDualStackAndFlags|TestConcurrentAttach|TestAddPortsBulk|TestRollback|TestSpoofGuard|TestNeighboursAnsweredByFlows|TestNeighbourAdvertGuard|TestLoopbackUnreachable|TestBadIntentFailsClosed|TestIsolationAndLinks|TestForgedICMPErrorsDropped|TestTunnelRogueHostIgnored|TestFloodContained|TestVLANsAndICC|TestFlowsPerPortAndResync|TestNATAndPublishing|TestDeleteLeavesNothing|TestKilledDetachFinished|TestReconcile|TestTunnelTwoHosts|TestTunnelKernelGRE|TestTunnelIPv6|TestController|TestControllerConcurrentAttach|TestCNIPlugin|TestControllerAttachAPI|TestWarmPoolKernel|TestDatapathRestart|TestDoctorChecks|TestOVNJoin|TestOVNAttach|TestOVNRouter|TestOVNService|TestOVNGatewayChassis|TestCapture|TestImpair|TestRateLimit|TestMirror)$$
RUN ?= $(KERNEL_TESTS)
e2e-kernel:
	$(GO) run ./test/vm -run '$(RUN)'

# The kernel datapath's benchmarks, in the same VM (ratios only: emulated;
# the CNI one takes about 100 minutes, most of it filling 1,000
# attachments of each kind).
bench-kernel:
	$(GO) run ./test/vm -bench ./bench/kernel -bench-out bench/results/kernel.json
	$(GO) run ./test/vm -mem 6144 -timeout 150m -bench ./bench/cni -bench-out bench/results/cni-kernel.json \
		-bench-args '-cnitool /opt/ovsnet-vm/cnitool-bin/cnitool -levels 10,1000'
	$(GO) run ./test/vm -mem 4096 -timeout 100m -bench ./bench/pool -bench-out bench/results/pool-kernel.json -bench-args '-sizes 10,1000 -n 15'

# The README's pictures of the controller's page and of `show -o svg`,
# taken by the browser test.
screenshots: build
	mkdir -p docs/img
	OVSNET_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 -run TestPageInBrowser ./test/e2e/

# Benchmarks: not part of `make test` (about 40 minutes on a 2-core VM, most of
# it the 10,000-container run; see README, Performance).
bench: build
	$(GO) run ./bench/attachtypes -ovsnet bin/ovsnet
	$(GO) run ./bench/pipeline -ovsnet bin/ovsnet
	$(GO) run ./bench/attach -ovsnet bin/ovsnet -sizes 10,100,1000
	$(GO) run ./bench/scale -ovsnet bin/ovsnet
	$(GO) run ./bench/tunnel -ovsnet bin/ovsnet
	$(GO) run ./bench/docker -ovsnet bin/ovsnet
	$(GO) run ./bench/cni -ovsnet bin/ovsnet
	$(GO) run ./bench/cni -ovsnet bin/ovsnet -port-type veth -out bench/results/cni-veth.json
	$(GO) run ./bench/detach -ovsnet bin/ovsnet -sizes 1000,10000
	$(GO) run ./bench/pool -ovsnet bin/ovsnet
	$(GO) run ./bench/ovn -ovsnet bin/ovsnet
	$(GO) run ./bench/flood -ovsnet bin/ovsnet
	$(GO) run ./bench/labcost -ovsnet bin/ovsnet
	$(GO) run ./bench/plot

# All tests: formatting and vet, unit tests, end-to-end tests on real OVS's
# userspace datapath here, then on its kernel datapath in a VM. Each test
# is reported as it finishes (test/progress; a failing one with its whole
# output).
test: deps vet
	$(GO) build -o bin/progress ./test/progress
	$(GO) test -count=1 -timeout 40m -json ./... | bin/progress
	$(GO) run ./test/vm -run '$(KERNEL_TESTS)' | $(GO) tool test2json -p kernel-datapath | bin/progress

