import Datastore
import Foundation
import JSON

/// `node status`: whether calico-felix runs for this node and what it last programmed.
///
/// calico-felix writes its status to `/calico/felix/v1/host/<node>/status` as
/// `{"pid":1234,"lastSync":"2024-01-01T00:00:00Z","endpoints":3,"policies":1}` after every
/// sync (and at least every few seconds), so this command needs no access to felix itself.
enum NodeCommands {
    /// The key felix writes its status to.
    public static func statusKey(node: String) -> String { "/calico/felix/v1/host/\(node)/status" }

    static let options: [OptionSpec] = [
        .value("config", "c"), .value("log-level", "l"), .value("context"), .flag("allow-version-mismatch"),
    ]

    static func run(_ args: ArraySlice<String>, _ context: inout Context) throws {
        guard let sub = args.first else {
            throw UsageError("'calicoctl node' needs a subcommand: status", command: "node")
        }
        let parsed = try ArgumentParser(command: "node \(sub)", options: options).parse(args.dropFirst())
        if let c = parsed.value("config") { context.configPath = c }
        guard sub == "status" else {
            throw UsageError("unknown node subcommand '\(sub)': this calicoctl supports 'node status'", command: "node")
        }
        let node = context.nodeName()
        let store = try context.store()
        let kv: KeyValue?
        do {
            kv = try store.get(statusKey(node: node))
        } catch {
            throw CommandFailure("Failed to read the status of node \(node): \(error)")
        }
        guard let kv, let status = try? JSON(parsing: kv.value) else {
            context.console.out("Calico process is not running.")
            context.console.out("(calico-felix has never reported for node \(node): no \(statusKey(node: node)))")
            context.exitStatus = 1
            return
        }
        let pid = status["pid"]?.intValue
        let running = pid.map { isFelix(pid: Int32($0)) } ?? false
        context.console.out(running ? "Calico process is running." : "Calico process is not running.")
        context.console.out("")
        context.console.out("Felix status for node \(node):")
        var rows: [(String, String)] = []
        rows.append(("PID", pid.map { String($0) + (running ? "" : " (not running)") } ?? "unknown"))
        if let last = status["lastSync"]?.stringValue {
            rows.append(("Last sync", last + (age(of: last).map { " (\($0) ago)" } ?? "")))
        }
        rows.append(("Endpoints", status["endpoints"].map { $0.stringValue ?? $0.compactText } ?? "unknown"))
        rows.append(("Policies", status["policies"].map { $0.stringValue ?? $0.compactText } ?? "unknown"))
        for (k, v) in rows { context.console.out("  " + (k + ":").padding(toLength: 12, withPad: " ", startingAt: 0) + v) }
        if !running { context.exitStatus = 1 }
    }

    /// Whether `pid` is a live calico-felix process on this host.
    static func isFelix(pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return true }
        return comm.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("calico-felix")
    }

    /// "12s", "3m4s" since an RFC 3339 time, or nil if unparsable.
    static func age(of timestamp: String) -> String? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        var date = f.date(from: timestamp)
        if date == nil {
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            date = f.date(from: timestamp)
        }
        guard let date else { return nil }
        let s = max(0, Int(Date().timeIntervalSince(date)))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        return "\(s / 3600)h\((s % 3600) / 60)m"
    }
}

/// `version`: this client's version and, when the datastore answers, the cluster's.
enum VersionCommand {
    static let options: [OptionSpec] = [
        .flag("client"), .value("config", "c"), .value("poll"), .value("log-level", "l"), .value("context"),
        .flag("allow-version-mismatch"),
    ]

    static func run(_ args: ArraySlice<String>, _ context: inout Context) throws {
        let parsed = try ArgumentParser(command: "version", options: options).parse(args)
        if let c = parsed.value("config") { context.configPath = c }
        var lines = [("Client Version:", CalicoCtl.version)]
        if !parsed.has("client") {
            var cluster = "unknown"
            var type = "unknown"
            if let client = try? context.client(), let info = try? client.get(kind: .clusterInformation, name: "default") {
                let spec = info.json["spec"]
                cluster = spec?["calicoVersion"]?.stringValue ?? "unknown"
                type = spec?["clusterType"]?.stringValue ?? "unknown"
            }
            lines.append(("Cluster Version:", cluster))
            lines.append(("Cluster Type:", type))
        }
        for (k, v) in lines { context.console.out(k.padding(toLength: 19, withPad: " ", startingAt: 0) + v) }
    }
}
