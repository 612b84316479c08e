// Package nb is ovsnet's typed operations on OVN's northbound database,
// one file per table it uses (Logical_Switch, Logical_Switch_Port,
// Port_Group, ACL): reads, the rows ovsnet makes, and the guarded writes
// that keep a network's isolation to its intent. It knows OVN's tables and
// ovsnet's intent keys on them, and nothing of a host's OVS.
package nb
