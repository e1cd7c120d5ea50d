import CalicoAPI
import JSON

/// A document that passed validation, decoded.
struct PreparedResource {
    var document: Document
    var kind: ResourceKind
    var resource: any CalicoResource

    var name: String { resource.metadata.name }
    var namespace: String? { kind.isNamespaced ? (resource.metadata.namespace ?? "default") : nil }
}

/// Everything wrong with one document.
struct DocumentProblems: Error {
    var document: Document
    var problems: [ValidationProblem]

    /// One line per problem, `origin (line N): path: message`, plus detail lines.
    var lines: [String] {
        problems.flatMap { p -> [String] in
            var where_ = document.origin
            if let loc = document.location(of: p.path) { where_ += " (line \(loc.line))" }
            var out = ["  \(where_): \(p.description)"]
            if let detail = p.detail {
                out += detail.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }
            }
            return out
        }
    }
}

/// Turns loaded documents into resources, or explains every problem.
enum ResourceInput {
    enum Purpose { case write, delete, read }

    /// Validates and decodes `documents`. `namespace` is `-n`'s value.
    static func prepare(_ documents: [Document], namespace: String?, purpose: Purpose) -> ([PreparedResource], [DocumentProblems]) {
        var prepared: [PreparedResource] = []
        var failures: [DocumentProblems] = []
        for doc in documents {
            switch prepareOne(doc, namespace: namespace, purpose: purpose) {
            case .success(let p): prepared.append(p)
            case .failure(let f): failures.append(f)
            }
        }
        return (prepared, failures)
    }

    struct Failed: Error { var problems: DocumentProblems }

    static func prepareOne(_ doc: Document, namespace: String?, purpose: Purpose) -> Result<PreparedResource, DocumentProblems> {
        func fail(_ problems: [ValidationProblem]) -> Result<PreparedResource, DocumentProblems> {
            .failure(DocumentProblems(document: doc, problems: problems))
        }
        var value = doc.value
        guard case .object = value else {
            return fail([ValidationProblem(path: "", message: "expected a resource (apiVersion, kind, metadata, spec), found \(value.typeName)")])
        }
        guard let kindName = value["kind"]?.stringValue else {
            return fail([ValidationProblem(path: "kind", message: value["kind"] == nil
                ? "missing: every resource needs a kind, like kind: NetworkPolicy"
                : "expected the kind's name, found \(value["kind"]!.typeName)")])
        }
        guard let kind = ResourceKind(rawValue: kindName) else {
            if let alias = ResourceKind(alias: kindName) {
                return fail([ValidationProblem(path: "kind", message: "'\(kindName)' must be written '\(alias.name)'")])
            }
            let known = ResourceKind.allCases.map(\.name).joined(separator: ", ")
            return fail([ValidationProblem(path: "kind", message: "'\(kindName)' is not a resource kind this calicoctl manages (known: \(known))")])
        }
        // Namespace: the document's, else -n, else default. A document naming another
        // namespace than -n is a mistake worth stopping for.
        if kind.isNamespaced {
            let written = value["metadata"]?["namespace"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            if let written, let namespace, written != namespace {
                return fail([ValidationProblem(path: "metadata.namespace",
                                               message: "'\(written)' does not match the namespace given with -n/--namespace ('\(namespace)')")])
            }
            if written == nil, case .object = value["metadata"] ?? .null {
                value["metadata"]?["namespace"] = .string(namespace ?? "default")
            }
        }
        var checker = FieldChecker()
        checker.checkResource(value, kindName: kind.name, namespaced: kind.isNamespaced)
        var problems = checker.problems
        if purpose == .delete || purpose == .read {
            // Deleting needs only the identity; a stored resource that fails today's checks
            // must still be removable with the file that made it.
            problems = problems.filter { !$0.path.hasPrefix("spec") }
        }
        let reported = Set(problems.map(\.path))
        let context = DecodingContext()
        var decoded: (any CalicoResource)? = nil
        do {
            decoded = try kind.decode(value, context: context)
        } catch {
            let (path, message) = describe(error)
            let covered = reported.contains { $0 == path || path.hasPrefix($0 + ".") || path.hasPrefix($0 + "[") || $0.hasPrefix(path + ".") || $0.hasPrefix(path + "[") }
            if !covered && !(purpose != .write && path.hasPrefix("spec")) {
                problems.append(ValidationProblem(path: path, message: message))
            }
        }
        for unknown in context.unknownFields where purpose == .write || !unknown.hasPrefix("spec") {
            let field = unknown.split(separator: ".").last.map(String.init) ?? unknown
            problems.append(ValidationProblem(path: unknown, message: "unknown field '\(field.split(separator: "[").first ?? "")': \(kind.name) has no such field here (field names are case-sensitive)"))
        }
        if !problems.isEmpty || decoded == nil {
            if problems.isEmpty { problems.append(ValidationProblem(path: "", message: "cannot be read as a \(kind.name)")) }
            return fail(sortByPosition(problems, doc))
        }
        return .success(PreparedResource(document: doc, kind: kind, resource: decoded!))
    }

    private static func describe(_ error: CalicoAPIError) -> (String, String) {
        switch error {
        case .invalidField(let path, let reason): return (path, reason)
        case .missingField(let path): return (path, "missing")
        case .unknownField(let path): return (path, "unknown field")
        default: return ("", error.description)
        }
    }

    /// Orders problems as they appear in the file.
    private static func sortByPosition(_ problems: [ValidationProblem], _ doc: Document) -> [ValidationProblem] {
        problems.enumerated().sorted { a, b in
            let la = doc.location(of: a.element.path), lb = doc.location(of: b.element.path)
            switch (la, lb) {
            case let (x?, y?) where (x.line, x.column) != (y.line, y.column): return (x.line, x.column) < (y.line, y.column)
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }
}
