import CNI
import Foundation
import IPAddress
import JSON
import POSIX

/// One attachment the harness made (or tried to make): who it is and what ADD printed.
struct Attachment {
    var containerID: String
    var interfaceName: String
    /// The container's namespace; nil once it was deleted (a lost container).
    var namespace: TestNamespace?
    /// What `CNI_NETNS` was (kept after the namespace is gone).
    var netnsPath: String
    /// ADD's stdout, parsed; nil when ADD failed or printed no JSON.
    var result: JSON?

    /// The addresses of the result (any version's shape).
    var addresses: [IPNetwork] {
        guard let result, let parsed = try? CNIResult(parsing: result) else { return [] }
        return parsed.ips.map(\.address)
    }
}

/// The kernel and file state a case compares before and after a step.
struct WorldState {
    var host: [String]
    var containers: [String: [String]]
    var data: DirectorySnapshot

    /// `host netns changed: + …`, `container X changed: - …`, `file … changed` lines.
    func changes(to after: WorldState, files: Bool = true) -> [String] {
        var out = Replayer.diff(host, after.host).map { "host netns changed: " + $0 }
        for name in Set(containers.keys).union(after.containers.keys).sorted() {
            out += Replayer.diff(containers[name] ?? [], after.containers[name] ?? []).map { "container \(name) changed: " + $0 }
        }
        if files { out += after.data.changes(since: data) }
        return out
    }
}

/// Whether the IPAM plugin still holds an address for an attachment.
enum Holding {
    /// IPAM refused a new ADD for the same container and interface (a duplicate), or gave
    /// back the address the attachment has.
    case held(String)
    /// IPAM handed out a fresh address (then released it again).
    case free

    var isHeld: Bool { if case .held = self { return true } else { return false } }
}

/// The world of one conformance case: a temp directory (`${DATADIR}`), a namespace playing
/// the host (the plugin runs in it, so host-side links never touch the machine), the
/// container namespaces the case makes, and the network config at the case's version.
/// `close()` removes all of it.
final class ConformanceWorld {
    let options: ConformanceOptions
    /// The config's `cniVersion`; nil when the config leaves it out (Mesos "unset").
    let version: CNIVersion?
    let dataDirectory: String
    let host: TestNamespace
    private(set) var containers: [TestNamespace] = []
    /// The network config with placeholders filled and `cniVersion` set.
    let config: JSON
    let runner: PluginRunner

    static let path = "/usr/sbin:/usr/bin:/sbin:/bin"

    init(options: ConformanceOptions, version: CNIVersion?) throws {
        self.options = options
        self.version = version
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("cni-conformance-\(UUID().uuidString.lowercased().prefix(12))").path
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        do {
            host = try TestNamespace(prefix: "cnic-h", loopbackUp: true)
        } catch {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            throw error
        }
        runner = PluginRunner(timeout: options.timeout)
        var conf = try Placeholders(["DATADIR": dataDirectory, "CNI_PATH": options.pluginDirectory]).expand(options.config)
        if case .object(var o) = conf {
            o["cniVersion"] = version.map { .string($0.description) }
            conf = .object(o)
        }
        config = conf
    }

    func close() {
        for c in containers { c.delete() }
        host.delete()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    /// A fresh container namespace: only `lo`, down, as runtimes hand it to a plugin.
    func newContainer() throws -> TestNamespace {
        let ns = try TestNamespace(prefix: "cnic-c")
        containers.append(ns)
        return ns
    }

    static func newContainerID() -> String { UUID().uuidString.lowercased() }

    var networkName: String { config["name"]?.stringValue ?? "" }
    var ipamType: String? { config["ipam"]?["type"]?.stringValue }
    var versionLabel: String { version?.description ?? "unset" }

    // MARK: Invocations

    /// The environment a libcni-based runtime exports (REFERENCE.md §2); in Mesos mode
    /// exactly the isolator's six variables (§1). A nil value leaves the variable out.
    func environment(command: String?, containerID: String?, netns: String?, ifname: String?,
                     cniArgs: String? = nil) -> [String: String] {
        var env = ["CNI_PATH": options.pluginDirectory, "PATH": Self.path]
        if let command { env["CNI_COMMAND"] = command }
        if let containerID { env["CNI_CONTAINERID"] = containerID }
        if let netns { env["CNI_NETNS"] = netns }
        if let ifname { env["CNI_IFNAME"] = ifname }
        if let cniArgs { env["CNI_ARGS"] = cniArgs }
        return env
    }

    /// The attachment environment for `command` on `a`.
    func environment(_ command: String, _ a: Attachment, netns: Bool = true) -> [String: String] {
        environment(command: command, containerID: a.containerID, netns: netns ? a.netnsPath : nil, ifname: a.interfaceName)
    }

    /// The config as stdin: compact, keys sorted (as Mesos and libcni serialise it), with
    /// `prevResult` when given, and `extra` members (GC's attachment lists).
    func stdin(prevResult: JSON? = nil, extra: [String: JSON] = [:]) -> [UInt8] {
        guard case .object(var o) = config else { return Array(config.compactText.utf8) }
        if let prevResult { o["prevResult"] = prevResult }
        for (k, v) in extra { o[k] = v }
        return Array(JSON.object(o).compactText.utf8)
    }

    /// The `prevResult` a libcni runtime passes to CHECK and DEL (0.4.0 on).
    func prevResult(for a: Attachment) -> JSON? {
        guard let version, version >= .v0_4_0 else { return nil }
        return a.result
    }

    /// Runs a plugin (by name, in the plugin directory) inside the host namespace.
    func run(_ plugin: String? = nil, env: [String: String], stdin: [UInt8]) throws -> PluginRun {
        let executable = options.pluginDirectory + "/" + (plugin ?? options.plugin)
        guard access(executable, X_OK) == 0 else { throw HarnessError("plugin \(executable) not found or not executable") }
        return try runner.run(executable: executable, environment: env, stdin: stdin, namespace: host)
    }

    // MARK: State

    func state(_ namespaces: [TestNamespace] = []) throws -> WorldState {
        var containers: [String: [String]] = [:]
        for ns in namespaces { containers[ns.name] = try ns.snapshot() }
        return WorldState(host: try host.snapshot(), containers: containers, data: DirectorySnapshot(dataDirectory))
    }

    // MARK: Common steps

    /// ADD for a new container (or the given one): the attachment, the run, and problems
    /// with the ADD itself (not zero, not one JSON object).
    func add(_ attachment: Attachment? = nil, stdin: [UInt8]? = nil, env: [String: String]? = nil) throws -> (Attachment, PluginRun, [String]) {
        var a: Attachment
        if let attachment {
            a = attachment
        } else {
            let ns = try newContainer()
            a = Attachment(containerID: Self.newContainerID(), interfaceName: "eth0", namespace: ns, netnsPath: ns.path, result: nil)
        }
        let run = try self.run(env: env ?? environment("ADD", a), stdin: stdin ?? self.stdin())
        var problems = Checks.success(run, "ADD")
        if problems.isEmpty {
            if let json = try? JSON(parsing: run.stdout), json.objectValue != nil {
                a.result = json
            } else {
                problems.append("ADD printed no JSON object: \(Checks.clip(run.stdoutText))")
            }
        }
        return (a, run, problems)
    }

    /// DEL as a libcni runtime sends it (with `prevResult` from 0.4.0).
    func del(_ a: Attachment, netns: Bool = true) throws -> PluginRun {
        try run(env: environment("DEL", a, netns: netns && a.namespace != nil), stdin: stdin(prevResult: prevResult(for: a)))
    }

    /// The runtime loses `a`'s container without a DEL (a crash, a reboot): its namespace
    /// goes, and with it the veth; waits until the kernel has removed the host-side peer.
    func lose(_ a: inout Attachment) throws {
        try a.namespace?.delete(awaitingPeersIn: host)
        a.namespace = nil
    }

    /// Whether IPAM still holds an address for `a`: an IPAM ADD for the same container and
    /// interface is refused as a duplicate (or returns `a`'s own address) while it does. A
    /// fresh address means it was released; it is given back at once.
    func holding(_ a: Attachment, stdin probeStdin: [UInt8]? = nil) throws -> Holding {
        guard let ipam = ipamType else { throw HarnessError("the config has no ipam.type") }
        let env = environment(command: "ADD", containerID: a.containerID, netns: host.path, ifname: a.interfaceName)
        let body = probeStdin ?? stdin()
        let run = try self.run(ipam, env: env, stdin: body)
        if run.exitCode != 0 {
            let msg = (try? JSON(parsing: run.stdout))?["msg"]?.stringValue ?? Checks.clip(run.stdoutText)
            return .held("IPAM ADD refused: \(msg)")
        }
        let addresses = (try? CNIResult(parsing: run.stdout))?.ips.map(\.address) ?? []
        var delEnv = env
        delEnv["CNI_COMMAND"] = "DEL"
        let del = try self.run(ipam, env: delEnv, stdin: body)
        guard del.exitCode == 0 else { throw HarnessError("IPAM DEL of the probe address failed: \(Checks.clip(del.stdoutText))") }
        let own = Set(a.addresses.map(\.address))
        if let same = addresses.first(where: { own.contains($0.address) }) {
            return .held("IPAM ADD gave back the same address \(same)")
        }
        return .free
    }
}

/// Small judgements shared by the cases.
enum Checks {
    /// A successful step: exit 0 in time, stdout empty or one JSON value.
    static func success(_ run: PluginRun, _ what: String) -> [String] {
        var out: [String] = []
        if run.timedOut { out.append("\(what) was killed after the timeout") }
        if run.exitCode != 0 {
            out.append("\(what) failed with exit status \(run.exitCode): \(clip(run.stdoutText))\(stderrHint(run))")
        } else if !isEmptyOrOneJSON(run.stdout) {
            out.append("\(what) stdout is not one JSON value: \(clip(run.stdoutText))")
        }
        return out
    }

    /// A step that must print nothing (DEL, CHECK, GC, STATUS on success).
    static func silentSuccess(_ run: PluginRun, _ what: String) -> [String] {
        var out = success(run, what)
        if out.isEmpty && !run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            out.append("\(what) printed \(clip(run.stdoutText)); a successful \(what) prints nothing")
        }
        return out
    }

    /// A failed step: non-zero exit and exactly one error object (`code` integer, `msg`
    /// string) on stdout, with a code from `codes` when given.
    static func error(_ run: PluginRun, _ what: String, codes: Set<Int>? = nil) -> [String] {
        if run.timedOut { return ["\(what) was killed after the timeout"] }
        if run.exitCode == 0 { return ["\(what) succeeded (exit 0, stdout \(clip(run.stdoutText))); expected an error"] }
        guard let json = try? JSON(parsing: run.stdout), json.objectValue != nil else {
            return ["\(what) exited \(run.exitCode) without an error object on stdout: \(clip(run.stdoutText))\(stderrHint(run))"]
        }
        var out: [String] = []
        if let code = json["code"]?.intValue {
            if let codes, !codes.contains(code) {
                out.append("\(what): error code \(code), expected \(codes.sorted().map(String.init).joined(separator: " or ")) (msg \(json["msg"].map { $0.compactText } ?? "none"))")
            }
        } else {
            out.append("\(what): the error object has no integer code: \(json.compactText)")
        }
        if json["msg"]?.stringValue == nil { out.append("\(what): the error object has no msg string: \(json.compactText)") }
        if let v = json["cniVersion"], v.stringValue == nil { out.append("\(what): the error's cniVersion is not a string") }
        return out
    }

    static func isEmptyOrOneJSON(_ bytes: [UInt8]) -> Bool {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return true }
        return (try? JSON(parsing: bytes)) != nil
    }

    static func clip(_ s: String) -> String { Replayer.clip(s) }

    static func stderrHint(_ run: PluginRun) -> String {
        run.stderr.isEmpty ? "" : " (stderr: \(clip(run.stderrText)))"
    }

    /// Each address of `a`'s result must be on its interface in its namespace exactly once.
    static func addressesConfigured(_ a: Attachment) throws -> [String] {
        guard let ns = a.namespace else { return [] }
        let present = try ns.addresses()
        var out: [String] = []
        if a.addresses.isEmpty { out.append("the result has no addresses") }
        for address in a.addresses {
            let count = present.filter { $0.hasSuffix(" " + address.description) }.count
            let onInterface = present.contains("\(a.interfaceName) \(address)")
            if !onInterface { out.append("\(address) is not on \(a.interfaceName) in the container (has \(present))") }
            if count > 1 { out.append("\(address) is configured \(count) times in the container") }
        }
        return out
    }

    /// Each route of `a`'s result must exist in the container (by destination).
    static func routesConfigured(_ a: Attachment) throws -> [String] {
        guard let ns = a.namespace, let result = a.result, let parsed = try? CNIResult(parsing: result) else { return [] }
        var out: [String] = []
        for route in parsed.routes {
            let family = route.destination.isIPv6 ? "-6" : "-4"
            let routes = try JSON(parsing: try ns.ip(["-j", family, "route", "show", "table", "all"]))
            let wanted = route.destination.prefixLength == 0 ? "default" : route.destination.masked.description
            let bare = route.destination.masked.address.description
            let found = (routes.arrayValue ?? []).contains {
                let dst = $0["dst"]?.stringValue
                return dst == wanted || (route.destination.prefixLength == route.destination.address.bitWidth && dst == bare)
            }
            if !found { out.append("the result's route to \(route.destination) is not in the container") }
        }
        return out
    }
}
