#!/usr/bin/env python3
"""Side-by-side benchmark: our calico (+ in-process calico-ipam) against Debian's ptp + host-local.

Run by hand as root (not by the tests). Every plugin runs Mesos-style: replaced environment
(CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH, PATH only), compact stdin
with sorted keys and args.org.apache.mesos.network_info, a fresh container namespace whose
`lo` is down. This process moves itself into a simulated agent ("host") namespace with
setns(2), so the plugins are its direct children there and nothing else is on the timed path.

1. ADD and DEL of calico and of ptp + host-local, alternating container by container (the
   order flips every round), so machine noise hits both alike. Reports medians, p90 and the
   ratios against the goals (ADD <= 0.6x, DEL <= 0.8x). calico's DEL returns once the kernel
   has unregistered the veth and leaves the kernel's teardown to a helper process; the run
   waits (untimed) for that helper before the next invocation, so its work is never charged
   to ptp, and reports how long the teardown went on after the DEL returned.
2. `--live N`: ADD (and DEL) latency on an agent whose store holds N live endpoints (N
   attached containers, N veths) against an agent with an empty store, alternating between
   the two agents round by round. Goal: within 1.2x.
3. `--phases N`: N traced ADDs and DELs (strace with a seccomp filter, only the syscalls
   named below are stopped) broken into phases: process start-up (execve to reading stdin),
   datastore syncs (fsync/fdatasync/ftruncate), kernel netlink requests, and the rest.
   strace slows every traced call a little; use it for shares, not absolute figures.

    swift build -c release --static-swift-stdlib --scratch-path .build-e2e-release \\
        --product calico && ... --product calico-ipam
    sudo scripts/bench-cni.py [--rounds 60] [--live 300] [--phases 5] \\
        [--products .build-e2e-release/release]
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


class Namespace:
    """A named network namespace (`ip netns add`), removed by close()."""

    def __init__(self, prefix, loopback_up=False):
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        sh("ip", "netns", "add", self.name)
        if loopback_up:
            sh("ip", "-n", self.name, "link", "set", "lo", "up")
        self.path = f"/var/run/netns/{self.name}"

    def close(self):
        sh("ip", "netns", "delete", self.name, check=False)


def enter(path):
    """Moves this (single-threaded) process into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def mesos_stdin(conf, labels):
    """The network config as Mesos sends it: network_info injected, keys sorted, compact."""
    info = {"name": conf["name"], "ip_addresses": [{"protocol": "IPv4"}],
            "labels": {"labels": [{"key": k, "value": v} for k, v in labels]}}
    c = dict(conf)
    c["args"] = {"org.apache.mesos": {"network_info": info}}
    return json.dumps(c, sort_keys=True, separators=(",", ":")).encode()


class Plugin:
    def __init__(self, label, path, conf, plugin_dir):
        self.label = label
        self.path = path
        self.stdin = mesos_stdin(conf, [("biz_type", "bookstore"), ("role", "server")])
        self.plugin_dir = plugin_dir

    def env(self, command, cid, netns):
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": "eth0",
               "CNI_PATH": self.plugin_dir, "PATH": PATH}
        if netns:
            env["CNI_NETNS"] = netns
        return env

    def invoke(self, command, cid, netns, prefix=()):
        """Runs one invocation; returns its wall time in ms (fork to exit and EOF)."""
        argv = list(prefix) + [self.path]
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv, input=self.stdin, env=self.env(command, cid, netns), capture_output=True)
        t1 = time.perf_counter_ns()
        if p.returncode != 0:
            sys.exit(f"{self.label} {command} failed ({p.returncode}): {p.stdout.decode()} {p.stderr.decode()}")
        return (t1 - t0) / 1e6


# calico's DEL returns once the kernel has unregistered the veth; the kernel's teardown after
# that (an rcu_barrier and the wait for the device's last reference) goes on in a helper
# process with this name (see NetlinkSocket.deleteLinkDetached).
TEARDOWN_HELPER = "calico-veth-del"


def teardown_helpers_running():
    running = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
        if name == TEARDOWN_HELPER and state not in "ZX":
            running.append(entry)
    return running


def settle():
    """Waits, untimed, until no DEL helper is still tearing a veth down, so that the kernel's
    work for one contestant's DEL is never charged to the next invocation; returns how long
    the teardown went on after the DEL returned (ms, to within a scan of /proc)."""
    t0 = time.perf_counter_ns()
    while teardown_helpers_running():
        time.sleep(0.0002)
    return (time.perf_counter_ns() - t0) / 1e6


def attach_detach(plugin, prefix=()):
    """ADD then DEL of one fresh container; returns (add ms, del ms, teardown ms after DEL)."""
    ns = Namespace("bench-c")
    cid = str(uuid.uuid4())
    try:
        add = plugin.invoke("ADD", cid, ns.path, prefix)
        dele = plugin.invoke("DEL", cid, ns.path, prefix)
        teardown = settle()
    finally:
        ns.close()
    return add, dele, teardown


def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.9))]


def report_pair(what, ours, theirs, goal, ours_label="calico", theirs_label="ptp+host-local"):
    """Medians and p90s, and the verdict on the paired ratio: the median over rounds of
    ours/theirs measured in the same round (a load change on the shared machine between
    rounds then cancels out)."""
    (mo, po), (mt, pt) = stats(ours), stats(theirs)
    paired = statistics.median(o / t for o, t in zip(ours, theirs))
    verdict = "" if goal is None else f"  {'meets' if paired <= goal else 'MISSES'} goal <= {goal}"
    print(f"{what:7} {ours_label:>18} median {mo:6.2f} ms (p90 {po:6.2f})   {theirs_label} median {mt:6.2f} ms (p90 {pt:6.2f})"
          f"   ratio of medians {mo / mt:.2f}, paired {paired:.2f}{verdict}")
    return paired


def side_by_side(calico, ptp, rounds, other=None, add_goal=0.6, del_goal=0.8):
    contestants = [calico, ptp] + ([other] if other else [])
    for _ in range(2):  # warm-up: page cache, first-use datastore set-up
        for plugin in contestants:
            attach_detach(plugin)
    adds = {p.label: [] for p in contestants}
    dels = {p.label: [] for p in contestants}
    teardowns = {p.label: [] for p in contestants}
    for i in range(rounds):
        order = contestants[i % len(contestants):] + contestants[:i % len(contestants)]
        if (i // len(contestants)) % 2:
            order.reverse()
        for plugin in order:
            a, d, t = attach_detach(plugin)
            adds[plugin.label].append(a)
            dels[plugin.label].append(d)
            teardowns[plugin.label].append(t)
    print(f"side by side, {rounds} rounds, one host namespace")
    for plugin in [calico] + ([other] if other else []):
        report_pair("ADD", adds[plugin.label], adds[ptp.label], add_goal, ours_label=plugin.label)
        report_pair("DEL", dels[plugin.label], dels[ptp.label], del_goal, ours_label=plugin.label)
        after, after90 = stats(teardowns[plugin.label])
        print(f"        {plugin.label:>18}: the kernel's veth teardown went on {after:.2f} ms (p90 {after90:.2f}) after DEL returned"
              f" (in its helper; waited for, untimed, before the next invocation)")


def live_endpoints(make_calico, count, rounds):
    """Two agents: one whose store holds `count` live endpoints, one with an empty store."""
    empty_host = Namespace("bench-empty", loopback_up=True)
    loaded_host = Namespace("bench-loaded", loopback_up=True)
    live = []
    try:
        empty = make_calico("empty")
        loaded = make_calico("loaded")
        enter(loaded_host.path)
        t0 = time.time()
        for _ in range(count):
            ns = Namespace("bench-live")
            live.append(ns)
            loaded.invoke("ADD", str(uuid.uuid4()), ns.path)
        print(f"\n{count} live endpoints attached in {time.time() - t0:.1f} s")
        add_e, del_e, add_l, del_l = [], [], [], []
        for i in range(rounds):
            order = [(empty_host, empty, add_e, del_e), (loaded_host, loaded, add_l, del_l)]
            if i % 2:
                order.reverse()
            for host, plugin, adds, dels in order:
                enter(host.path)
                if i == 0:
                    attach_detach(plugin)  # warm-up on each agent
                a, d, _ = attach_detach(plugin)
                adds.append(a)
                dels.append(d)
        print(f"live endpoints, {rounds} rounds alternating between two agents")
        report_pair("ADD", add_l, add_e, 1.2, ours_label=f"{count} live", theirs_label="empty store")
        report_pair("DEL", del_l, del_e, 1.2, ours_label=f"{count} live", theirs_label="empty store")
    finally:
        for ns in live:
            ns.close()
        empty_host.close()
        loaded_host.close()


TRACED = "execve,read,sendto,sendmsg,fsync,fdatasync,ftruncate,exit_group"


def phases(plugin, count, work):
    """Traced ADD/DEL pairs, each broken into phases from the syscall timeline."""
    strace = shutil.which("strace")
    if not strace:
        print("\nphases: strace not installed")
        return
    totals = {}
    for n in range(count):
        ns = Namespace("bench-c")
        cid = str(uuid.uuid4())
        try:
            for command in ("ADD", "DEL"):
                out = os.path.join(work, f"trace-{command}-{n}")
                prefix = [strace, "--seccomp-bpf", "-f", "-ttt", "-T", "-e", f"trace={TRACED}", "-o", out]
                plugin.invoke(command, cid, ns.path, prefix)
                for k, v in split_phases(out).items():
                    totals.setdefault(command, {}).setdefault(k, []).append(v)
        finally:
            ns.close()
    print(f"\nphases of {plugin.label} (median ms over {count} traced runs; strace inflates every traced call)")
    if plugin.label.startswith("calico"):
        print("  (strace -f follows calico's DEL helper and waits for it: here DEL's netlink phase is the"
              " kernel's whole veth teardown, which the untraced DEL does not wait for)")
    for command, parts in totals.items():
        print(f"  {command}: " + "   ".join(f"{k} {statistics.median(v):.2f}" for k, v in parts.items()))


LINE = re.compile(r"^(\d+)\s+([\d.]+) (\w+)\((.*?)(?: <([\d.]+)>)?$")
RESUMED = re.compile(r"^(\d+)\s+([\d.]+) <\.\.\. (\w+) resumed>.*<([\d.]+)>$")


def split_phases(path):
    rows = []
    pending = {}  # pid -> (name, args) of a call strace printed as unfinished
    for line in open(path):
        line = line.rstrip("\n")
        r = RESUMED.match(line)
        if r:
            name, args = pending.pop(r.group(1), (r.group(3), ""))
            rows.append((float(r.group(2)), name, args, float(r.group(4))))
            continue
        m = LINE.match(line)
        if m:
            if line.endswith("<unfinished ...>"):
                pending[m.group(1)] = (m.group(3), m.group(4))
                rows.append((float(m.group(2)), m.group(3), "", 0.0))  # timed when resumed
            else:
                rows.append((float(m.group(2)), m.group(3), m.group(4), float(m.group(5) or 0)))
    rows.sort()
    if not rows:
        return {}
    start, end = rows[0][0], rows[-1][0]
    stdin = next((t for t, name, args, _ in rows if name == "read" and args.startswith("0,")), start)
    sync = sum(d for _, name, _, d in rows if name in ("fsync", "fdatasync", "ftruncate"))
    netlink = sum(d for _, name, args, d in rows if name in ("sendto", "sendmsg") and "nlmsg" in args)
    total = (end - start) * 1000
    startup = (stdin - start) * 1000
    return {"total": total, "start-up": startup, "datastore-sync": sync * 1000, "netlink": netlink * 1000,
            "rest": total - startup - (sync + netlink) * 1000}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=60, help="ADD+DEL pairs per plugin (default 60)")
    ap.add_argument("--live", type=int, default=0, help="also measure with this many live endpoints (e.g. 300)")
    ap.add_argument("--live-rounds", type=int, default=40)
    ap.add_argument("--phases", type=int, default=0, help="also trace this many ADD/DEL pairs and split them into phases")
    default_products = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build-e2e-release", "release")
    ap.add_argument("--products", default=default_products, help="directory with the release calico and calico-ipam")
    ap.add_argument("--compare", metavar="DIR", help="also run the calico in DIR (e.g. an earlier build) in the same rotation")
    ap.add_argument("--store-dir", help="where calico's SQLite files go (default: a temporary directory; "
                    "e.g. /dev/shm shows what the datastore's disk syncs cost)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    products = os.path.abspath(args.products)

    work = tempfile.mkdtemp(prefix="bench-cni-")
    store_dir = tempfile.mkdtemp(prefix="bench-cni-store-", dir=args.store_dir) if args.store_dir else work
    plugdir = os.path.join(work, "plugins")
    os.makedirs(plugdir)
    for name in ("calico", "calico-ipam"):
        shutil.copy(os.path.join(products, name), plugdir)
    for name in ("ptp", "host-local"):
        shutil.copy(os.path.join("/usr/lib/cni", name), plugdir)

    def make_calico(tag, path=os.path.join(plugdir, "calico"), label="calico"):
        conf = {"cniVersion": "0.2.0", "name": "calico", "type": "calico", "datastore_type": "sqlite",
                "sqlite_path": os.path.join(store_dir, f"calico-{tag}.db"), "nodename": "bench-node",
                "ipam": {"type": "calico-ipam"}, "mtu": 1450}
        return Plugin(label, path, conf, plugdir)

    ptp_conf = {"cniVersion": "0.2.0", "name": "ptpnet", "type": "ptp", "mtu": 1450,
                "ipam": {"type": "host-local", "subnet": "10.99.0.0/16", "dataDir": os.path.join(work, "host-local")}}
    calico = make_calico("main")
    other = None
    if args.compare:
        other_dir = os.path.join(work, "compare")
        os.makedirs(other_dir)
        shutil.copy(os.path.join(args.compare, "calico"), other_dir)
        other = make_calico("compare", os.path.join(other_dir, "calico"), "calico@" + os.path.basename(os.path.abspath(args.compare)))
    ptp = Plugin("ptp+host-local", os.path.join(plugdir, "ptp"), ptp_conf, plugdir)

    host = Namespace("bench-host", loopback_up=True)
    try:
        enter(host.path)
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        side_by_side(calico, ptp, args.rounds, other)
        if args.phases:
            phases(calico, args.phases, work)
            phases(ptp, args.phases, work)
        if args.live:
            live_endpoints(make_calico, args.live, args.live_rounds)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        host.close()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
