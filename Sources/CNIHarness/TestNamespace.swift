import Foundation
import JSON
import POSIX

/// A harness error: a tool that failed, a fixture that cannot be read.
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A named network namespace (`ip netns add`) for one fixture, deleted with the object.
///
/// The harness is a test tool and may run `ip`; the product code never does.
public final class TestNamespace: @unchecked Sendable {
    public let name: String
    /// `/var/run/netns/<name>`: what `CNI_NETNS` points at.
    public var path: String { "/var/run/netns/\(name)" }
    private var deleted = false

    /// Creates a fresh namespace (only `lo`, down, as Mesos hands it to a plugin);
    /// `loopbackUp` brings `lo` up (for a namespace playing the host).
    public init(prefix: String = "cnih", loopbackUp: Bool = false) throws {
        name = prefix + "-" + String(UUID().uuidString.lowercased().prefix(8))
        try TestNamespace.ip(["netns", "add", name])
        if loopbackUp { try TestNamespace.ip(["-n", name, "link", "set", "lo", "up"]) }
    }

    deinit { delete() }

    /// Deletes the namespace (links inside it go with it, and so do veth peers elsewhere).
    public func delete() {
        guard !deleted else { return }
        deleted = true
        _ = try? TestNamespace.ip(["netns", "del", name])
    }

    /// Deletes the namespace and waits (up to `timeout` seconds) until the kernel has
    /// destroyed the peers its veths had in `other`: a namespace is torn down
    /// asynchronously, so right after `ip netns del` those peers may still be listed.
    public func delete(awaitingPeersIn other: TestNamespace, timeout: Double = 10) throws {
        let links = try JSON(parsing: try ip(["-j", "link", "show"]))
        let peers = Set((links.arrayValue ?? []).compactMap { $0["link_netnsid"] != nil ? $0["link_index"]?.intValue : nil })
        delete()
        guard !peers.isEmpty else { return }
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            let remaining = (try JSON(parsing: try other.ip(["-j", "link", "show"]))).arrayValue ?? []
            if !remaining.contains(where: { $0["ifindex"]?.intValue.map(peers.contains) ?? false }) { return }
            if deadline.hasPassed { throw HarnessError("the veth peers of deleted namespace \(name) are still in \(other.name) after \(timeout) s") }
            usleep(20_000)
        }
    }

    /// Runs `ip -n <name> <args>` and returns its stdout.
    @discardableResult
    public func ip(_ args: [String]) throws -> String {
        try TestNamespace.ip(["-n", name] + args)
    }

    /// The names of the links in the namespace, sorted.
    public func linkNames() throws -> [String] {
        let links = try JSON(parsing: try ip(["-j", "link", "show"]))
        return (links.arrayValue ?? []).compactMap { $0["ifname"]?.stringValue }.sorted()
    }

    /// The MTU of each link, by name.
    public func mtus() throws -> [String: Int] {
        let links = try JSON(parsing: try ip(["-j", "link", "show"]))
        var out: [String: Int] = [:]
        for l in links.arrayValue ?? [] {
            if let name = l["ifname"]?.stringValue, let mtu = l["mtu"]?.intValue { out[name] = mtu }
        }
        return out
    }

    /// Every address in the namespace as `ifname addr/len`, sorted.
    public func addresses() throws -> [String] {
        let links = try JSON(parsing: try ip(["-j", "addr", "show"]))
        var out: [String] = []
        for link in links.arrayValue ?? [] {
            let name = link["ifname"]?.stringValue ?? "?"
            for a in link["addr_info"]?.arrayValue ?? [] {
                if let local = a["local"]?.stringValue, let len = a["prefixlen"]?.intValue { out.append("\(name) \(local)/\(len)") }
            }
        }
        return out.sorted()
    }

    /// A description of the namespace's kernel state that changes when a plugin changes
    /// anything it could: links (name, MTU, up/down, master), addresses, and every route of
    /// every table, both families.
    public func snapshot() throws -> [String] {
        var out: [String] = []
        let links = try JSON(parsing: try ip(["-j", "link", "show"]))
        for l in links.arrayValue ?? [] {
            let flags = (l["flags"]?.arrayValue ?? []).compactMap(\.stringValue)
            let name = l["ifname"]?.stringValue ?? "?"
            out.append("link \(name) mtu \(l["mtu"]?.intValue ?? 0) \(flags.contains("UP") ? "up" : "down") master \(l["master"]?.stringValue ?? "-")")
        }
        // IPv6 link-local addresses and their routes are the kernel's own (addrconf, after a
        // link comes up, possibly after the step ended): not a plugin's change.
        out += try addresses().filter { !$0.contains(" fe80:") }.map { "addr " + $0 }
        for family in ["-4", "-6"] {
            let routes = try JSON(parsing: try ip(["-j", family, "route", "show", "table", "all"]))
            for r in routes.arrayValue ?? [] {
                let kind = r["type"]?.stringValue ?? "unicast"
                let dst = r["dst"]?.stringValue ?? "?"
                let dev = r["dev"]?.stringValue ?? "-"
                let via = r["gateway"]?.stringValue ?? "-"
                let table = r["table"]?.stringValue ?? "main"
                if family == "-6" && (dst.hasPrefix("fe80:") || dst.hasPrefix("ff00:")) { continue }
                out.append("route \(family) \(kind) \(dst) dev \(dev) via \(via) table \(table)")
            }
        }
        return out.sorted()
    }

    /// Where `ip` is.
    public static let ipCommand: String = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { access($0, X_OK) == 0 } ?? "/usr/sbin/ip"

    /// Runs `ip <args>`; a non-zero exit throws with its stderr.
    @discardableResult
    public static func ip(_ args: [String]) throws -> String {
        let out = try Subprocess.run(executable: ipCommand, arguments: args, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
                                     deadline: Deadline(secondsFromNow: 20))
        guard out.exitStatus == 0 else {
            throw HarnessError("ip \(args.joined(separator: " ")): \(out.termination): \(String(decoding: out.stderr, as: UTF8.self))")
        }
        return String(decoding: out.stdout, as: UTF8.self)
    }

    /// Whether this process may create namespaces (root, `ip` and `nsenter` present).
    public static var isAvailable: Bool {
        geteuid() == 0 && access(ipCommand, X_OK) == 0 && access("/usr/bin/nsenter", X_OK) == 0
    }
}

/// The files under a directory with their contents, to prove a step wrote nothing
/// (a datastore file, host-local's reservations).
///
/// SQLite databases are compared by their logical content (`sqlite3 -readonly FILE .dump`),
/// not their bytes: a mere read rewrites the `-shm` index, and a checkpoint moves pages
/// from `-wal` into the main file without changing a single row. Their `-wal`, `-shm` and
/// `-journal` companions are therefore left out.
public struct DirectorySnapshot: Equatable, Sendable {
    public var files: [String: [UInt8]]

    public init(_ root: String) {
        files = [:]
        guard let e = FileManager.default.enumerator(atPath: root) else { return }
        var all: [String] = []
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue { all.append(rel) }
        }
        let databases = Set(all.filter { DirectorySnapshot.isSQLite(root + "/" + $0) })
        for rel in all {
            if ["-wal", "-shm", "-journal"].contains(where: { rel.hasSuffix($0) && databases.contains(String(rel.dropLast($0.count))) }) {
                continue
            }
            let full = root + "/" + rel
            if databases.contains(rel), let dump = DirectorySnapshot.sqliteDump(full) {
                files[rel] = dump
            } else {
                files[rel] = FileManager.default.contents(atPath: full).map { [UInt8]($0) } ?? []
            }
        }
    }

    static func isSQLite(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: 16)).map { Array($0) == Array("SQLite format 3\0".utf8) } ?? false
    }

    static let sqlite3: String? = ["/usr/bin/sqlite3", "/bin/sqlite3", "/usr/local/bin/sqlite3"].first { access($0, X_OK) == 0 }

    /// The database's SQL dump, or nil without the sqlite3 tool (then bytes are compared).
    static func sqliteDump(_ path: String) -> [UInt8]? {
        guard let tool = sqlite3,
              let out = try? Subprocess.run(executable: tool, arguments: ["-readonly", path, ".dump"], environment: [:],
                                            deadline: Deadline(secondsFromNow: 20)),
              out.exitStatus == 0
        else { return nil }
        return out.stdout
    }

    /// Human-readable differences from `before` to `self`.
    public func changes(since before: DirectorySnapshot) -> [String] {
        var out: [String] = []
        for k in Set(files.keys).union(before.files.keys).sorted() {
            switch (before.files[k], files[k]) {
            case (nil, .some): out.append("file \(k) created")
            case (.some, nil): out.append("file \(k) deleted")
            case (.some(let a), .some(let b)) where a != b:
                out.append("file \(k) changed" + DirectorySnapshot.lineDiff(a, b))
            default: break
            }
        }
        return out
    }

    /// For text content (dumps, JSON, host-local files): the first lines added and removed.
    static func lineDiff(_ a: [UInt8], _ b: [UInt8]) -> String {
        let la = String(decoding: a, as: UTF8.self).split(separator: "\n").map(String.init)
        let lb = String(decoding: b, as: UTF8.self).split(separator: "\n").map(String.init)
        let sa = Set(la), sb = Set(lb)
        let added = lb.filter { !sa.contains($0) }.prefix(3).map { "+ " + String($0.prefix(160)) }
        let removed = la.filter { !sb.contains($0) }.prefix(3).map { "- " + String($0.prefix(160)) }
        let all = added + removed
        return all.isEmpty ? "" : ": " + all.joined(separator: " | ")
    }
}
