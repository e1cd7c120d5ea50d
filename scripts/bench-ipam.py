#!/usr/bin/env python3
"""Side-by-side benchmark: calico-ipam against Debian's host-local, as IPAM plugins alone.

Both run from this one process Mesos-style (bench-cni.py's runner: replaced environment,
compact sorted stdin), alternating ADD+DEL container by container, so machine noise hits
both alike. IPAM plugins touch no network namespace, so this needs neither root nor
namespaces. Reports medians and paired ratios ours/theirs (aim: ADD+DEL <= 1.0).

    swift build -c release --static-swift-stdlib --product calico-ipam
    scripts/bench-ipam.py [--rounds 200] [--products .build/release]
"""
import argparse
import importlib.util
import os
import shutil
import tempfile

_spec = importlib.util.spec_from_file_location("bench_cni", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-cni.py"))
bench_cni = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_cni)

NO_NETNS = "/var/run/netns/none"  # required by ADD, never opened by an IPAM plugin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--products", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-ipam-")
    try:
        ours = bench_cni.Plugin("calico-ipam", os.path.join(os.path.abspath(args.products), "calico-ipam"),
                                {"cniVersion": "0.4.0", "name": "calico", "type": "calico", "datastore_type": "sqlite",
                                 "sqlite_path": os.path.join(work, "calico.db"), "nodename": "bench-node",
                                 "log_level": "warning", "ipam": {"type": "calico-ipam"}}, work)
        theirs = bench_cni.Plugin("host-local", "/usr/lib/cni/host-local",
                                  {"cniVersion": "0.4.0", "name": "hl", "type": "ptp",
                                   "ipam": {"type": "host-local", "subnet": "10.99.0.0/16",
                                            "dataDir": os.path.join(work, "host-local")}}, work)
        times = {p.label: ([], [], []) for p in (ours, theirs)}
        for i in range(args.rounds + 1):  # round 0 warms up (first-use set-up, page cache)
            for plugin in (ours, theirs) if i % 2 == 0 else (theirs, ours):
                add = plugin.invoke("ADD", f"c{i}", NO_NETNS)
                dele = plugin.invoke("DEL", f"c{i}", NO_NETNS)
                if i:
                    for series, t in zip(times[plugin.label], (add, dele, add + dele)):
                        series.append(t)
        print(f"rounds: {args.rounds}")
        for what, k, goal in (("ADD", 0, None), ("DEL", 1, None), ("ADD+DEL", 2, 1.0)):
            bench_cni.report_pair(what, times[ours.label][k], times[theirs.label][k], goal,
                                  ours_label=ours.label, theirs_label=theirs.label)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
