import JSON
import Yams

/// Writes ``JSON`` as block YAML in the style upstream calicoctl prints (go-yaml via
/// JSON): keys sorted, two-space indent, sequence dashes at the parent key's indent,
/// strings quoted only when YAML would misread them.
public enum YAMLWriter {
    /// The YAML text of `value`, ending in a newline.
    public static func text(_ value: JSON) -> String {
        var out = ""
        switch value {
        case .object(let o) where !o.isEmpty: writeObject(o, indent: 0, into: &out)
        case .array(let a) where !a.isEmpty: writeArray(a, indent: 0, into: &out)
        default: out = scalar(value) + "\n"
        }
        return out
    }

    private static func pad(_ n: Int) -> String { String(repeating: " ", count: n) }

    private static func writeObject(_ o: [String: JSON], indent: Int, into out: inout String, firstLinePrefix: String? = nil) {
        var first = true
        for key in o.keys.sorted() {
            let v = o[key]!
            let lead = (first ? firstLinePrefix : nil) ?? pad(indent)
            first = false
            out += lead + quoteIfNeeded(key) + ":"
            switch v {
            case .object(let inner) where !inner.isEmpty:
                out += "\n"
                writeObject(inner, indent: indent + 2, into: &out)
            case .array(let inner) where !inner.isEmpty:
                out += "\n"
                writeArray(inner, indent: indent, into: &out)
            default:
                out += " " + scalar(v) + "\n"
            }
        }
    }

    private static func writeArray(_ a: [JSON], indent: Int, into out: inout String) {
        for v in a {
            switch v {
            case .object(let inner) where !inner.isEmpty:
                writeObject(inner, indent: indent + 2, into: &out, firstLinePrefix: pad(indent) + "- ")
            case .array(let inner) where !inner.isEmpty:
                out += pad(indent) + "-\n"
                writeArray(inner, indent: indent + 2, into: &out)
            default:
                out += pad(indent) + "- " + scalar(v) + "\n"
            }
        }
    }

    private static func scalar(_ v: JSON) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int, .double: return v.compactText
        case .string(let s): return quoteIfNeeded(s)
        case .object: return "{}"
        case .array: return "[]"
        }
    }

    /// `s` as a YAML scalar: plain when it reads back as the same string, double-quoted
    /// when it would read as another type (`"1234"`, `"true"`) or holds control
    /// characters, single-quoted when it starts or contains YAML syntax (`'!has(a)'`).
    static func quoteIfNeeded(_ s: String) -> String {
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) || resolvesToNonString(s) {
            return JSON.string(s).compactText
        }
        if needsQuotes(s) {
            return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
        }
        return s
    }

    private static func needsQuotes(_ s: String) -> Bool {
        guard let first = s.first, let last = s.last else { return true }
        if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
            // `-x`, `?x`, `:x` are plain when not followed by a space; keep it simple
            // and quote them anyway except a leading `-` that is not followed by space.
            if first == "-", s.count > 1, s.dropFirst().first != " " { } else { return true }
        }
        if first == " " || last == " " || last == ":" { return true }
        if s.contains(": ") || s.contains(" #") { return true }
        return false
    }

    /// Whether YAML 1.1 (what upstream's go-yaml and our reader use) would read the plain
    /// text as a boolean, number, null or timestamp. go-yaml also takes `y`/`n` for booleans.
    static func resolvesToNonString(_ s: String) -> Bool {
        let specials: Set<String> = ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
                                     "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null",
                                     "Null", "NULL", ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN", "<<", "="]
        if specials.contains(s) { return true }
        return Resolver.default.resolveTag(of: Node(s)) != .str
    }
}
