// Package ovnnb holds typed models of the OVN northbound tables ovsnet
// writes (Logical_Switch, Logical_Switch_Port, ACL, Port_Group, Logical_Router, Logical_Router_Port, Load_Balancer, Load_Balancer_Health_Check, NAT, Logical_Router_Static_Route, HA_Chassis_Group, HA_Chassis), generated
// by libovsdb's modelgen from those tables of the schema Debian's OVN
// 23.03 ships.
package ovnnb

//go:generate go tool modelgen -extended -p ovnnb -o . ovn-nb.ovsschema
