#!/usr/bin/env python3
"""Side-by-side benchmark: our calico (+ calico-ipam) against Debian's ptp + host-local.

Both plugins run Mesos-style (replaced environment, compact sorted stdin) from this one
process, alternating ADD and DEL container by container inside one simulated agent
("host") network namespace, so machine noise hits both sides alike. Reports medians and
the ratio ours / theirs. Needs root, iproute2, containernetworking-plugins and a release
build (`swift build -c release --static-swift-stdlib`).

    scripts/bench-cni.py [--rounds 40] [--live 300] [--products .build/release]

`--live N` also measures ADD latency with N live endpoints in the store against an empty one.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def invoke(plugin, command, cid, netns, conf, plugin_dirs):
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": plugin_dirs,
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    if netns:
        env["CNI_NETNS"] = netns
    stdin = json.dumps(conf, sort_keys=True, separators=(",", ":")).encode()
    # This script re-executes itself inside the host namespace once (see main), so the
    # plugins run as direct children with nothing else on the timed path.
    t0 = time.perf_counter_ns()
    p = subprocess.run([plugin], input=stdin, env=env, capture_output=True)
    t1 = time.perf_counter_ns()
    if p.returncode != 0:
        sys.exit(f"{plugin} {command} failed ({p.returncode}): {p.stdout.decode()} {p.stderr.decode()}")
    return (t1 - t0) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--live", type=int, default=0)
    ap.add_argument("--products", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
    ap.add_argument("--inside", help=argparse.SUPPRESS)
    args = ap.parse_args()
    products = os.path.abspath(args.products)

    if not args.inside:
        host = f"bench-host-{uuid.uuid4().hex[:6]}"
        sh("ip", "netns", "add", host)
        try:
            sh("ip", "-n", host, "link", "set", "lo", "up")
            r = subprocess.run(["ip", "netns", "exec", host, sys.executable, __file__, "--inside", host,
                                "--rounds", str(args.rounds), "--live", str(args.live), "--products", products])
            sys.exit(r.returncode)
        finally:
            sh("ip", "netns", "delete", host, check=False)

    work = tempfile.mkdtemp(prefix="bench-cni-")
    plugdir = os.path.join(work, "plugins")
    os.makedirs(plugdir)
    for name in ("calico", "calico-ipam"):
        shutil.copy(os.path.join(products, name), plugdir)
    for name in ("ptp", "host-local"):
        shutil.copy(os.path.join("/usr/lib/cni", name), plugdir)
    db = os.path.join(work, "calico.db")
    calico_conf = {
        "args": {"org.apache.mesos": {"network_info": {"ip_addresses": [{"protocol": "IPv4"}],
                 "labels": {"labels": [{"key": "biz_type", "value": "bookstore"}]}, "name": "calico"}}},
        "cniVersion": "0.2.0", "name": "calico", "type": "calico", "datastore_type": "sqlite",
        "sqlite_path": db, "nodename": "bench-node", "ipam": {"type": "calico-ipam"}, "mtu": 1450,
    }
    ptp_conf = {
        "args": calico_conf["args"], "cniVersion": "0.2.0", "name": "ptpnet", "type": "ptp", "mtu": 1450,
        "ipam": {"type": "host-local", "subnet": "10.99.0.0/16", "dataDir": os.path.join(work, "host-local")},
    }
    calico = os.path.join(plugdir, "calico")
    ptp = os.path.join(plugdir, "ptp")

    def container():
        name = f"bench-c-{uuid.uuid4().hex[:8]}"
        sh("ip", "netns", "add", name)
        return name, f"/var/run/netns/{name}"

    def run_pair(plugin, conf):
        ns, path = container()
        cid = str(uuid.uuid4())
        try:
            add = invoke(plugin, "ADD", cid, path, conf, plugdir)
            dele = invoke(plugin, "DEL", cid, path, conf, plugdir)
        finally:
            sh("ip", "netns", "delete", ns, check=False)
        return add, dele

    # Warm up both (page cache, first-run datastore setup).
    run_pair(calico, calico_conf)
    run_pair(ptp, ptp_conf)
    ours_add, ours_del, theirs_add, theirs_del = [], [], [], []
    for i in range(args.rounds):
        pairs = [(calico, calico_conf, ours_add, ours_del), (ptp, ptp_conf, theirs_add, theirs_del)]
        if i % 2:
            pairs.reverse()
        for plugin, conf, adds, dels in pairs:
            a, d = run_pair(plugin, conf)
            adds.append(a)
            dels.append(d)

    med = statistics.median
    print(f"rounds: {args.rounds}")
    print(f"ADD  calico {med(ours_add):7.2f} ms   ptp+host-local {med(theirs_add):7.2f} ms   ratio {med(ours_add)/med(theirs_add):.2f}")
    print(f"DEL  calico {med(ours_del):7.2f} ms   ptp+host-local {med(theirs_del):7.2f} ms   ratio {med(ours_del)/med(theirs_del):.2f}")

    if args.live:
        empty = [run_pair(calico, calico_conf)[0] for _ in range(10)]
        live = []
        for _ in range(args.live):
            ns, path = container()
            invoke(calico, "ADD", str(uuid.uuid4()), path, calico_conf, plugdir)
            live.append(ns)
        loaded = [run_pair(calico, calico_conf)[0] for _ in range(10)]
        print(f"ADD with {args.live} live endpoints {med(loaded):7.2f} ms vs empty store {med(empty):7.2f} ms   ratio {med(loaded)/med(empty):.2f}")
        for ns in live:
            sh("ip", "netns", "delete", ns, check=False)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
