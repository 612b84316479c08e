package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func statusCmd(g *globals) *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:     "status [--controller 127.0.0.1:9476]",
		Short:   "Summarize the controller's view: health, convergence runs, repairs, ports",
		Example: "  ovsnet status\n  ovsnet status -o json",
		Args:    exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			hc := &http.Client{Timeout: 3 * time.Second}
			get := func(path string) (int, string, error) {
				r, err := hc.Get("http://" + addr + path)
				if err != nil {
					return 0, "", fmt.Errorf("no controller answers at %s (%v): start it with `ovsnet controller` or `systemctl start ovsnet-controller`", addr, err)
				}
				defer r.Body.Close()
				b, _ := io.ReadAll(r.Body)
				return r.StatusCode, string(b), nil
			}
			code, health, err := get("/healthz")
			if err != nil {
				return err
			}
			_, metrics, err := get("/metrics")
			if err != nil {
				return err
			}
			st := map[string]any{"healthy": code == 200, "health": strings.TrimSpace(health)}
			ports := map[string]string{}
			api := map[string]string{} // "add-port/ok": requests served through the attach API
			for _, l := range strings.Split(metrics, "\n") {
				f := strings.Fields(l)
				if len(f) != 2 || strings.HasPrefix(l, "#") {
					continue
				}
				switch name := f[0]; {
				case strings.HasPrefix(name, `ovsnet_api_requests_total{`):
					var op, result string
					fmt.Sscanf(strings.NewReplacer(`"`, " ", ",", " ", "}", " ").Replace(strings.TrimPrefix(name, "ovsnet_api_requests_total{")), "op= %s result= %s", &op, &result)
					api[op+"/"+result] = f[1]
				case strings.HasPrefix(name, `ovsnet_ports{bridge="`):
					ports[strings.TrimSuffix(strings.TrimPrefix(name, `ovsnet_ports{bridge="`), `"}`)] = f[1]
				case name == "ovsnet_reconcile_total", name == "ovsnet_reconcile_errors_total", name == "ovsnet_drift_repairs_total",
					name == "ovsnet_gc_ports_total", name == "ovsnet_flows_installed", name == "ovsnet_ovsdb_connected", name == "ovsnet_bad_intent":
					st[strings.TrimPrefix(name, "ovsnet_")] = f[1]
				}
			}
			st["ports"], st["api_requests"] = ports, api
			text := fmt.Sprintf("controller at %s: %s\n  OVSDB connected: %v\n  reconciles: %v (errors %v), drift repairs: %v, ports collected: %v\n  flows: %v, ports: %s\n  attach API requests: %s\n  external_ids values that do not decode: %v",
				addr, strings.TrimSpace(health), st["ovsdb_connected"] == "1", st["reconcile_total"], st["reconcile_errors_total"],
				st["drift_repairs_total"], st["gc_ports_total"], st["flows_installed"], pairs(ports), pairs(api), st["bad_intent"])
			if err := g.print(c, st, text); err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("controller not converged")
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "controller", "127.0.0.1:9476", "the controller's --listen address")
	return c
}

// pairs prints m as sorted k=v words, or "none".
func pairs(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
