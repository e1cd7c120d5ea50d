#!/usr/bin/env python3
"""Benchmark on etcd: our calico (+ calico-ipam in process) against Debian's ptp + host-local.

Starts etcd itself (Debian etcd-server) on loopback inside one simulated agent ("host")
network namespace, with its data in a temporary directory: first plain HTTP, then TLS with
client certificates made by the openssl CLI. For each, both plugins run Mesos-style
(replaced environment, compact sorted stdin with args.org.apache.mesos.network_info) from
this one process, alternating ADD and DEL container by container, so machine noise hits
both sides alike. Reports medians and the ratio ours / theirs (goals: ADD <= 1.0x plain,
<= 1.2x with TLS). Needs root, iproute2, etcd-server, openssl, containernetworking-plugins
and a release build:

    swift build -c release --static-swift-stdlib --scratch-path .build-etcde-rel --product calico
    swift build -c release --static-swift-stdlib --scratch-path .build-etcde-rel --product calico-ipam
    scripts/bench-etcd.py [--rounds 40] [--products .build-etcde-rel/release] [--modes plain,tls,sqlite]

Not run by the tests (timings need a quiet machine); run it by hand.
"""
import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# The runner (namespaces, Mesos-style invocation, alternation, paired ratios) is bench-cni.py's.
_spec = importlib.util.spec_from_file_location("bench_cni", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-cni.py"))
bench_cni = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_cni)
sh, Namespace, Plugin, enter, side_by_side = (bench_cni.sh, bench_cni.Namespace, bench_cni.Plugin,
                                              bench_cni.enter, bench_cni.side_by_side)


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def make_certificates(d):
    """A CA, a server certificate for IP 127.0.0.1 and a client certificate (EC P-256)."""
    def p(name):
        return os.path.join(d, name)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *newkey, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "2",
       "-subj", "/CN=bench-ca", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaves = {
        # etcd's gateway dials etcd with the server certificate too: it needs clientAuth.
        "server": "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
                  "keyUsage=critical,digitalSignature,keyEncipherment\n",
        "client": "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    }
    for name, ext in leaves.items():
        sh("openssl", "req", *newkey, "-keyout", p(f"{name}.key"), "-out", p(f"{name}.csr"), "-subj", f"/CN=bench-{name}")
        with open(p(f"{name}.ext"), "w") as f:
            f.write(ext)
        sh("openssl", "x509", "-req", "-in", p(f"{name}.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
           "-CAcreateserial", "-out", p(f"{name}.crt"), "-days", "2", "-extfile", p(f"{name}.ext"))
    return {k: p(v) for k, v in {"ca": "ca.crt", "server_cert": "server.crt", "server_key": "server.key",
                                 "client_cert": "client.crt", "client_key": "client.key"}.items()}


class Etcd:
    """etcd on 127.0.0.1 of the current namespace, data in a fresh directory."""

    def __init__(self, work, name, certs=None):
        self.certs = certs
        client_port, peer_port = free_ports(2)
        scheme = "https" if certs else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        args = ["etcd", "--name", name, "--data-dir", os.path.join(work, f"etcd-{name}"),
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{name}={peer}", "--logger", "zap", "--log-outputs", "stderr"]
        if certs:
            args += ["--cert-file", certs["server_cert"], "--key-file", certs["server_key"],
                     "--trusted-ca-file", certs["ca"], "--client-cert-auth"]
        self.log = open(os.path.join(work, f"etcd-{name}.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"etcd exited at start, see {self.log.name}")
            if sh("etcdctl", *self.flags(), "endpoint", "health", "--command-timeout=1s", check=False).returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        sys.exit("etcd did not become healthy within 20 s")

    def flags(self):
        f = [f"--endpoints={self.endpoint}"]
        if self.certs:
            f += [f"--cacert={self.certs['ca']}", f"--cert={self.certs['client_cert']}", f"--key={self.certs['client_key']}"]
        return f

    def conf_keys(self):
        keys = {"datastore_type": "etcdv3", "etcd_endpoints": self.endpoint}
        if self.certs:
            keys.update(etcd_ca_cert_file=self.certs["ca"], etcd_cert_file=self.certs["client_cert"],
                        etcd_key_file=self.certs["client_key"])
        return keys

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--products", default=os.path.join(os.path.dirname(__file__), "..", ".build-etcde-rel", "release"))
    ap.add_argument("--modes", default="plain,tls")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    products = os.path.abspath(args.products)

    # Everything, etcd included, runs in one fresh namespace: the machine's own is untouched.
    host = Namespace("bench-host", loopback_up=True)
    work = tempfile.mkdtemp(prefix="bench-etcd-")
    try:
        enter(host.path)
        plugdir = os.path.join(work, "plugins")
        os.makedirs(plugdir)
        for name in ("calico", "calico-ipam"):
            shutil.copy(os.path.join(products, name), plugdir)
        for name in ("ptp", "host-local"):
            shutil.copy(os.path.join("/usr/lib/cni", name), plugdir)
        ptp = Plugin("ptp+host-local", os.path.join(plugdir, "ptp"),
                     {"cniVersion": "0.2.0", "name": "ptpnet", "type": "ptp", "mtu": 1450,
                      "ipam": {"type": "host-local", "subnet": "10.99.0.0/16", "dataDir": os.path.join(work, "host-local")}},
                     plugdir)
        base = {"cniVersion": "0.2.0", "name": "calico", "type": "calico", "nodename": "bench-node",
                "ipam": {"type": "calico-ipam"}, "mtu": 1450}
        for mode in args.modes.split(","):
            if mode == "sqlite":  # reference: the same plugin on the embedded store
                conf = dict(base, datastore_type="sqlite", sqlite_path=os.path.join(work, "calico.db"))
                print("\nsqlite (reference)")
                side_by_side(Plugin("calico", os.path.join(plugdir, "calico"), conf, plugdir), ptp, args.rounds)
                continue
            certs = make_certificates(work) if mode == "tls" else None
            etcd = Etcd(work, mode, certs)
            try:
                conf = dict(base, **etcd.conf_keys())
                print(f"\netcd {mode}")
                side_by_side(Plugin("calico", os.path.join(plugdir, "calico"), conf, plugdir), ptp, args.rounds,
                             add_goal=1.2 if certs else 1.0, del_goal=None)
            finally:
                etcd.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        host.close()


if __name__ == "__main__":
    main()
