import CalicoAPI
import Datastore
import JSON

/// What `delete` removes.
struct DeleteTarget {
    var kind: ResourceKind
    var name: String
    var namespace: String?
    var resourceVersion: String?
}

/// `create`, `apply`, `replace` and `delete`.
enum ResourceCommands {
    static let fileOptions: [OptionSpec] = [
        .value("filename", "f"), .value("config", "c"), .value("namespace", "n"),
        .flag("skip-exists"), .flag("skip-not-exists"), .value("log-level", "l"), .value("context"),
        .flag("allow-version-mismatch"),
    ]

    private static func pastTense(_ verb: String) -> String {
        switch verb {
        case "apply": return "applied"
        case "create": return "created"
        case "replace": return "replaced"
        case "delete": return "deleted"
        case "patch": return "patched"
        default: return verb + "d"
        }
    }

    /// Loads every document named by `-f`; all-or-nothing validation.
    static func load(_ path: String, verb: String, namespace: String?, purpose: ResourceInput.Purpose,
                     context: Context) throws -> [PreparedResource] {
        let files: [[Document]]
        do {
            files = try DocumentLoader.load(path: path, stdin: context.console.readIn)
        } catch let e as DocumentLoadError {
            throw CommandFailure("Failed to \(verb) resources: \(e.description); nothing was stored")
        }
        let (prepared, failures) = ResourceInput.prepare(files.flatMap { $0 }, namespace: namespace, purpose: purpose)
        if !failures.isEmpty {
            let count = failures.reduce(0) { $0 + $1.problems.count }
            var lines = ["Failed to \(verb) resources: \(count) problem\(count == 1 ? "" : "s") found; nothing was stored:"]
            for f in failures { lines += f.lines }
            throw CommandFailure(lines.joined(separator: "\n"))
        }
        return prepared
    }

    /// `create|apply|replace -f FILE|DIR|-`
    static func write(_ verb: String, _ args: ArraySlice<String>, _ context: inout Context) throws {
        let parsed = try ArgumentParser(command: verb, options: fileOptions).parse(args)
        if let c = parsed.value("config") { context.configPath = c }
        guard let path = parsed.value("filename") else {
            throw UsageError("'calicoctl \(verb)' needs -f/--filename FILE, DIR or -", command: verb)
        }
        if !parsed.positionals.isEmpty {
            throw UsageError("unexpected argument '\(parsed.positionals[0])'", command: verb)
        }
        if verb != "create" && parsed.has("skip-exists") {
            throw UsageError("--skip-exists is only for create", command: verb)
        }
        let resources = try load(path, verb: verb, namespace: parsed.value("namespace"), purpose: .write, context: context)
        let client = try context.client()
        let checks = StoreChecks(client: client)
        try execute(resources, kind: \.kind, verb: verb, context: &context) { (p) throws(CalicoAPIError) in
            try checks.beforeWrite(p, verb: verb)
            switch verb {
            case "create":
                var r = p.resource
                r.metadata.resourceVersion = nil
                do throws(CalicoAPIError) {
                    _ = try client.create(r)
                } catch .alreadyExists where parsed.has("skip-exists") {
                    return
                }
            case "replace":
                _ = try client.update(p.resource)
            default:
                _ = try client.apply(p.resource)
            }
        }
    }

    /// `delete -f FILE` or `delete KIND NAME…`
    static func delete(_ args: ArraySlice<String>, _ context: inout Context) throws {
        let parsed = try ArgumentParser(command: "delete", options: fileOptions).parse(args)
        if let c = parsed.value("config") { context.configPath = c }
        let skipMissing = parsed.has("skip-not-exists")
        var targets: [DeleteTarget] = []
        if let path = parsed.value("filename") {
            guard parsed.positionals.isEmpty else {
                throw UsageError("give either -f FILE or KIND NAME, not both", command: "delete")
            }
            let resources = try load(path, verb: "delete", namespace: parsed.value("namespace"), purpose: .delete, context: context)
            targets = resources.map { DeleteTarget(kind: $0.kind, name: $0.name, namespace: $0.namespace, resourceVersion: $0.resource.metadata.resourceVersion) }
        } else {
            guard parsed.positionals.count >= 2 else {
                throw UsageError("'calicoctl delete' needs -f FILE, or a KIND and a NAME", command: "delete")
            }
            let kind = try resolveKind(parsed.positionals[0], command: "delete")
            let ns = kind.isNamespaced ? (parsed.value("namespace") ?? "default") : nil
            targets = parsed.positionals.dropFirst().map { DeleteTarget(kind: kind, name: $0, namespace: ns, resourceVersion: nil) }
        }
        let client = try context.client()
        try execute(targets, kind: \.kind, verb: "delete", context: &context) { (t) throws(CalicoAPIError) in
            do throws(CalicoAPIError) {
                try client.delete(kind: t.kind, name: t.name, namespace: t.namespace, resourceVersion: t.resourceVersion)
            } catch .notFound where skipMissing {
                return
            }
        }
    }

    /// Runs `body` on each resource in order, stopping at the first failure, and reports
    /// in upstream's words.
    static func execute<T>(_ resources: [T], kind: (T) -> ResourceKind, verb: String, context: inout Context,
                           _ body: (T) throws(CalicoAPIError) -> Void) throws {
        let kinds = Set(resources.map(kind))
        let kindText = kinds.count == 1 ? "'\(kinds.first!.name)' " : ""
        var handled = 0
        var failure: CalicoAPIError? = nil
        for p in resources {
            do {
                try body(p)
                handled += 1
            } catch {
                failure = error
                break
            }
        }
        let done = pastTense(verb)
        guard let failure else {
            context.console.out("Successfully \(done) \(handled) \(kindText)resource(s)")
            return
        }
        let message = describe(failure)
        if handled > 0 {
            context.console.out("Partial success: \(done) the first \(handled) out of \(resources.count) \(kindText)resources:")
            throw CommandFailure("Hit error: [\(message)]")
        }
        if resources.count == 1 {
            throw CommandFailure("Failed to \(verb) \(kindText)resource: [\(message)]")
        }
        throw CommandFailure("Failed to \(verb) any \(kindText)resources: [\(message)]")
    }

    static func describe(_ error: CalicoAPIError) -> String {
        switch error {
        case .conflict(let kind, let name, let ns):
            let id = ns.map { "\(kind)(\($0)/\(name))" } ?? "\(kind)(\(name))"
            return "update conflict: \(id): the resource changed since it was read (its resourceVersion is stale); get it again and retry"
        default:
            return error.description
        }
    }

    /// Finds a kind by name or alias, or explains.
    static func resolveKind(_ text: String, command: String) throws -> ResourceKind {
        if let k = ResourceKind(alias: text) { return k }
        let known = ResourceKind.allCases.map { $0.plural }.joined(separator: ", ")
        throw CommandFailure("Failed to \(command) resources: resource type '\(text)' is not supported (known types: \(known))")
    }
}
