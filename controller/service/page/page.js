// ovsnet's page: the topology picture, port counters, convergence runs and
// a trace form. Read-only: the only request that is not a GET is the trace.
"use strict";

const $ = (id) => document.getElementById(id);
let shown = ""; // the bridges the picture was drawn from, as JSON

async function refresh() {
  let t;
  try {
    const r = await fetch("/api/topology");
    t = await r.json();
    if (!r.ok) throw new Error(t.error || r.statusText);
  } catch (e) {
    $("status").textContent = "cannot read the network: " + e.message;
    return;
  }
  $("status").textContent = "updated " + new Date().toLocaleTimeString();
  const now = JSON.stringify(t.bridges.map((b) => [b.name, b.containers, b.links, b.tunnels, b.intent_errors]));
  if (now !== shown) {
    shown = now;
    await drawPicture();
    fillBridges(t.bridges);
  }
  fillCounters(t.bridges, t.counters || {});
  fillRuns(t.runs || []);
}

async function drawPicture() {
  const r = await fetch("/topology.svg");
  const doc = new DOMParser().parseFromString(await r.text(), "image/svg+xml");
  doc.querySelectorAll("style").forEach((s) => s.remove()); // /view.css has it
  const box = $("topology");
  box.replaceChildren(document.importNode(doc.documentElement, true));
}

// label names a bridge as users know it: a Docker network's name first.
const label = (b) => (b.docker_network && b.docker_network.name ? b.docker_network.name + " (" + b.name + ")" : b.name);

function fillBridges(bridges) {
  const sel = $("trace-bridge");
  const was = sel.value;
  sel.replaceChildren(...bridges.filter((b) => b.managed_by_ovsnet).map((b) => new Option(label(b), b.name)));
  if (was) sel.value = was;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fillCounters(bridges, counters) {
  const rows = [];
  for (const b of bridges) {
    if (b.containers.length > 200) { // drawn as counts too: no table of thousands
      const tr = document.createElement("tr");
      tr.append(cell(label(b)), cell(b.containers.length + " containers (ovsnet show " + b.name + " lists them)"));
      rows.push(tr);
      continue;
    }
    for (const p of b.containers) {
      const c = counters[p.ovs_port];
      const tr = document.createElement("tr");
      tr.id = "counters-" + p.ovs_port;
      if (p.error || p.state !== "up") tr.className = "broken";
      const n = (k) => (c ? String(c[k]) : "–");
      tr.append(cell(label(b)), cell(p.name || p.container), cell(p.interface), cell(p.ovs_port), cell(p.error ? "broken" : p.state),
        cell(n("rx_packets"), "num rx-packets"), cell(n("tx_packets"), "num tx-packets"), cell(n("rx_bytes"), "num"), cell(n("tx_bytes"), "num"),
        cell(c ? String(c.rx_dropped + c.tx_dropped) : "–", "num"));
      rows.push(tr);
    }
  }
  $("counters").tBodies[0].replaceChildren(...rows);
}

function fillRuns(runs) {
  $("runs").replaceChildren(...runs.map((r) => {
    const li = document.createElement("li");
    let s = new Date(r.start).toLocaleTimeString() + ", " + r.duration_ms.toFixed(1) + " ms";
    if (r.repairs && r.repairs.length) s += ": " + r.repairs.join("; ");
    if (r.error) { s += " — failed: " + r.error; li.className = "error"; }
    li.textContent = s;
    return li;
  }));
}

// card finds the picture's card for a container name, runtime name or address.
function card(name) {
  for (const g of document.querySelectorAll("#topology g.port[data-ovsport]")) {
    const d = g.dataset;
    if (d.container === name || d.name === name || d.addrs.split(" ").includes(name)) return g;
  }
  return null;
}

function clearTrace() {
  document.querySelectorAll(".hl-from,.hl-allowed,.hl-dropped").forEach((g) => g.classList.remove("hl-from", "hl-allowed", "hl-dropped"));
  document.querySelectorAll(".trace-path").forEach((p) => p.remove());
  $("trace-error").hidden = true;
  $("trace-verdict").hidden = true;
  $("trace-steps").replaceChildren();
}

// showPath marks the source and destination cards and draws the path
// between them, green when the packet gets through, red when dropped.
function showPath(from, to, allowed) {
  const a = card(from), b = card(to);
  const verdict = allowed ? "allowed" : "dropped";
  if (a) a.classList.add("hl-from");
  if (b) b.classList.add("hl-" + verdict);
  if (!a || !b) return;
  // From the top edge of one card to the top edge of the other, bowing
  // above them (links bow below): no text is crossed.
  const box = (g) => g.querySelector("rect").getBBox();
  const p = box(a), q = box(b);
  const x1 = p.x + p.width / 2, x2 = q.x + q.width / 2, y1 = p.y, y2 = q.y;
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", `M${x1},${y1} Q${(x1 + x2) / 2},${Math.min(y1, y2) - 30} ${x2},${y2}`);
  path.setAttribute("class", "trace-path " + verdict);
  a.ownerSVGElement.append(path);
}

async function trace(ev) {
  ev.preventDefault();
  clearTrace();
  const q = { bridge: $("trace-bridge").value, from: $("trace-from").value, to: $("trace-to").value,
    proto: $("trace-proto").value, dport: Number($("trace-dport").value || 0) };
  let res;
  try {
    const r = await fetch("/api/trace", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(q) });
    res = await r.json();
    if (!r.ok) throw new Error(res.error || r.statusText);
  } catch (e) {
    $("trace-error").textContent = e.message;
    $("trace-error").hidden = false;
    return;
  }
  const v = $("trace-verdict");
  v.textContent = "verdict: " + res.verdict;
  v.className = res.allowed ? "allowed" : "dropped";
  v.hidden = false;
  $("trace-steps").replaceChildren(...(res.steps || []).map((s) => {
    const li = document.createElement("li");
    li.textContent = "table " + s.table + ", " + s.stage + ": " + (s.priority < 0 ? "no flow matches" : (s.match || "any packet") + " -> " + s.actions);
    return li;
  }));
  showPath(q.from, q.to, res.allowed);
}

document.addEventListener("DOMContentLoaded", () => {
  $("trace").addEventListener("submit", trace);
  refresh();
  setInterval(refresh, 3000);
});
