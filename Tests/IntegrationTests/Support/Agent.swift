import Foundation
import JSON
import Testing
import TestSupport

/// What these tests need: root, `ip`, `nsenter` (the plugin runs inside an agent's host
/// namespace), `sqlite3` (to read the records as an operator would) and the built products.
enum E2E {
    static let nsenter = TestEnvironment.which("nsenter")
    static let calico = TestEnvironment.product("calico")
    static let ready: Bool =
        TestEnvironment.canUseNamespaces && nsenter != nil && TestEnvironment.has("sqlite3")
        && TestEnvironment.hasProduct("calico") && TestEnvironment.hasProduct("calico-ipam")
    static let reason: Comment = "needs root, ip, nsenter, sqlite3 and the built calico and calico-ipam"

    /// Mesos passes `--network_cni_plugins_dir`; several directories may be joined by `:`.
    static var cniPath: String { "/opt/mesosphere/active/cni:" + TestEnvironment.productsDirectory.path }

    static func json(_ text: String) throws -> JSON { try JSON(parsing: text) }
    static func json(_ r: CommandResult) throws -> JSON { try JSON(parsing: r.stdoutText) }

    /// A container id the way Mesos makes them: a UUID.
    static func containerID() -> String { UUID().uuidString.lowercased() }
}

// MARK: - The datastore: one SQLite file, read back with the sqlite3 tool.

/// The cluster's datastore: a temporary SQLite file all agents of a test share (as they
/// share etcd), inspected with `sqlite3` exactly as an operator would.
final class ClusterStore: @unchecked Sendable {
    let directory: URL
    let path: String

    init() {
        directory = TestEnvironment.temporaryDirectory("calico-e2e")
        path = directory.appendingPathComponent("calico.db").path
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// One row of the `kv` table.
    struct Row {
        var key: String
        var value: JSON
        var createRevision: Int
        var modRevision: Int
        var version: Int
    }

    /// `sqlite3 -json DB SQL`, parsed.
    func query(_ sql: String) throws -> [JSON] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let out = try Command.check(["sqlite3", "-json", path, sql])
        if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
        return try JSON(parsing: out).arrayValue ?? []
    }

    /// Runs a statement (used to install fault-injecting triggers).
    func execute(_ sql: String) throws {
        try Command.check(["sqlite3", path, sql])
    }

    /// Every key under `prefix`, with its parsed value, sorted by key.
    func rows(_ prefix: String) throws -> [Row] {
        let quoted = prefix.replacingOccurrences(of: "'", with: "''")
        let sql = "SELECT key, value, create_revision, mod_revision, version FROM kv "
            + "WHERE substr(key, 1, \(prefix.utf8.count)) = '\(quoted)' ORDER BY key"
        return try query(sql).map { r in
            Row(key: r["key"]?.stringValue ?? "", value: try JSON(parsing: r["value"]?.stringValue ?? "null"),
                createRevision: r["create_revision"]?.intValue ?? -1, modRevision: r["mod_revision"]?.intValue ?? -1,
                version: r["version"]?.intValue ?? -1)
        }
    }

    static let endpoints = "/calico/resources/v3/projectcalico.org/workloadendpoints/"
    static let profiles = "/calico/resources/v3/projectcalico.org/profiles/"
    static let handles = "/calico/ipam/v2/handle/"
    static let blocks = "/calico/ipam/v2/assignment/ipv4/block/"

    func endpoints() throws -> [Row] { try rows(Self.endpoints) }
    func handles() throws -> [Row] { try rows(Self.handles) }

    /// The endpoint record at `namespace/name`, or nil.
    func endpoint(namespace: String = "default", name: String) throws -> JSON? {
        try rows(Self.endpoints + namespace + "/" + name).first { $0.key == Self.endpoints + namespace + "/" + name }?.value
    }

    /// Addresses allocated in any block, as `a.b.c.d` with their handle ids.
    func allocations() throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try rows(Self.blocks) {
            guard let cidr = row.value["cidr"]?.stringValue, let base = Self.ipv4(cidr.split(separator: "/")[0]) else { continue }
            let attributes = row.value["attributes"]?.arrayValue ?? []
            for (ordinal, attr) in (row.value["allocations"]?.arrayValue ?? []).enumerated() {
                guard let index = attr.intValue else { continue }
                out[Self.ipv4String(base + UInt32(ordinal))] = attributes[index]["handle_id"]?.stringValue ?? "?"
            }
        }
        return out
    }

    /// The CIDRs of the blocks affine to `node` (`/calico/ipam/v2/host/<node>/ipv4/block/…`).
    func blockCIDRs(node: String) throws -> [String] {
        try rows("/calico/ipam/v2/host/\(node)/ipv4/block/").map {
            String($0.key.split(separator: "/").last!).replacingOccurrences(of: "-", with: "/")
        }
    }

    static func ipv4<S: StringProtocol>(_ s: S) -> UInt32? {
        let parts = s.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4 else { return nil }
        return parts.reduce(0) { $0 << 8 | $1 }
    }

    static func ipv4String(_ v: UInt32) -> String { "\(v >> 24).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)" }
}

// MARK: - Networks as an operator writes them, and stdin as Mesos sends it.

/// A CNI network config file in `--network_cni_config_dir`, pointing at the test's store.
struct NetworkConfig {
    var file: JSON

    init(name: String = "calico", version: String? = "0.2.0", store: ClusterStore, node: String, extra: [String: JSON] = [:]) {
        var o: [String: JSON] = [
            "name": .string(name), "type": "calico", "ipam": ["type": "calico-ipam"],
            "datastore_type": "sqlite", "sqlite_path": .string(store.path), "nodename": .string(node),
        ]
        if let version { o["cniVersion"] = .string(version) }
        for (k, v) in extra { o[k] = v }
        file = .object(o)
    }

    var name: String { file["name"]?.stringValue ?? "" }

    /// What Mesos writes on the plugin's stdin: the file re-serialised compactly with sorted
    /// keys and `args["org.apache.mesos"].network_info` injected. `labels: nil` sends no
    /// labels at all; `[]` sends `"labels":{}`. Before Mesos 1.7 every `/` was written `\/`.
    func mesosStdin(labels: [(String, String)]? = nil, portMappings: JSON? = nil, escapedSlashes: Bool = false) -> Data {
        Data(Self.escape(mesosJSON(labels: labels, portMappings: portMappings).compactText, escapedSlashes).utf8)
    }

    func mesosJSON(labels: [(String, String)]? = nil, portMappings: JSON? = nil) -> JSON {
        var info: [String: JSON] = ["name": .string(name), "ip_addresses": [["protocol": "IPv4"]]]
        if let labels {
            info["labels"] = labels.isEmpty
                ? .object([:])
                : ["labels": .array(labels.map { ["key": .string($0.0), "value": .string($0.1)] })]
        }
        if let portMappings { info["port_mappings"] = portMappings }
        var o = file
        o["args"] = ["org.apache.mesos": ["network_info": .object(info)]]
        return o
    }

    static func escape(_ text: String, _ escapedSlashes: Bool) -> String {
        escapedSlashes ? text.replacingOccurrences(of: "/", with: "\\/") : text
    }
}

// MARK: - Agents and containers

/// A container as Mesos makes one: a network namespace holding only `lo`, down.
final class Container: @unchecked Sendable {
    let id: String
    let namespace: TestNamespace
    var netns: String { namespace.path }

    init(id: String = E2E.containerID()) throws {
        self.id = id
        namespace = try TestNamespace("e2ec", loopbackDown: true)
    }

    /// Mesos brings `lo` up after the CNI ADDs.
    func bringLoopbackUp() throws { try Command.check(["ip", "-n", namespace.name, "link", "set", "lo", "up"]) }

    /// `ip -j link show dev IF`, or nil.
    func link(_ ifname: String) throws -> JSON? {
        try ipJSON(["link", "show"]).first { $0["ifname"]?.stringValue == ifname }
    }

    /// The IPv4 addresses on `ifname` as `a.b.c.d/len`.
    func addresses(_ ifname: String) throws -> [String] {
        try ipJSON(["-4", "addr", "show", "dev", ifname]).flatMap { l in
            (l["addr_info"]?.arrayValue ?? []).compactMap { a in
                guard let local = a["local"]?.stringValue, let len = a["prefixlen"]?.intValue else { return nil }
                return "\(local)/\(len)"
            }
        }
    }

    func linkNames() throws -> [String] { try ipJSON(["link", "show"]).compactMap { $0["ifname"]?.stringValue }.sorted() }

    func ipJSON(_ args: [String]) throws -> [JSON] {
        let out = try Command.check(["ip", "-n", namespace.name, "-j"] + args)
        if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
        return try JSON(parsing: out).arrayValue ?? []
    }

    /// `busybox ping` from inside the container: true when a reply came back.
    func ping(_ address: String) throws -> Bool {
        try namespace.run(["busybox", "ping", "-c", "1", "-w", "3", address], timeout: 10).status == 0
    }
}

/// One simulated Mesos agent: a host network namespace (lo up, the agent's own address on
/// `lo`) in which the plugin runs, as it runs in the agent's namespace for real.
final class Agent: @unchecked Sendable {
    let node: String
    let store: ClusterStore
    let host: TestNamespace
    /// The agent's own address (a /32 on `lo`): the source of host-to-container traffic.
    let address: String

    init(node: String = "agent-1", store: ClusterStore, address: String = "10.254.0.1") throws {
        self.node = node
        self.store = store
        self.address = address
        host = try TestNamespace("e2eh")
        try Command.check(["ip", "-n", host.name, "addr", "add", "\(address)/32", "dev", "lo"])
    }

    func network(_ name: String = "calico", version: String? = "0.2.0", extra: [String: JSON] = [:]) -> NetworkConfig {
        NetworkConfig(name: name, version: version, store: store, node: node, extra: extra)
    }

    /// The environment Mesos gives a plugin, replaced, not extended: nothing else.
    func environment(_ command: String, containerID: String, netns: String?, ifname: String) -> [String: String] {
        var env = [
            "CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_IFNAME": ifname,
            "CNI_PATH": E2E.cniPath, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        if let netns { env["CNI_NETNS"] = netns }
        return env
    }

    /// The argv that runs `program` in this agent's host namespace.
    func hostArgv(_ program: [String]) -> [String] {
        [E2E.nsenter!, "--net=\(host.path)"] + program
    }

    /// Runs the built `calico` inside the host namespace, Mesos-style.
    @discardableResult
    func invoke(_ command: String, containerID: String, netns: String?, ifname: String = "eth0", stdin: Data) throws -> CommandResult {
        try Command.run(hostArgv([E2E.calico]), environment: environment(command, containerID: containerID, netns: netns, ifname: ifname),
                        stdin: stdin)
    }

    /// ADD for `container`; the result and the raw process outcome.
    @discardableResult
    func add(_ container: Container, ifname: String = "eth0", network: NetworkConfig? = nil, labels: [(String, String)]? = nil)
        throws -> CommandResult
    {
        let net = network ?? self.network()
        return try invoke("ADD", containerID: container.id, netns: container.netns, ifname: ifname, stdin: net.mesosStdin(labels: labels))
    }

    /// ADD that must succeed; returns the container address (`a.b.c.d`) from `ip4.ip` or `ips[0]`.
    @discardableResult
    func attach(_ container: Container, ifname: String = "eth0", network: NetworkConfig? = nil, labels: [(String, String)]? = nil)
        throws -> String
    {
        let r = try add(container, ifname: ifname, network: network, labels: labels)
        guard r.status == 0 else { throw E2EError("ADD \(container.id) \(ifname) exited \(r.status): \(r.stdoutText) \(r.stderrText)") }
        let out = try E2E.json(r)
        guard let ip = (out["ip4"]?["ip"] ?? out["ips"]?[0]?["address"])?.stringValue else {
            throw E2EError("ADD \(container.id) \(ifname) printed no address: \(r.stdoutText)")
        }
        return String(ip.split(separator: "/")[0])
    }

    @discardableResult
    func del(_ container: Container, ifname: String = "eth0", network: NetworkConfig? = nil, labels: [(String, String)]? = nil,
             netns: String?? = nil) throws -> CommandResult
    {
        let net = network ?? self.network()
        return try invoke("DEL", containerID: container.id, netns: netns ?? container.netns, ifname: ifname,
                          stdin: net.mesosStdin(labels: labels))
    }

    // MARK: Kernel state of the host namespace

    func ipJSON(_ args: [String]) throws -> [JSON] {
        let out = try Command.check(["ip", "-n", host.name, "-j"] + args)
        if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
        return try JSON(parsing: out).arrayValue ?? []
    }

    /// The host's `cali*` links.
    func workloadLinks() throws -> [JSON] {
        try ipJSON(["link", "show"]).filter { $0["ifname"]?.stringValue?.hasPrefix("cali") == true }
    }

    func workloadLinkNames() throws -> [String] { try workloadLinks().compactMap { $0["ifname"]?.stringValue }.sorted() }

    /// The host's IPv4 routes through `cali*` links, as `dst dev`.
    func workloadRoutes() throws -> [String] {
        try ipJSON(["-4", "route", "show"]).compactMap { r in
            guard let dev = r["dev"]?.stringValue, dev.hasPrefix("cali") else { return nil }
            return "\(r["dst"]?.stringValue ?? "?") \(dev)"
        }.sorted()
    }

    func ping(_ address: String) throws -> Bool {
        try host.run(["busybox", "ping", "-c", "1", "-w", "3", address], timeout: 10).status == 0
    }

    /// Starts every call at once (all processes exist before any is waited for).
    func invokeAtOnce(_ calls: [(command: String, container: Container, stdin: Data, netns: String?)]) throws -> [CommandResult] {
        final class Box: @unchecked Sendable { var result: CommandResult? }
        let boxes = calls.map { _ in Box() }
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for (call, box) in zip(calls, boxes) {
            group.enter()
            let env = environment(call.command, containerID: call.container.id, netns: call.netns, ifname: "eth0")
            let argv = hostArgv([E2E.calico])
            Thread.detachNewThread {
                start.wait()
                box.result = try? Command.run(argv, environment: env, stdin: call.stdin)
                group.leave()
            }
        }
        for _ in calls { start.signal() }
        group.wait()
        return try boxes.map { box in
            guard let r = box.result else { throw E2EError("could not start calico") }
            return r
        }
    }
}

struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension CommandResult {
    /// The CNI error object on stdout (`code`, `msg`), or nil.
    var cniError: (code: Int, msg: String)? {
        guard let o = try? JSON(parsing: stdoutText), let code = o["code"]?.intValue else { return nil }
        return (code, o["msg"]?.stringValue ?? "")
    }
}

/// What a WorkloadEndpoint's name is (REFERENCE.md §3): segments joined by `-`, every `-`
/// inside a segment doubled. Written out here, independently of the library.
func expectedEndpointName(node: String, containerID: String, ifname: String) -> String {
    [node, "cni", containerID, ifname].map { $0.replacingOccurrences(of: "-", with: "--") }.joined(separator: "-")
}
