import Foundation
import JSON

/// A recorded invocation (or a sequence of them) and what must come out.
///
/// The file format (see Fixtures/README.md): a JSON object with `description`, optional
/// `pluginDir`, and either one step's members at top level (`plugin`, `env`, `stdin`,
/// `expect`) or `steps`, an array of such objects run in order against the same namespaces,
/// temp dir and datastore.
public struct Fixture: Sendable {
    /// One plugin execution.
    public struct Step: Sendable {
        public var description: String
        /// The binary's name, looked up in the plugin directory.
        public var plugin: String
        /// Arguments after the binary (plugins take none; a setup tool may).
        public var arguments: [String]
        /// The environment, exactly; values may hold `${PLACEHOLDER}`s.
        public var env: [String: String]
        /// stdin, exactly (bytes matter); may hold `${PLACEHOLDER}`s.
        public var stdin: String
        public var expect: Expectation
    }

    /// What a step must produce.
    public struct Expectation: Sendable {
        /// The exit status; nil means 0, or any non-zero status when `error` is set.
        public var exitCode: Int32?
        /// The stdout JSON (with matchers), `""` for "nothing printed"; nil: not checked
        /// beyond "empty or exactly one JSON value".
        public var stdout: JSON?
        /// An error object: its code, a substring of its msg, and (optionally) cniVersion.
        public var errorCode: Int?
        public var errorMessage: String?
        public var errorVersion: String?
        /// The step must change nothing: the container's and the host's namespaces, and the
        /// files under the fixture's temp dir (datastore, IPAM state).
        public var unchanged: Bool
        /// The exact set of link names in the container namespace afterwards.
        public var containerLinks: [String]?
        /// Every address of the printed result must be configured in the container namespace.
        public var containerHasResultAddresses: Bool
        /// MTU per link name in the container namespace afterwards.
        public var containerMTU: [String: Int]
    }

    /// The file it came from.
    public var path: String
    public var description: String
    /// Where the plugins of this fixture live (e.g. `/usr/lib/cni`); nil: the directory the
    /// harness was given (`--plugins`, default the harness's own build directory).
    public var pluginDirectory: String?
    public var steps: [Step]

    /// Reads one fixture file.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { throw HarnessError("\(path): cannot read") }
        let json: JSON
        do { json = try JSON(parsing: [UInt8](data)) } catch { throw HarnessError("\(path): \(error)") }
        guard json.objectValue != nil else { throw HarnessError("\(path): not a JSON object") }
        guard let d = json["description"]?.stringValue else { throw HarnessError("\(path): missing \"description\"") }
        description = d
        pluginDirectory = json["pluginDir"]?.stringValue
        let defaultPlugin = json["plugin"]?.stringValue
        if let list = json["steps"] {
            guard let items = list.arrayValue, !items.isEmpty else { throw HarnessError("\(path): \"steps\" must be a non-empty array") }
            steps = try items.enumerated().map { i, s in try Fixture.step(s, defaultPlugin: defaultPlugin, context: "\(path): steps[\(i)]") }
        } else {
            steps = [try Fixture.step(json, defaultPlugin: defaultPlugin, context: path)]
        }
    }

    static func step(_ j: JSON, defaultPlugin: String?, context: String) throws -> Step {
        guard let plugin = j["plugin"]?.stringValue ?? defaultPlugin else { throw HarnessError("\(context): missing \"plugin\"") }
        guard let envObject = j["env"]?.objectValue else { throw HarnessError("\(context): missing \"env\" object") }
        var env: [String: String] = [:]
        for (k, v) in envObject {
            guard let s = v.stringValue else { throw HarnessError("\(context): env \(k) must be a string") }
            env[k] = s
        }
        guard let stdin = j["stdin"]?.stringValue else { throw HarnessError("\(context): missing \"stdin\" string") }
        guard let e = j["expect"], e.objectValue != nil else { throw HarnessError("\(context): missing \"expect\" object") }
        var x = Expectation(exitCode: nil, stdout: e["stdout"], errorCode: nil, errorMessage: nil, errorVersion: nil,
                            unchanged: e["unchanged"]?.boolValue ?? false, containerLinks: nil,
                            containerHasResultAddresses: e["containerHasResultAddresses"]?.boolValue ?? false,
                            containerMTU: [:])
        for (name, mtu) in e["containerMTU"]?.objectValue ?? [:] {
            guard let m = mtu.intValue else { throw HarnessError("\(context): containerMTU values must be integers") }
            x.containerMTU[name] = m
        }
        if let c = e["exitCode"] {
            guard let i = c.intValue else { throw HarnessError("\(context): exitCode must be an integer") }
            x.exitCode = Int32(i)
        }
        if let err = e["error"] {
            guard let code = err["code"]?.intValue else { throw HarnessError("\(context): error needs an integer \"code\"") }
            x.errorCode = code
            x.errorMessage = err["msg"]?.stringValue
            x.errorVersion = err["cniVersion"]?.stringValue
        }
        if let links = e["containerLinks"] {
            guard let a = links.arrayValue?.compactMap(\.stringValue) else { throw HarnessError("\(context): containerLinks must list names") }
            x.containerLinks = a.sorted()
        }
        let arguments = (j["args"]?.arrayValue ?? []).compactMap(\.stringValue)
        return Step(description: j["description"]?.stringValue ?? (env["CNI_COMMAND"] ?? "step"), plugin: plugin,
                    arguments: arguments, env: env, stdin: stdin, expect: x)
    }

    /// The fixtures at `path`: the file itself, or every `*.json` under the directory
    /// (recursively, sorted by path).
    public static func load(_ path: String) throws -> [Fixture] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw HarnessError("\(path): no such file or directory") }
        if !isDir.boolValue { return [try Fixture(path: path)] }
        var files: [String] = []
        let e = FileManager.default.enumerator(atPath: path)
        while let rel = e?.nextObject() as? String {
            if rel.hasSuffix(".json") { files.append((path.hasSuffix("/") ? path : path + "/") + rel) }
        }
        return try files.sorted().map { try Fixture(path: $0) }
    }
}

/// `${NAME}` substitution in fixture text. `${NAME:escape-slashes}` writes every `/` of the
/// value as `\/`, the way Mesos before 1.7 serialised configs.
public struct Placeholders: Sendable {
    public var values: [String: String]

    public init(_ values: [String: String] = [:]) { self.values = values }

    /// `text` with every `${NAME}` replaced; an unknown name throws.
    public func expand(_ text: String) throws -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { throw HarnessError("unterminated placeholder in \(text)") }
            var name = String(rest[start.upperBound..<end])
            var escapeSlashes = false
            if name.hasSuffix(":escape-slashes") {
                name.removeLast(":escape-slashes".count)
                escapeSlashes = true
            }
            guard let v = values[name] else {
                throw HarnessError("unknown placeholder ${\(name)} (known: \(values.keys.sorted().joined(separator: ", ")))")
            }
            out += escapeSlashes ? v.replacingOccurrences(of: "/", with: "\\/") : v
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    /// Expands every string inside a JSON value.
    public func expand(_ json: JSON) throws -> JSON {
        switch json {
        case .string(let s): return .string(try expand(s))
        case .array(let a): return .array(try a.map { try expand($0) })
        case .object(let o):
            var r: [String: JSON] = [:]
            for (k, v) in o { r[k] = try expand(v) }
            return .object(r)
        default: return json
        }
    }
}
