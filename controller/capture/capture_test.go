package capture

import (
	"os"
	"testing"
)

func TestParseFilter(t *testing.T) {
	// tcpdump -ddd -y EN10MB icmp
	prog, err := parseFilter("6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 1\n6 0 0 262144\n6 0 0 0\n")
	if err != nil || len(prog) != 6 || prog[1] != (filterInsn{Code: 21, Jt: 0, Jf: 3, K: 2048}) {
		t.Fatalf("parse: %v, %+v", err, prog)
	}
	for _, bad := range []string{"2\n40 0 0 12\n", "x\n", "1\n40 0 zero 12\n"} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestStartTime(t *testing.T) {
	a, err := startTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("this process: %d, %v", a, err)
	}
	if b, _ := startTime(os.Getpid()); b != a {
		t.Fatalf("start time moved: %d, then %d", a, b)
	}
	if _, err := startTime(1 << 30); err == nil {
		t.Fatal("a PID that cannot exist has a start time")
	}
}
