import CalicoAPI
import JSON

/// `patch KIND NAME -p PATCH [-t merge|strategic] [-n NS]`: a JSON merge patch (RFC 7386)
/// over the stored resource, validated like `apply`, written only if nothing changed in
/// between.
enum PatchCommand {
    static let options: [OptionSpec] = [
        .value("patch", "p"), .value("type", "t"), .value("namespace", "n"), .value("config", "c"),
        .value("log-level", "l"), .value("context"), .flag("allow-version-mismatch"),
    ]

    static func run(_ args: ArraySlice<String>, _ context: inout Context) throws {
        let parsed = try ArgumentParser(command: "patch", options: options).parse(args)
        if let c = parsed.value("config") { context.configPath = c }
        guard parsed.positionals.count == 2 else {
            throw UsageError("'calicoctl patch' needs a KIND and a NAME", command: "patch")
        }
        guard let patchText = parsed.value("patch") else {
            throw UsageError("'calicoctl patch' needs -p/--patch with the fields to change", command: "patch")
        }
        if let t = parsed.value("type"), t != "merge" && t != "strategic" {
            throw UsageError("patch type '\(t)' is not supported: use merge (the default; strategic means the same for Calico resources)", command: "patch")
        }
        let kind = try ResourceCommands.resolveKind(parsed.positionals[0], command: "patch")
        let name = parsed.positionals[1]
        let ns = kind.isNamespaced ? (parsed.value("namespace") ?? "default") : nil
        let patch: JSON
        do {
            patch = try JSON(parsing: patchText)
        } catch {
            throw CommandFailure("Failed to patch '\(kind.name)' resource: the patch is not valid JSON: \(error)")
        }
        guard case .object = patch else {
            throw CommandFailure("Failed to patch '\(kind.name)' resource: the patch must be a JSON object, like '{\"spec\":{\"disabled\":true}}'")
        }
        let client = try context.client()
        guard let current = try fetch(client, kind, name, ns) else {
            throw CommandFailure("Failed to patch '\(kind.name)' resource: [\(CalicoAPIError.notFound(kind: kind.name, name: name, namespace: ns))]")
        }
        var merged = mergePatch(current.json, patch)
        // Identity and version come from what was read, whatever the patch says.
        merged["metadata"]?["name"] = .string(name)
        if let ns { merged["metadata"]?["namespace"] = .string(ns) }
        merged["metadata"]?["resourceVersion"] = current.metadata.resourceVersion.map { .string($0) } ?? .null
        let doc = Document(source: "patch", documentIndex: 1, value: merged)
        let prepared: PreparedResource
        switch ResourceInput.prepareOne(doc, namespace: ns, purpose: .write) {
        case .success(let p): prepared = p
        case .failure(let f):
            var lines = ["Failed to patch '\(kind.name)' resource: the result is not valid; nothing was stored:"]
            for line in f.lines { lines.append(line) }
            throw CommandFailure(lines.joined(separator: "\n"))
        }
        do {
            try StoreChecks(client: client).beforeWrite(prepared, verb: "replace")
            _ = try client.update(prepared.resource)
        } catch {
            throw CommandFailure("Failed to patch '\(kind.name)' resource: [\(ResourceCommands.describe(error))]")
        }
        context.console.out("Successfully patched 1 '\(kind.name)' resource")
    }

    static func fetch(_ client: ResourceClient, _ kind: ResourceKind, _ name: String, _ ns: String?) throws -> (any CalicoResource)? {
        do {
            return try client.get(kind: kind, name: name, namespace: ns)
        } catch {
            throw CommandFailure("Failed to get '\(kind.name)' resource: \(error)")
        }
    }

    /// RFC 7386: objects merge member by member, `null` deletes, anything else replaces.
    static func mergePatch(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let p) = patch else { return patch }
        var t = target.objectValue ?? [:]
        for (k, v) in p {
            if v.isNull { t[k] = nil } else { t[k] = mergePatch(t[k] ?? .null, v) }
        }
        return .object(t)
    }
}

/// `label KIND NAME key=value [--overwrite]`, `label KIND NAME key --remove` (or `key-`).
enum LabelCommand {
    static let options: [OptionSpec] = [
        .flag("overwrite"), .flag("remove"), .value("namespace", "n"), .value("config", "c"),
        .value("log-level", "l"), .value("context"), .flag("allow-version-mismatch"),
    ]

    static func run(_ args: ArraySlice<String>, _ context: inout Context) throws {
        let parsed = try ArgumentParser(command: "label", options: options).parse(args)
        if let c = parsed.value("config") { context.configPath = c }
        guard parsed.positionals.count == 3 else {
            throw UsageError("'calicoctl label' needs KIND NAME and key=value (or key --remove)", command: "label")
        }
        let kind = try ResourceCommands.resolveKind(parsed.positionals[0], command: "label")
        let name = parsed.positionals[1]
        let ns = kind.isNamespaced ? (parsed.value("namespace") ?? "default") : nil
        var spec = parsed.positionals[2]
        var remove = parsed.has("remove")
        var value: String? = nil
        if let eq = spec.firstIndex(of: "=") {
            if remove { throw UsageError("--remove takes a label name, not key=value", command: "label") }
            value = String(spec[spec.index(after: eq)...])
            spec = String(spec[..<eq])
        } else if spec.hasSuffix("-") {
            remove = true
            spec.removeLast()
        } else if !remove {
            throw UsageError("give key=value to set a label, or key --remove (or key-) to remove it", command: "label")
        }
        let key = spec
        guard FieldChecker.isLabelKey(key) else {
            throw CommandFailure("'\(key)' is not a valid label name: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
        }
        if let value, !FieldChecker.isLabelValue(value) {
            throw CommandFailure("'\(value)' is not a valid label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
        }
        let client = try context.client()
        // Read-modify-write; another writer in between makes us read again.
        for attempt in 1...5 {
            guard var r = try PatchCommand.fetch(client, kind, name, ns) else {
                throw CommandFailure("Failed to get resources: [\(CalicoAPIError.notFound(kind: kind.name, name: name, namespace: ns))]")
            }
            if remove {
                guard r.metadata.labels[key] != nil else {
                    throw CommandFailure("can not remove label of resource \(kind.name) - \(name). label key \(key) doesn't exist")
                }
                r.metadata.labels[key] = nil
            } else {
                if let existing = r.metadata.labels[key], !parsed.has("overwrite"), existing != value {
                    throw CommandFailure("failed to update label of resource \(kind.name) - \(name). key \(key) is already present. you may use --overwrite to set a new value")
                }
                r.metadata.labels[key] = value
            }
            do throws(CalicoAPIError) {
                _ = try client.update(r)
            } catch .conflict where attempt < 5 {
                continue
            } catch {
                throw CommandFailure("failed to update label of resource \(kind.name) - \(name): \(ResourceCommands.describe(error))")
            }
            context.console.out(remove ? "Successfully removed label \(key) from \(kind.name) \(name)"
                                       : "Successfully set label \(key) on \(kind.name) \(name)")
            return
        }
    }
}
