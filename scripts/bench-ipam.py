#!/usr/bin/env python3
"""Side-by-side benchmark: calico-ipam against Debian's host-local, as IPAM plugins alone.

Both run from this one process with Mesos' replaced environment, alternating ADD+DEL
container by container, so machine noise hits both alike. IPAM plugins touch no network
namespace, so this needs neither root nor namespaces. Reports medians and ours/theirs.

    swift build -c release --static-swift-stdlib --product calico-ipam
    scripts/bench-ipam.py [--rounds 200] [--products .build/release]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def invoke(plugin, command, cid, conf):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": "eth0",
           "CNI_NETNS": "/var/run/netns/none", "CNI_PATH": os.path.dirname(plugin), "PATH": "/usr/bin:/bin"}
    stdin = json.dumps(conf, sort_keys=True, separators=(",", ":")).encode()
    t0 = time.perf_counter_ns()
    p = subprocess.run([plugin], input=stdin, env=env, capture_output=True)
    t1 = time.perf_counter_ns()
    if p.returncode != 0:
        sys.exit(f"{plugin} {command} failed ({p.returncode}): {p.stdout.decode()} {p.stderr.decode()}")
    return (t1 - t0) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--products", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
    args = ap.parse_args()
    ours = os.path.join(os.path.abspath(args.products), "calico-ipam")
    theirs = "/usr/lib/cni/host-local"
    work = tempfile.mkdtemp(prefix="bench-ipam-")
    calico_conf = {"cniVersion": "0.4.0", "name": "calico", "type": "calico", "datastore_type": "sqlite",
                   "sqlite_path": os.path.join(work, "calico.db"), "nodename": "bench-node",
                   "log_level": "warning", "ipam": {"type": "calico-ipam"}}
    hl_conf = {"cniVersion": "0.4.0", "name": "hl", "type": "ptp",
               "ipam": {"type": "host-local", "subnet": "10.99.0.0/16", "dataDir": os.path.join(work, "host-local")}}
    sides = {"calico-ipam": (ours, calico_conf, [], []), "host-local": (theirs, hl_conf, [], [])}
    for name, (plugin, conf, _, _) in sides.items():  # warm-up (first-use set-up, page cache)
        invoke(plugin, "ADD", "warm", conf)
        invoke(plugin, "DEL", "warm", conf)
    order = list(sides)
    for i in range(args.rounds):
        for name in (order if i % 2 == 0 else reversed(order)):
            plugin, conf, adds, dels = sides[name]
            cid = f"c{i}"
            adds.append(invoke(plugin, "ADD", cid, conf))
            dels.append(invoke(plugin, "DEL", cid, conf))
    med = statistics.median
    (_, _, oa, od), (_, _, ta, td) = sides["calico-ipam"], sides["host-local"]
    print(f"rounds: {args.rounds}")
    print(f"ADD      calico-ipam {med(oa):6.2f} ms   host-local {med(ta):6.2f} ms   ratio {med(oa)/med(ta):.2f}")
    print(f"DEL      calico-ipam {med(od):6.2f} ms   host-local {med(td):6.2f} ms   ratio {med(od)/med(td):.2f}")
    both_o = [a + d for a, d in zip(oa, od)]
    both_t = [a + d for a, d in zip(ta, td)]
    print(f"ADD+DEL  calico-ipam {med(both_o):6.2f} ms   host-local {med(both_t):6.2f} ms   ratio {med(both_o)/med(both_t):.2f}")


if __name__ == "__main__":
    main()
