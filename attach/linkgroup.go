package attach

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// DeleteLinks removes links of this netns (missing ones are fine). The
// kernel waits for an RCU grace period each time it unregisters devices
// (16-19 ms here), once per request: so more than one link is put in a
// link group of its own and the group deleted in one request, one wait
// for all of them (a veth's peer goes with it).
func DeleteLinks(names []string) error {
	if len(names) == 1 {
		return DeleteLink(names[0])
	}
	if len(names) == 0 {
		return nil
	}
	group, err := freeGroup()
	if err != nil {
		return err
	}
	var errs []error
	n := 0
	for _, name := range names {
		l, err := netlink.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case errors.As(err, &nf):
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		case kernelVport(l):
			continue
		}
		if err := netlink.LinkSetGroup(l, int(group)); err != nil {
			errs = append(errs, fmt.Errorf("put %s in link group %d: %w", name, group, err))
			continue
		}
		n++
	}
	if n > 0 {
		errs = append(errs, deleteGroup(group))
	}
	return errors.Join(errs...)
}

// freeGroup is a link group no link of this netns is in, from the upper
// half of the numbers (administrators number theirs from the bottom).
func freeGroup() (uint32, error) {
	ls, err := netlinksafe.LinkList()
	if err != nil {
		return 0, err
	}
	used := map[uint32]bool{}
	for _, l := range ls {
		used[l.Attrs().Group] = true
	}
	for {
		if g := 1<<31 + rand.Uint32N(1<<31-1); !used[g] {
			return g, nil
		}
	}
}

// deleteGroup deletes every link of group in one RTM_DELLINK request.
func deleteGroup(group uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("delete link group %d: %w", group, err)
	}
	return nil
}
