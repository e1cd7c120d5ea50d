import Foundation
import JSON
import Yams

/// A file, directory or stdin that could not be read as resources.
public struct DocumentLoadError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var message: String

    public var description: String {
        "\(source == "-" ? "stdin" : source): \(message)"
    }
}

/// Reads resources the way upstream calicoctl accepts them: YAML (several documents
/// separated by `---`) or JSON, a single resource, a top-level list of resources, or a
/// `kind: …List` with `items`. A directory means every `.yaml`, `.yml` and `.json` file
/// in it, in name order.
public enum DocumentLoader {
    /// Loads `path` (`-` reads `stdin`).
    public static func load(path: String, stdin: () throws -> [UInt8]) throws -> [[Document]] {
        if path == "-" {
            let bytes = try stdin()
            return [try parse(text: String(decoding: bytes, as: UTF8.self), source: "-")]
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DocumentLoadError(source: path, message: "no such file or directory")
        }
        if isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            return try names.filter { n in [".yaml", ".yml", ".json"].contains { n.lowercased().hasSuffix($0) } }
                .map { try parse(file: (path as NSString).appendingPathComponent($0)) }
        }
        return [try parse(file: path)]
    }

    /// Parses one file.
    public static func parse(file: String) throws -> [Document] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw DocumentLoadError(source: file, message: "cannot read the file")
        }
        return try parse(text: String(decoding: data, as: UTF8.self), source: file)
    }

    /// Parses text holding YAML or JSON resources.
    public static func parse(text: String, source: String) throws -> [Document] {
        let trimmed = text.drop { $0.isWhitespace }
        let roots: [(JSON, [String: SourceLocation])]
        if trimmed.first == "{" || trimmed.first == "[" {
            // JSON first: its errors are clearer for JSON input. YAML flow style (`{a: b}`)
            // also starts with a brace, so fall back to YAML.
            switch parseJSON(text) {
            case .success(let value):
                roots = [(value, [:])]
            case .failure(let jsonError):
                guard case .success(let yaml) = parseYAML(text) else {
                    throw DocumentLoadError(source: source, message: jsonError.description)
                }
                roots = yaml
            }
        } else {
            switch parseYAML(text) {
            case .success(let yaml): roots = yaml
            case .failure(let error): throw DocumentLoadError(source: source, message: error.description)
            }
        }
        var docs: [Document] = []
        for (i, (root, locations)) in roots.enumerated() {
            docs += expand(root, locations: locations, source: source, documentIndex: i + 1)
        }
        if docs.isEmpty {
            throw DocumentLoadError(source: source, message: "no resources found")
        }
        return docs
    }

    private static func parseJSON(_ text: String) -> Result<JSON, JSONParseError> {
        do { return .success(try JSON(parsing: text)) } catch { return .failure(error) }
    }

    private static func parseYAML(_ text: String) -> Result<[(JSON, [String: SourceLocation])], YAMLReader.Failure> {
        do { return .success(try YAMLReader.read(text)) } catch { return .failure(error) }
    }

    /// Splits lists into their members.
    static func expand(_ root: JSON, locations: [String: SourceLocation], source: String, documentIndex: Int) -> [Document] {
        if case .null = root { return [] }
        func items(_ array: [JSON], prefix: String, defaultKind: String?, apiVersion: JSON?) -> [Document] {
            array.enumerated().map { (j, item) in
                var item = item
                if let defaultKind, case .object = item, item["kind"] == nil { item["kind"] = .string(defaultKind) }
                if let apiVersion, case .object = item, item["apiVersion"] == nil { item["apiVersion"] = apiVersion }
                return Document(source: source, documentIndex: documentIndex, itemIndex: j, value: item,
                                locations: rebase(locations, prefix: "\(prefix)[\(j)]"))
            }
        }
        if case .array(let array) = root {
            return items(array, prefix: "", defaultKind: nil, apiVersion: nil)
        }
        if let kind = root["kind"]?.stringValue, kind.hasSuffix("List"), case .array(let array)? = root["items"] {
            let member = String(kind.dropLast(4))
            return items(array, prefix: "items", defaultKind: member.isEmpty ? nil : member, apiVersion: root["apiVersion"])
        }
        return [Document(source: source, documentIndex: documentIndex, value: root, locations: locations)]
    }

    /// Keeps the locations under `prefix`, with the prefix removed.
    private static func rebase(_ locations: [String: SourceLocation], prefix: String) -> [String: SourceLocation] {
        var out: [String: SourceLocation] = [:]
        for (path, loc) in locations {
            if path == prefix {
                out[""] = loc
            } else if path.hasPrefix(prefix + ".") {
                out[String(path.dropFirst(prefix.count + 1))] = loc
            }
        }
        return out
    }
}

/// YAML → ``JSON`` with the location of every field.
struct YAMLReader {
    /// The text being read, by line, to quote what the operator wrote.
    private var sourceLines: [String] = []

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func read(_ text: String) throws(Failure) -> [(JSON, [String: SourceLocation])] {
        var reader = YAMLReader()
        return try reader.read(text)
    }

    private mutating func read(_ text: String) throws(Failure) -> [(JSON, [String: SourceLocation])] {
        sourceLines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var out: [(JSON, [String: SourceLocation])] = []
        do {
            // YamlSequence ends quietly on a parse error and keeps it in `error`.
            var documents = try Yams.compose_all(yaml: text)
            while let node = documents.next() {
                var locations: [String: SourceLocation] = [:]
                let value = try convert(node, path: "", locations: &locations)
                out.append((value, locations))
            }
            if let error = documents.error { throw error }
        } catch let error as Failure {
            throw error
        } catch let error as YamlError {
            throw Failure(description: describe(error))
        } catch {
            throw Failure(description: "invalid YAML: \(error)")
        }
        return out
    }

    private func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var s = "invalid YAML at line \(mark.line), column \(mark.column): \(problem)"
            if let context { s += " (\(context.text))" }
            if let hint = bangHint(line: mark.line) { s += "; " + hint }
            return s
        default:
            return "invalid YAML: \(error)"
        }
    }

    /// When a line holds `key: !…` unquoted, the likely cause of a YAML error: YAML took the
    /// selector's `!` for a tag and then choked on what followed.
    private func bangHint(line: Int) -> String? {
        guard line - 1 < sourceLines.count, line >= 1 else { return nil }
        let text = sourceLines[line - 1]
        guard let colon = text.range(of: ": !") ?? text.range(of: ":\t!") else { return nil }
        let key = text[..<colon.lowerBound].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "- "))
        var value = String(text[text.index(colon.upperBound, offsetBy: -1)...])
        while value.last == " " { value.removeLast() }
        let quoted = value.contains("'") ? "\"\(value)\"" : "'\(value)'"
        return "the value of \(key) starts with '!', which YAML reads as a type tag; quote the whole value: \(key): \(quoted)"
    }

    private func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }

    private func convert(_ node: Node, path: String, locations: inout [String: SourceLocation]) throws(Failure) -> JSON {
        let field = path.isEmpty ? "the document" : path
        switch node {
        case .scalar(let scalar):
            let mark = scalar.mark
            if let mark { locations[path] = SourceLocation(line: mark.line, column: mark.column, text: scalar.string) }
            // The tag as written: "" when none. `!` and `!foo` are the operator's negation
            // eaten by YAML; `!!str` and friends are deliberate.
            let written = scalar.tag.description
            if !written.isEmpty && !written.hasPrefix("tag:yaml.org,2002:") {
                let tag = written
                // `selector: !has(role)` — YAML reads a leading `!` as a type tag, leaving
                // the rest (often nothing) as the value. Say so instead of a confusing
                // "null" or type error later.
                var whole = scalar.string.isEmpty ? tag : tag + " " + scalar.string
                if let mark, mark.line - 1 < sourceLines.count {
                    // What the operator wrote, from the tag to the end of the line.
                    let line = Array(sourceLines[mark.line - 1].unicodeScalars)
                    if mark.column - 1 < line.count, line[mark.column - 1] == "!" {
                        whole = String(String.UnicodeScalarView(line[(mark.column - 1)...]))
                        while whole.last == " " { whole.removeLast() }
                    }
                }
                let quoted = whole.contains("'") ? "\"\(whole)\"" : "'\(whole)'"
                let at = mark.map { "line \($0.line): " } ?? ""
                let key = path.split(separator: ".").last.map(String.init) ?? "value"
                throw Failure(description: "\(at)\(field): YAML reads '\(tag)' as a type tag, not as text"
                    + (scalar.string.isEmpty ? "" : ", leaving '\(scalar.string)'")
                    + "; quote the whole value: \(key): \(quoted)")
            }
            let tag = node.tag.description
            if scalar.style != .plain { return .string(scalar.string) }
            switch Tag.Name(rawValue: tag) {
            case .null: return .null
            case .bool:
                return .bool(["yes", "true", "on"].contains(scalar.string.lowercased()))
            case .int:
                if let i = parseInt(scalar.string) { return .int(i) }
                return .string(scalar.string)
            case .float:
                if let d = Double(scalar.string.replacingOccurrences(of: "_", with: "")) { return .double(d) }
                return .string(scalar.string)
            default:
                return .string(scalar.string)
            }
        case .mapping(let mapping):
            if let mark = mapping.mark { locations[path] = SourceLocation(line: mark.line, column: mark.column) }
            try checkTag(node.tag, expected: .map, path: path, mark: mapping.mark)
            var object: [String: JSON] = [:]
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw Failure(description: "\(field): a mapping key must be text")
                }
                let key = keyScalar.string
                if object[key] != nil {
                    let at = keyScalar.mark.map { "line \($0.line): " } ?? ""
                    throw Failure(description: "\(at)\(join(path, key)): the field is given twice")
                }
                let child = join(path, key)
                object[key] = try convert(valueNode, path: child, locations: &locations)
                // Errors about a field point at its key's line (the value of a list or
                // mapping starts on the next line).
                if let km = keyScalar.mark {
                    locations[child] = SourceLocation(line: km.line, column: km.column, text: locations[child]?.text)
                }
            }
            return .object(object)
        case .sequence(let sequence):
            if let mark = sequence.mark { locations[path] = SourceLocation(line: mark.line, column: mark.column) }
            try checkTag(node.tag, expected: .seq, path: path, mark: sequence.mark)
            var array: [JSON] = []
            for (i, element) in sequence.enumerated() {
                array.append(try convert(element, path: path + "[\(i)]", locations: &locations))
            }
            return .array(array)
        case .alias:
            throw Failure(description: "\(field): YAML aliases (*name) are not supported in resources")
        }
    }

    private func checkTag(_ tag: Tag, expected: Tag.Name, path: String, mark: Mark?) throws(Failure) {
        let name = tag.description
        if !name.isEmpty && name != "!" && !name.hasPrefix("tag:yaml.org,2002:") {
            let at = mark.map { "line \($0.line): " } ?? ""
            throw Failure(description: "\(at)\(path.isEmpty ? "the document" : path): unexpected YAML tag '\(name)'")
        }
    }

    /// YAML 1.1 integers: decimal, 0x, 0o/0 octal, 0b, with `_` separators.
    private func parseInt(_ text: String) -> Int? {
        var s = Substring(text.replacingOccurrences(of: "_", with: ""))
        var sign = 1
        if s.first == "-" || s.first == "+" {
            if s.first == "-" { sign = -1 }
            s = s.dropFirst()
        }
        let value: Int?
        if s.hasPrefix("0x") { value = Int(s.dropFirst(2), radix: 16) }
        else if s.hasPrefix("0b") { value = Int(s.dropFirst(2), radix: 2) }
        else if s.hasPrefix("0o") { value = Int(s.dropFirst(2), radix: 8) }
        else if s.count > 1 && s.hasPrefix("0") { value = Int(s.dropFirst(), radix: 8) }
        else { value = Int(s) }
        return value.map { $0 * sign }
    }
}
