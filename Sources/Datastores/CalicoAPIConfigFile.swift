import JSON

/// The contents of calicoctl's config file, upstream's `CalicoAPIConfig`:
/// ```yaml
/// apiVersion: projectcalico.org/v3
/// kind: CalicoAPIConfig
/// metadata:
/// spec:
///   datastoreType: etcdv3
///   etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379
///   etcdCACertFile: /etc/calico/ca.pem
/// ```
/// plus our `spec.sqlitePath`. Only this flat two-level shape of YAML is read (top-level
/// scalars and one level of `key: scalar` under a section), which covers the file upstream
/// documents, without a YAML library on the plugin's path. A JSON object of the same shape
/// is accepted too.
struct CalicoAPIConfigFile: Equatable {
    /// Top-level `key: value` pairs (`apiVersion`, `kind`).
    var scalars: [String: String] = [:]
    /// Each section's `key: value` pairs (`spec`, `metadata`).
    var sections: [String: [String: String]] = [:]

    init(scalars: [String: String] = [:], sections: [String: [String: String]] = [:]) {
        self.scalars = scalars
        self.sections = sections
    }

    /// Parses `text` read from `path` (named in errors).
    init(parsing text: String, path: String) throws(DatastoreSettingsError) {
        if text.first(where: { !$0.isWhitespace }) == "{" {
            try self.init(json: text, path: path)
        } else {
            try self.init(yaml: text, path: path)
        }
    }

    private init(json text: String, path: String) throws(DatastoreSettingsError) {
        let value: JSON
        do { value = try JSON(parsing: text) } catch {
            throw .malformedFile(path: path, line: Self.line(ofOffset: error.offset, in: text), reason: error.reason)
        }
        guard let object = value.objectValue else {
            throw .malformedFile(path: path, line: 1, reason: "expected a JSON object")
        }
        for (key, member) in object {
            switch member {
            case .string(let s): scalars[key] = s
            case .object(let inner):
                var section: [String: String] = [:]
                for (k, v) in inner {
                    switch v {
                    case .string(let s): section[k] = s
                    case .int, .double, .bool: section[k] = v.compactText
                    case .null: break
                    default: throw .malformedFile(path: path, line: 1, reason: "\(key).\(k): expected a string, got \(v.typeName)")
                    }
                }
                sections[key] = section
            case .null: break
            default: scalars[key] = member.compactText
            }
        }
    }

    private init(yaml text: String, path: String) throws(DatastoreSettingsError) {
        var section: String?
        var sawContent = false
        var number = 0
        // "\r\n" is one Character in Swift, so split on both spellings of a line end.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            func fail(_ reason: String) -> DatastoreSettingsError { .malformedFile(path: path, line: number, reason: reason) }
            let line = Substring(rawLine)
            let indent = line.prefix { $0 == " " || $0 == "\t" }
            let body = line.dropFirst(indent.count)
            if body.isEmpty || body.hasPrefix("#") { continue }
            if indent.contains("\t") { throw fail("tabs are not allowed in YAML indentation") }
            if body.hasPrefix("---") && trimmed(body) == "---" {
                if sawContent { throw fail("only one YAML document is read") }
                continue
            }
            if body.hasPrefix("- ") || body == "-" { throw fail("lists are not supported here") }
            guard let (key, rest) = Self.splitKey(body) else { throw fail("expected \"key: value\"") }
            sawContent = true
            let value = try Self.scalar(rest, fail: fail)
            if indent.isEmpty {
                if let value {
                    scalars[key] = value
                    section = nil
                } else {
                    // `key:` with nothing after it opens a section (or is an empty scalar).
                    section = key
                    if sections[key] == nil { sections[key] = [:] }
                }
            } else {
                guard let section else { throw fail("indented \"\(key)\" is not under a section") }
                if let value { sections[section, default: [:]][key] = value }
            }
        }
    }

    /// Splits `key: rest` (or `key:` at the end of the line); keys may be quoted.
    private static func splitKey(_ body: Substring) -> (String, Substring)? {
        var key: String
        var afterKey: Substring
        if let quote = body.first, quote == "\"" || quote == "'" {
            guard let close = body.dropFirst().firstIndex(of: quote) else { return nil }
            key = String(body[body.index(after: body.startIndex)..<close])
            afterKey = body[body.index(after: close)...]
            guard afterKey.hasPrefix(":") else { return nil }
        } else {
            var search = body.startIndex
            while true {
                guard let colon = body[search...].firstIndex(of: ":") else { return nil }
                let next = body.index(after: colon)
                if next == body.endIndex || body[next] == " " || body[next] == "\t" {
                    key = trimmed(body[..<colon])
                    afterKey = body[colon...]
                    break
                }
                search = next
            }
            if key.isEmpty { return nil }
        }
        return (key, afterKey.dropFirst())
    }

    /// A YAML scalar: plain, 'single-quoted' or "double-quoted", with an optional trailing
    /// comment. Nil for an empty value, `~` or `null`.
    private static func scalar(_ text: Substring, fail: (String) -> DatastoreSettingsError) throws(DatastoreSettingsError) -> String? {
        let t = Substring(trimmed(text))
        guard let first = t.first else { return nil }
        switch first {
        case "\"":
            var out = ""
            var i = t.index(after: t.startIndex)
            while i < t.endIndex {
                let c = t[i]
                if c == "\"" {
                    try checkTrailing(t[t.index(after: i)...], fail: fail)
                    return out
                }
                if c == "\\" {
                    i = t.index(after: i)
                    guard i < t.endIndex else { break }
                    switch t[i] {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    case "\"", "\\", "/": out.append(t[i])
                    default: throw fail("unsupported escape \\\(t[i]) in a double-quoted string")
                    }
                } else {
                    out.append(c)
                }
                i = t.index(after: i)
            }
            throw fail("unterminated double-quoted string")
        case "'":
            var out = ""
            var i = t.index(after: t.startIndex)
            while i < t.endIndex {
                if t[i] == "'" {
                    let next = t.index(after: i)
                    if next < t.endIndex && t[next] == "'" {
                        out.append("'")
                        i = t.index(after: next)
                        continue
                    }
                    try checkTrailing(t[next...], fail: fail)
                    return out
                }
                out.append(t[i])
                i = t.index(after: i)
            }
            throw fail("unterminated single-quoted string")
        case "[", "{":
            throw fail("flow collections are not supported here")
        case "|", ">":
            throw fail("block scalars are not supported here")
        default:
            var plain = t
            // A comment starts at " #" in a plain scalar.
            if let hash = plain.indices.first(where: { plain[$0] == "#" && $0 > plain.startIndex && plain[plain.index(before: $0)].isWhitespace }) {
                plain = plain[..<hash]
            }
            let value = trimmed(plain)
            return value.isEmpty || value == "~" || value == "null" ? nil : value
        }
    }

    private static func checkTrailing(_ rest: Substring, fail: (String) -> DatastoreSettingsError) throws(DatastoreSettingsError) {
        let r = trimmed(rest)
        if !r.isEmpty && !r.hasPrefix("#") { throw fail("unexpected text after a quoted string") }
    }

    private static func line(ofOffset offset: Int, in text: String) -> Int {
        1 + text.utf8.prefix(offset).filter { $0 == UInt8(ascii: "\n") }.count
    }
}
