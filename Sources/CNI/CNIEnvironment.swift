/// One environment variable of the protocol: its name, the commands that need it, and how
/// its value is checked.
///
/// The table is data so that "which variables does DEL need" has one answer, and so that
/// every missing variable is reported in one error.
public struct CNIEnvironmentRule: Sendable {
    public let name: String
    /// Commands that fail with code 4 when the variable is missing or empty.
    public let requiredFor: Set<CNICommand>
    /// Checks a present (non-empty) value; nil when any value is acceptable.
    public let validate: (@Sendable (String) -> CNIError?)?

    public init(name: String, requiredFor: Set<CNICommand>, validate: (@Sendable (String) -> CNIError?)? = nil) {
        self.name = name
        self.requiredFor = requiredFor
        self.validate = validate
    }
}

/// The protocol's environment variables and the checks on them.
public enum CNIEnvironment {
    /// ADD and CHECK need the whole attachment; DEL may come without `CNI_NETNS` (Mesos
    /// leaves it out when the namespace is gone); VERSION, GC and STATUS need only
    /// `CNI_COMMAND`. `CNI_PATH` is required by nothing here: only IPAM delegation needs
    /// it, and it fails then if it is missing.
    public static let rules: [CNIEnvironmentRule] = [
        CNIEnvironmentRule(name: "CNI_COMMAND", requiredFor: Set(CNICommand.allCases)),
        CNIEnvironmentRule(name: "CNI_CONTAINERID", requiredFor: [.add, .del, .check], validate: validateContainerID),
        CNIEnvironmentRule(name: "CNI_NETNS", requiredFor: [.add, .check]),
        CNIEnvironmentRule(name: "CNI_IFNAME", requiredFor: [.add, .del, .check], validate: validateInterfaceName),
        CNIEnvironmentRule(name: "CNI_ARGS", requiredFor: []),
        CNIEnvironmentRule(name: "CNI_PATH", requiredFor: []),
    ]

    /// The value of `name`, treating empty as absent (runtimes built on libcni export every
    /// variable, often empty).
    public static func value(_ name: String, in environment: [String: String]) -> String? {
        guard let v = environment[name], !v.isEmpty else { return nil }
        return v
    }

    /// The names of the variables `command` needs that are missing, in table order. With an
    /// unknown or missing command only `CNI_COMMAND` itself is checked.
    public static func missing(for command: CNICommand?, in environment: [String: String]) -> [String] {
        guard let command else {
            return value("CNI_COMMAND", in: environment) == nil ? ["CNI_COMMAND"] : []
        }
        return rules.filter { $0.requiredFor.contains(command) && value($0.name, in: environment) == nil }.map(\.name)
    }

    /// Runs the validators of the present variables, in table order; the first failure.
    public static func validate(_ environment: [String: String]) -> CNIError? {
        for rule in rules {
            guard let check = rule.validate, let v = value(rule.name, in: environment) else { continue }
            if let e = check(v) { return e }
        }
        return nil
    }

    /// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, the pattern for network names and container ids.
    public static func isValidIdentifier(_ s: String) -> Bool {
        var first = true
        for c in s.utf8 {
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            if first {
                guard alnum else { return false }
                first = false
            } else {
                guard alnum || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") else { return false }
            }
        }
        return !first
    }

    /// Container id: the identifier pattern (Mesos nested containers contain a dot).
    @Sendable public static func validateContainerID(_ id: String) -> CNIError? {
        isValidIdentifier(id) ? nil : .invalidEnvironment("invalid characters in containerID", details: "CNI_CONTAINERID=\(id)")
    }

    /// Interface name: non-empty, at most 15 bytes (IFNAMSIZ − 1), not `.` or `..`, and
    /// no `/`, `:` or white space (the kernel's `dev_valid_name`).
    @Sendable public static func validateInterfaceName(_ name: String) -> CNIError? {
        if name.isEmpty { return .invalidEnvironment("interface name is empty") }
        if name.utf8.count > 15 {
            return .invalidEnvironment("interface name is too long", details: "interface name should be less than 16 characters: \(name)")
        }
        if name == "." || name == ".." { return .invalidEnvironment("interface name is . or ..") }
        if name.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace }) {
            return .invalidEnvironment("interface name contains / or : or whitespace characters", details: "CNI_IFNAME=\(name)")
        }
        return nil
    }
}

/// `CNI_ARGS`: `K=V;K=V` pairs, as libcni's `LoadArgs` reads them.
///
/// A key the plugin does not declare is an error unless `IgnoreUnknown` is `1` or `true`
/// (any case). Errors use code 4 (invalid environment variable), because `CNI_ARGS` is an
/// environment variable; upstream plugins return a plain error there, which their skel
/// prints as code 999, a number outside the specification.
public struct CNIArgs: Sendable, Hashable {
    /// One `K=V` pair.
    public struct Pair: Sendable, Hashable {
        public var key: String
        public var value: String
    }

    /// The pairs in the order given.
    public private(set) var pairs: [Pair] = []

    /// No arguments.
    public init() {}

    /// Parses `text` (empty means no arguments), refusing keys not in `knownKeys` unless
    /// `IgnoreUnknown` is set. `IgnoreUnknown` itself is always known.
    public init(parsing text: String, knownKeys: Set<String>) throws(CNIError) {
        if text.isEmpty { return }
        var ignoreUnknown = false
        for piece in text.split(separator: ";", omittingEmptySubsequences: false) {
            let kv = piece.split(separator: "=", omittingEmptySubsequences: false)
            guard kv.count == 2 else { throw .invalidEnvironment("ARGS: invalid pair \"\(piece)\"", details: "CNI_ARGS=\(text)") }
            let pair = Pair(key: String(kv[0]), value: String(kv[1]))
            if pair.key == "IgnoreUnknown" {
                switch pair.value.lowercased() {
                case "1", "true": ignoreUnknown = true
                case "0", "false": ignoreUnknown = false
                default: throw .invalidEnvironment("ARGS: IgnoreUnknown must be 1, 0, true or false", details: "CNI_ARGS=\(text)")
                }
            }
            pairs.append(pair)
        }
        let unknown = pairs.map(\.key).filter { $0 != "IgnoreUnknown" && !knownKeys.contains($0) }
        if !unknown.isEmpty && !ignoreUnknown {
            throw .invalidEnvironment("ARGS: unknown args: \(unknown.joined(separator: ", "))", details: "CNI_ARGS=\(text)")
        }
    }

    /// The value of the last pair named `key`.
    public subscript(key: String) -> String? {
        pairs.last { $0.key == key }?.value
    }

    /// Whether `IgnoreUnknown` was set to 1 or true.
    public var ignoresUnknown: Bool {
        guard let v = self["IgnoreUnknown"]?.lowercased() else { return false }
        return v == "1" || v == "true"
    }

    /// The keys Kubernetes-style runtimes (and Podman) send; a plugin that does not use them
    /// can declare them known so they are accepted and ignored.
    public static let kubernetesKeys: Set<String> = [
        "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID",
    ]
}
