package attach

import (
	"fmt"
	"regexp"
	"strings"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]+$`)

// CheckName validates a Linux interface name: what names what it is
// (a bridge, an interface) in the error.
func CheckName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", what)
	case len(name) > 15:
		return fmt.Errorf("%s name %q is %d characters long: Linux allows at most 15", what, name, len(name))
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("%s name %q starts with '-', which tools would read as an option", what, name)
	case strings.Contains(name, "/"):
		return fmt.Errorf("%s name %q contains '/', which Linux does not allow in interface names", what, name)
	case name == "." || name == ".." || !nameRE.MatchString(name):
		return fmt.Errorf("%s name %q is not a valid interface name (use letters, digits, - _ . : @)", what, name)
	}
	return nil
}

// CheckMTU validates an MTU given on the command line (0: not given).
func CheckMTU(mtu int) error {
	if mtu != 0 && (mtu < 68 || mtu > 65535) {
		return fmt.Errorf("MTU %d is outside 68..65535", mtu)
	}
	return nil
}
