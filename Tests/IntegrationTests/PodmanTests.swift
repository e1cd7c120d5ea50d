import CNIHarness
import Foundation
import Testing
import TestSupport

/// Podman 4.3 with its CNI backend, confined to a temp dir: its own containers.conf and
/// storage.conf (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`), `--root`, `--runroot` and
/// `--tmpdir`, a CNI config dir holding only a calico conflist whose plugin dir holds our
/// built binaries, and a network namespace playing the host (podman runs under
/// `nsenter --net=…`, so the calico veths and routes never touch the machine's namespace).
///
/// The settings that work in this sandbox (REFERENCE.md §9): `runtime = "runc"`,
/// `cgroup_manager = "cgroupfs"`, `vfs` storage, an image made with `podman import`, and
/// explicit ulimits: the sandbox lacks CAP_SYS_RESOURCE, so runc cannot raise a limit
/// above what podman's process has. Podman lowers its own RLIMIT_NPROC to
/// `kernel.pid_max` at start, so `nproc` must not exceed that, and `nofile` not the
/// current hard limit (20000 here).
///
/// What podman still writes outside the temp dir: libcni's result cache
/// (`/var/lib/cni/results/calico-<id>-eth0`, removed by `podman rm`), its blob-info cache
/// (`/var/lib/containers/cache`) and the container namespaces' mount points in
/// `/run/netns` (removed when the containers go).
enum PodmanEnvironment {
    static let podman = TestEnvironment.which("podman")
    static let nsenter = TestEnvironment.which("nsenter")
    static let busybox: String? = ["/bin/busybox-static", "/usr/bin/busybox-static", "/bin/busybox", "/usr/bin/busybox"].first(where: isStaticExecutable)

    static let hasTools = podman != nil && TestEnvironment.has("runc") && TestEnvironment.has("conmon") && TestEnvironment.has("tar")
    static let ready = TestEnvironment.canUseNamespaces && nsenter != nil && hasTools && busybox != nil
        && SQLiteStoreReader.isAvailable && TestEnvironment.hasProduct("calico") && TestEnvironment.hasProduct("calico-ipam")
    static let reason: Comment = "needs root, ip, nsenter, podman, runc, conmon, tar, a static busybox (busybox-static), sqlite3 and the built calico and calico-ipam"

    /// An executable with no ELF interpreter: it runs in a rootfs that has no libc.
    static func isStaticExecutable(_ path: String) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: path), let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        guard let head = try? h.read(upToCount: 8192), head.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else { return false }
        return head.range(of: Data("ld-linux".utf8)) == nil
    }

    /// The highest limits runc may set here: the current hard limits, and for nproc no
    /// more than `kernel.pid_max` (what podman lowers its own limit to).
    static func ulimits() -> (nofile: UInt64, nproc: UInt64) {
        let limits = (try? String(contentsOfFile: "/proc/self/limits", encoding: .utf8)) ?? ""
        func hard(_ name: String) -> UInt64? {
            guard let line = limits.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return nil }
            let fields = line.dropFirst(name.count).split(separator: " ")
            return fields.count >= 2 ? UInt64(fields[1]) : nil  // soft, hard, units; "unlimited" → nil
        }
        let pidMax = (try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8))
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 32768
        return (min(hard("Max open files") ?? 1 << 20, 1 << 20), min(hard("Max processes") ?? pidMax, pidMax))
    }
}

/// One private podman installation (see `PodmanEnvironment`).
final class PodmanSandbox {
    let dir = TestEnvironment.temporaryDirectory("podman-calico")
    let host: TestSupport.TestNamespace
    static let image = "localhost/calico-busybox:test"
    static let page = "hello from calico\n"
    var store: String { path("data/calico.sqlite") }

    func path(_ relative: String) -> String { dir.appendingPathComponent(relative).path }

    init() throws {
        host = try TestSupport.TestNamespace("podh")
        for d in ["rootfs/bin", "rootfs/www", "rootfs/tmp", "cni-bin", "cni-conf", "root", "runroot", "tmp", "data", "home"] {
            try FileManager.default.createDirectory(atPath: path(d), withIntermediateDirectories: true)
        }
        try makeRootfs()
        for plugin in ["calico", "calico-ipam"] {
            try FileManager.default.createSymbolicLink(atPath: path("cni-bin/\(plugin)"), withDestinationPath: TestEnvironment.product(plugin))
        }
        try """
            {"cniVersion":"1.0.0","name":"calico","plugins":[{"type":"calico","datastore_type":"sqlite",\
            "sqlite_path":"\(store)","nodename":"podman-node","mtu":1450,"ipam":{"type":"calico-ipam"}}]}
            """.write(toFile: path("cni-conf/calico.conflist"), atomically: true, encoding: .utf8)
        let limits = PodmanEnvironment.ulimits()
        try """
            [containers]
            default_ulimits = ["nofile=\(limits.nofile):\(limits.nofile)", "nproc=\(limits.nproc):\(limits.nproc)"]
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            events_logfile_path = "\(path("events.log"))"
            tmp_dir = "\(path("tmp"))"
            static_dir = "\(path("root/libpod"))"
            volume_path = "\(path("root/volumes"))"
            [network]
            network_backend = "cni"
            cni_plugin_dirs = ["\(path("cni-bin"))"]
            network_config_dir = "\(path("cni-conf"))"
            """.write(toFile: path("containers.conf"), atomically: true, encoding: .utf8)
        try """
            [storage]
            driver = "vfs"
            runroot = "\(path("runroot"))"
            graphroot = "\(path("root"))"
            """.write(toFile: path("storage.conf"), atomically: true, encoding: .utf8)
    }

    deinit {
        _ = try? podman(["rm", "--all", "--force", "--time", "0"])
        host.remove()
        try? FileManager.default.removeItem(at: dir)
    }

    /// A busybox rootfs (`bin/busybox` and a symlink per applet, `/www/index.html`), as a tar.
    private func makeRootfs() throws {
        let busybox = PodmanEnvironment.busybox!
        try FileManager.default.copyItem(atPath: busybox, toPath: path("rootfs/bin/busybox"))
        let applets = try Command.check([busybox, "--list"]).split(separator: "\n").map(String.init)
        for applet in applets where applet != "busybox" && !applet.contains("/") {
            try FileManager.default.createSymbolicLink(atPath: path("rootfs/bin/\(applet)"), withDestinationPath: "busybox")
        }
        try Self.page.write(toFile: path("rootfs/www/index.html"), atomically: true, encoding: .utf8)
        try Command.check(["tar", "-C", path("rootfs"), "-cf", path("rootfs.tar"), "."])
    }

    /// What one podman command did.
    struct Outcome {
        var status: Int32
        var stdoutText: String
        var stderrText: String
    }

    /// `podman <args>` in the host namespace with the private configuration.
    ///
    /// Run through POSIX `Subprocess` (posix_spawn, then `waitpid` on that pid), not
    /// Foundation's `Process`: after `podman run -d` (whose conmon daemonises) Foundation
    /// missed the child's exit here and `waitUntilExit` never returned.
    func podman(_ args: [String], timeout: Double = 120) throws -> Outcome {
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": path("home"),
                   "CONTAINERS_CONF": path("containers.conf"), "CONTAINERS_STORAGE_CONF": path("storage.conf"),
                   "CONTAINERS_REGISTRIES_CONF": path("registries.conf")]
        if !FileManager.default.fileExists(atPath: path("registries.conf")) {
            try "unqualified-search-registries = []\n".write(toFile: path("registries.conf"), atomically: true, encoding: .utf8)
        }
        let run = try PluginRunner(timeout: timeout).run(
            executable: PodmanEnvironment.nsenter!,
            arguments: ["--net=\(host.path)", PodmanEnvironment.podman!, "--root", path("root"), "--runroot", path("runroot"),
                        "--tmpdir", path("tmp")] + args,
            environment: env, stdin: [])
        if run.timedOut { throw PodmanTestError("podman \(args.joined(separator: " ")) was killed after \(timeout) s: \(run.stderrText)") }
        return Outcome(status: run.exitCode, stdoutText: run.stdoutText, stderrText: run.stderrText)
    }

    @discardableResult
    func podmanChecked(_ args: [String]) throws -> String {
        let r = try podman(args)
        guard r.status == 0 else { throw PodmanTestError("podman \(args.joined(separator: " ")) exited \(r.status): \(r.stderrText)\(r.stdoutText)") }
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct PodmanTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite(.serialized, .enabled(if: PodmanEnvironment.ready, PodmanEnvironment.reason))
struct PodmanTests {
    static let endpoints = "/calico/resources/v3/projectcalico.org/workloadendpoints/"
    static let handles = "/calico/ipam/v2/handle/"

    @Test("two busybox containers on the calico network talk over HTTP; podman rm leaves no endpoint or handle")
    func httpBetweenContainers() throws {
        let s = try PodmanSandbox()
        try s.podmanChecked(["import", s.path("rootfs.tar"), PodmanSandbox.image])

        // The server: podman calls VERSION, then ADD through libcni with CNI_ARGS.
        let server = try s.podmanChecked(["run", "-d", "--name", "srv", "--network", "calico", PodmanSandbox.image,
                                          "busybox", "httpd", "-f", "-p", "8080", "-h", "/www"])
        let ip = try s.podmanChecked(["inspect", "srv", "--format", "{{.NetworkSettings.Networks.calico.IPAddress}}"])
        #expect(ip.split(separator: ".").count == 4, "no calico address: \(ip)")

        // Its endpoint and handle are in the store, under podman's container id.
        let rows = try SQLiteStoreReader.rows(s.store)
        let wepKey = Self.endpoints + "default/" + SQLiteStoreReader.endpointName(node: "podman-node", containerID: server, ifname: "eth0")
        let wep = try #require(rows[wepKey].flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
                               "no \(wepKey) in \(rows.keys.sorted())")
        #expect((wep["spec"] as? [String: Any])?["ipNetworks"] as? [String] == ["\(ip)/32"])
        #expect(rows[Self.handles + "calico.\(server)"] != nil)
        let hostVeth = try s.host.ipJSON(["route", "show", ip]).first?["dev"] as? String
        #expect(hostVeth?.hasPrefix("cali") == true, "no host route to \(ip) through a cali veth")

        // The client, in its own container on the same network, fetches the page. busybox's
        // `wget -T` crashes in the static build, so `timeout` bounds each try.
        let fetch = "for i in 1 2 3 4 5 6 7 8 9 10; do timeout 10 wget -q -O - http://\(ip):8080/ && exit 0; sleep 1; done; exit 1"
        let client = try s.podman(["run", "--name", "cli", "--network", "calico", PodmanSandbox.image, "sh", "-c", fetch], timeout: 180)
        #expect(client.status == 0, "\(client.stderrText)")
        #expect(client.stdoutText == PodmanSandbox.page)

        // rm -f of both: CNI DEL for each; the store keeps no endpoint and no handle, the
        // host no calico veth.
        try s.podmanChecked(["rm", "--force", "--time", "0", "srv", "cli"])
        #expect(try SQLiteStoreReader.keys(s.store, under: Self.endpoints).isEmpty)
        #expect(try SQLiteStoreReader.keys(s.store, under: Self.handles).isEmpty)
        #expect(try s.host.linkNames().filter { $0.hasPrefix("cali") }.isEmpty)
        #expect(try s.podmanChecked(["ps", "--all", "--quiet"]).isEmpty)
    }
}
