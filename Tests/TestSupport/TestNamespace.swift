import Foundation

/// A named network namespace made for one test (`ip netns add`), deleted by `remove()`
/// or when the value is deinitialised. Tests never touch the machine's own namespace.
public final class TestNamespace: @unchecked Sendable {
    public let name: String
    /// `/var/run/netns/<name>`, what CNI_NETNS gets.
    public var path: String { "/var/run/netns/\(name)" }
    private var removed = false

    /// Creates `<prefix>-<random>` and brings its `lo` up unless `loopbackDown`.
    public init(_ prefix: String = "t", loopbackDown: Bool = false) throws {
        name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try Command.check(["ip", "netns", "add", name])
        if !loopbackDown { try Command.check(["ip", "-n", name, "link", "set", "lo", "up"]) }
    }

    /// Runs `argv` inside the namespace (`ip netns exec`).
    @discardableResult
    public func run(_ argv: [String], environment: [String: String]? = nil, stdin: Data = Data(), timeout: TimeInterval = 60) throws -> CommandResult {
        try Command.run(["ip", "netns", "exec", name] + argv, environment: environment, stdin: stdin, timeout: timeout)
    }

    /// Runs `argv` inside the namespace and throws unless it exits 0.
    @discardableResult
    public func check(_ argv: [String]) throws -> String {
        try Command.check(["ip", "netns", "exec", name] + argv)
    }

    /// `ip -j <args>` in the namespace, parsed.
    public func ipJSON(_ args: [String]) throws -> [[String: Any]] {
        let out = try Command.check(["ip", "-n", name, "-j"] + args)
        if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
        return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]) ?? []
    }

    /// Names of the links in the namespace.
    public func linkNames() throws -> [String] {
        try ipJSON(["link", "show"]).compactMap { $0["ifname"] as? String }
    }

    public func remove() {
        guard !removed else { return }
        removed = true
        _ = try? Command.run(["ip", "netns", "delete", name])
    }

    deinit { remove() }
}
