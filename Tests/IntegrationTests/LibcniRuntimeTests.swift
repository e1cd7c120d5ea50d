import Foundation
import Testing
import TestSupport

/// The runtime in Tests/Tools/libcni-runtime, built from Debian's libcni sources
/// (`golang-github-appc-cni-dev`) offline in GOPATH mode, once per test process.
enum LibcniRuntime {
    static let go = "/usr/bin/go"
    static let gopath = "/usr/share/gocode"
    static let source = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Tools/libcni-runtime").path

    static let isAvailable: Bool =
        FileManager.default.isExecutableFile(atPath: go)
        && FileManager.default.fileExists(atPath: gopath + "/src/github.com/containernetworking/cni/libcni/api.go")

    struct BuildError: Error, CustomStringConvertible {
        var description: String
    }

    /// The built binary, or the build's error. It goes next to the package's products (one
    /// per build directory, replaced by each test run); Go's build cache goes to a temp dir
    /// that is removed afterwards.
    static let binary: Result<String, BuildError> = {
        let out = TestEnvironment.productsDirectory.appendingPathComponent("libcni-runtime").path
        let cache = TestEnvironment.temporaryDirectory("libcni-runtime-gocache")
        defer { try? FileManager.default.removeItem(at: cache) }
        // GOPATH mode (no modules, no network): the import path resolves under
        // /usr/share/gocode/src; nothing is written to $HOME.
        let env = ["PATH": "/usr/bin:/bin", "HOME": cache.path, "GO111MODULE": "off", "GOPATH": gopath, "GOFLAGS": "",
                   "GOCACHE": cache.appendingPathComponent("gocache").path, "CGO_ENABLED": "0", "GOPROXY": "off"]
        let argv = ["/bin/sh", "-c", "cd \"$1\" && exec \(go) build -o \"$2\" .", "sh", source, out]
        do {
            let r = try Command.run(argv, environment: env, timeout: 300)
            guard r.status == 0 else { return .failure(BuildError(description: "go build exited \(r.status): \(r.stderrText)")) }
        } catch {
            return .failure(BuildError(description: "go build: \(error)"))
        }
        return .success(out)
    }()
}

/// What a store holds, read with the sqlite3 CLI (the way an operator would look).
enum SQLiteStoreReader {
    static let isAvailable = TestEnvironment.has("sqlite3")

    /// Every key and value of the `kv` table.
    static func rows(_ path: String) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        let out = try Command.check(["sqlite3", "-readonly", "-json", path, "SELECT key, value FROM kv"])
        guard !out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return [:] }
        let rows = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
        var kv: [String: String] = [:]
        for row in rows { if let k = row["key"] as? String, let v = row["value"] as? String { kv[k] = v } }
        return kv
    }

    static func keys(_ path: String, under prefix: String) throws -> [String] {
        try rows(path).keys.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// The WorkloadEndpoint name of an attachment: every `-` in a segment doubled.
    static func endpointName(node: String, containerID: String, ifname: String) -> String {
        [node, "cni", containerID, ifname].map { $0.replacingOccurrences(of: "-", with: "--") }.joined(separator: "-")
    }
}

@Suite(.serialized, .enabled(if: TestEnvironment.canUseNamespaces && TestEnvironment.has("nsenter") && SQLiteStoreReader.isAvailable
                             && TestEnvironment.hasProduct("calico") && TestEnvironment.hasProduct("calico-ipam"),
                             "needs root, ip, nsenter, sqlite3 and the built calico and calico-ipam"),
       .enabled(if: LibcniRuntime.isAvailable, "needs golang-go and golang-github-appc-cni-dev (libcni sources in /usr/share/gocode)"))
struct LibcniRuntimeTests {
    static let node = "libcni-node"

    /// A temp dir with a calico conflist (SQLite store inside it) and libcni's cache dir.
    final class Setup {
        let dir = TestEnvironment.temporaryDirectory("libcni-calico")
        let host: TestNamespace
        var store: String { dir.appendingPathComponent("calico.sqlite").path }
        var conflist: String { dir.appendingPathComponent("calico.conflist").path }
        var cache: String { dir.appendingPathComponent("cache").path }

        init() throws {
            host = try TestNamespace("lcni-h")
            let conf = """
                {"cniVersion":"1.0.0","name":"calico","plugins":[{"type":"calico","datastore_type":"sqlite",\
                "sqlite_path":"\(store)","nodename":"\(LibcniRuntimeTests.node)","mtu":1450,"ipam":{"type":"calico-ipam"}}]}
                """
            try conf.write(toFile: conflist, atomically: true, encoding: .utf8)
        }

        deinit {
            host.remove()
            try? FileManager.default.removeItem(at: dir)
        }

        /// `libcni-runtime <command> <conflist> <netns> <id>` inside the host namespace.
        func runtime(_ binary: String, _ command: String, _ netns: String, _ id: String) throws -> CommandResult {
            try Command.run(["nsenter", "--net=\(host.path)", binary, "-cni-path", TestEnvironment.productsDirectory.path,
                             "-cache-dir", cache, command, conflist, netns, id],
                            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 60)
        }
    }

    @Test("libcni adds, checks and deletes the calico conflist: kernel, store and result cache agree")
    func addCheckDel() throws {
        let binary = try LibcniRuntime.binary.get()
        let s = try Setup()
        let container = try TestNamespace("lcni-c", loopbackDown: true)
        defer { container.remove() }
        let id = UUID().uuidString.lowercased()

        // ADD through AddNetworkList: libcni asks VERSION, execs calico, caches the result.
        let add = try s.runtime(binary, "add", container.path, id)
        #expect(add.status == 0, "\(add.stderrText)")
        let result = try #require(try JSONSerialization.jsonObject(with: add.stdout) as? [String: Any], "\(add.stdoutText)")
        #expect(result["cniVersion"] as? String == "1.0.0")
        let ips = try #require(result["ips"] as? [[String: Any]])
        let address = try #require(ips.first?["address"] as? String)
        #expect(address.hasSuffix("/32") && ips.first?["version"] == nil)
        let ip = String(address.dropLast(3))
        let interfaces = result["interfaces"] as? [[String: Any]] ?? []
        #expect(interfaces.contains { $0["name"] as? String == "eth0" && $0["sandbox"] as? String == container.path })

        // The kernel: the address on eth0 (MTU 1450) with the default via 169.254.1.1; a
        // host-side cali veth with the /32 route.
        let eth0 = try #require(try container.ipJSON(["addr", "show", "dev", "eth0"]).first)
        #expect(eth0["mtu"] as? Int == 1450)
        #expect(((eth0["addr_info"] as? [[String: Any]]) ?? []).contains { $0["local"] as? String == ip && $0["prefixlen"] as? Int == 32 })
        #expect(try container.ipJSON(["route", "show", "default"]).first?["gateway"] as? String == "169.254.1.1")
        let hostRoute = try #require(try s.host.ipJSON(["route", "show", ip]).first, "no host route to \(ip)")
        let veth = try #require(hostRoute["dev"] as? String)
        #expect(veth.hasPrefix("cali"))

        // The store: the endpoint (by its Calico name) and the IPAM handle.
        let wepKey = "/calico/resources/v3/projectcalico.org/workloadendpoints/default/"
            + SQLiteStoreReader.endpointName(node: Self.node, containerID: id, ifname: "eth0")
        let rows = try SQLiteStoreReader.rows(s.store)
        let wep = try #require(rows[wepKey].flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
                               "no \(wepKey) in \(rows.keys.sorted())")
        let spec = wep["spec"] as? [String: Any] ?? [:]
        #expect(spec["ipNetworks"] as? [String] == [address])
        #expect(spec["containerID"] as? String == id && spec["interfaceName"] as? String == veth)
        #expect(rows["/calico/ipam/v2/handle/calico.\(id)"] != nil)

        // libcni cached the result; CHECK feeds it back as prevResult.
        let cached = s.cache + "/results/calico-\(id)-eth0"
        #expect(FileManager.default.fileExists(atPath: cached))
        let check = try s.runtime(binary, "check", container.path, id)
        #expect(check.status == 0, "\(check.stderrText)")

        // DEL through DelNetworkList: nothing left in the kernel, the store or the cache.
        let del = try s.runtime(binary, "del", container.path, id)
        #expect(del.status == 0, "\(del.stderrText)")
        #expect(try container.linkNames() == ["lo"])
        #expect(!(try s.host.linkNames().contains(veth)))
        #expect(try s.host.ipJSON(["route", "show", ip]).isEmpty)
        #expect(try SQLiteStoreReader.keys(s.store, under: "/calico/resources/v3/projectcalico.org/workloadendpoints/").isEmpty)
        #expect(try SQLiteStoreReader.keys(s.store, under: "/calico/ipam/v2/handle/").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: cached))
    }

    @Test("CHECK through libcni fails once the container's address is gone; DEL still cleans up")
    func checkSeesDrift() throws {
        let binary = try LibcniRuntime.binary.get()
        let s = try Setup()
        let container = try TestNamespace("lcni-c", loopbackDown: true)
        defer { container.remove() }
        let id = UUID().uuidString.lowercased()
        let add = try s.runtime(binary, "add", container.path, id)
        try #require(add.status == 0, "\(add.stderrText)")
        let address = try #require(((try JSONSerialization.jsonObject(with: add.stdout) as? [String: Any])?["ips"] as? [[String: Any]])?.first?["address"] as? String)

        try Command.check(["ip", "-n", container.name, "addr", "del", address, "dev", "eth0"])
        let check = try s.runtime(binary, "check", container.path, id)
        #expect(check.status != 0)
        #expect(check.stderrText.contains("lacks address \(address)"), "\(check.stderrText)")

        let del = try s.runtime(binary, "del", container.path, id)
        #expect(del.status == 0, "\(del.stderrText)")
        #expect(try container.linkNames() == ["lo"])
        #expect(try SQLiteStoreReader.keys(s.store, under: "/calico/ipam/v2/handle/").isEmpty)
    }
}
