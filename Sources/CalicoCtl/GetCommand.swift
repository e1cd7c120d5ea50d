import CalicoAPI
import Datastore

/// `get KIND [NAME…] [-o ps|wide|yaml|json] [-n NS | -a]` and `get -f FILE`.
enum GetCommand {
    static let options: [OptionSpec] = [
        .value("output", "o"), .value("namespace", "n"), .flag("all-namespaces", "a"), .value("filename", "f"),
        .value("config", "c"), .flag("export"), .value("log-level", "l"), .value("context"), .flag("allow-version-mismatch"),
    ]

    static func run(_ args: ArraySlice<String>, _ context: inout Context) throws {
        let parsed = try ArgumentParser(command: "get", options: options).parse(args)
        if let c = parsed.value("config") { context.configPath = c }
        let format = try OutputFormat(option: parsed.value("output"))
        let allNamespaces = parsed.has("all-namespaces")
        if allNamespaces && parsed.value("namespace") != nil {
            throw UsageError("give either -n/--namespace or -a/--all-namespaces", command: "get")
        }
        var queries: [(kind: ResourceKind, name: String?, namespace: String?)] = []
        if let path = parsed.value("filename") {
            let resources = try ResourceCommands.load(path, verb: "get", namespace: parsed.value("namespace"), purpose: .read, context: context)
            queries = resources.map { ($0.kind, $0.name, $0.namespace) }
        } else {
            guard let kindText = parsed.positionals.first else {
                throw UsageError("'calicoctl get' needs a resource type, like 'calicoctl get nodes'", command: "get")
            }
            let kind = try ResourceCommands.resolveKind(kindText, command: "get")
            let ns: String? = kind.isNamespaced ? (allNamespaces ? nil : (parsed.value("namespace") ?? "default")) : nil
            let names = parsed.positionals.dropFirst()
            if names.isEmpty {
                queries = [(kind, nil, ns)]
            } else {
                if allNamespaces && kind.isNamespaced {
                    throw UsageError("a name needs a namespace: use -n NAMESPACE instead of -a", command: "get")
                }
                queries = names.map { (kind, $0, ns) }
            }
        }
        let store = try context.store()
        let client = ResourceClient(store: store)
        var found: [any CalicoResource] = []
        var missing: [String] = []
        do {
            for q in queries {
                if let name = q.name {
                    if let r = try client.get(kind: q.kind, name: name, namespace: q.namespace) {
                        found.append(r)
                    } else {
                        missing.append(CalicoAPIError.notFound(kind: q.kind.name, name: name, namespace: q.namespace).description)
                    }
                } else {
                    found += try client.list(kind: q.kind, namespace: q.namespace)
                }
            }
        } catch {
            throw CommandFailure("Failed to get resources: \(error)")
        }
        let kind = queries.first!.kind
        let singleByName = queries.count == 1 && queries[0].name != nil
        switch format {
        case .ps, .wide:
            if !found.isEmpty || missing.isEmpty {
                // Several kinds (from a file) print one table each.
                var byKind: [(ResourceKind, [any CalicoResource])] = []
                for r in found {
                    let k = type(of: r).kind
                    if let i = byKind.firstIndex(where: { $0.0 == k }) { byKind[i].1.append(r) } else { byKind.append((k, [r])) }
                }
                if byKind.isEmpty { byKind = [(kind, [])] }
                for (k, rs) in byKind {
                    context.console.writeOut(ResourcePrinter.table(rs, kind: k, wide: format == .wide, showNamespace: allNamespaces))
                }
            }
        case .yaml, .json:
            if !found.isEmpty || missing.isEmpty {
                let revision = try? store.currentRevision()
                context.console.writeOut(ResourcePrinter.document(found, kind: kind, asList: !(singleByName && found.count == 1),
                                                                  revision: revision, format: format))
            }
        }
        if !missing.isEmpty {
            throw CommandFailure("Failed to get resources: [\(missing.joined(separator: ", "))]")
        }
    }
}
