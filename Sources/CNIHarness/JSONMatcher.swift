import Foundation
import IPAddress
import JSON

/// Compares an actual JSON value with an expected one that may hold matchers for values
/// that vary from run to run (addresses, MACs, generated names).
///
/// In the expected value, a string is a matcher when it is one of:
///
/// | matcher            | matches                                             |
/// |--------------------|-----------------------------------------------------|
/// | `*`                | any value (the member must exist)                   |
/// | `<absent>`         | (as an object member) the member must not exist     |
/// | `<string>`, `<int>`, `<bool>`, `<object>`, `<array>` | any value of that type |
/// | `<ip4>`, `<ip6>`, `<ip>`       | a bare address of that family           |
/// | `<cidr4>`, `<cidr6>`, `<cidr>` | an address with prefix length           |
/// | `<mac>`            | `aa:bb:cc:dd:ee:ff` (lowercase hex)                 |
/// | `<prefix:TEXT>`    | a string starting with TEXT                         |
/// | `<contains:TEXT>`  | a string containing TEXT                            |
/// | `<regex:PATTERN>`  | a string PATTERN matches (anchor it yourself)       |
///
/// Any other string must be equal. Objects match when they have the same keys (members
/// whose expected value is `<absent>` must be missing); a member `"...": "*"` allows
/// extra keys. Arrays match element by element and must have the same length. Numbers
/// compare by value.
public enum JSONMatcher {
    /// Every difference, as `path: expected X, got Y` lines; empty when `actual` matches.
    public static func differences(expected: JSON, actual: JSON?, path: String = "$") -> [String] {
        if case .string(let s) = expected, let result = matchString(s, actual) {
            return result ? [] : ["\(path): expected \(s), got \(describe(actual))"]
        }
        guard let actual else { return ["\(path): expected \(expected.compactText), got nothing"] }
        switch (expected, actual) {
        case (.object(let e), .object(let a)):
            var out: [String] = []
            let open = e["..."] != nil
            for key in e.keys.sorted() where key != "..." {
                let sub = path + "." + key
                if e[key] == .string("<absent>") {
                    if let v = a[key] { out.append("\(sub): expected no member, got \(v.compactText)") }
                    continue
                }
                out += differences(expected: e[key]!, actual: a[key], path: sub)
            }
            if !open {
                for key in a.keys.sorted() where e[key] == nil {
                    out.append("\(path).\(key): unexpected member \(a[key]!.compactText)")
                }
            }
            return out
        case (.array(let e), .array(let a)):
            var out: [String] = []
            if e.count != a.count { out.append("\(path): expected \(e.count) elements, got \(a.count): \(actual.compactText)") }
            for i in 0..<min(e.count, a.count) {
                out += differences(expected: e[i], actual: a[i], path: "\(path)[\(i)]")
            }
            return out
        default:
            if let x = expected.doubleValue, let y = actual.doubleValue {
                return x == y ? [] : ["\(path): expected \(expected.compactText), got \(actual.compactText)"]
            }
            return expected == actual ? [] : ["\(path): expected \(expected.compactText), got \(actual.compactText)"]
        }
    }

    /// nil when `pattern` is a plain string (compare for equality); else whether it matches.
    static func matchString(_ pattern: String, _ actual: JSON?) -> Bool? {
        guard pattern == "*" || (pattern.hasPrefix("<") && pattern.hasSuffix(">")) else { return nil }
        if pattern == "*" { return actual != nil }
        let body = String(pattern.dropFirst().dropLast())
        let text = actual?.stringValue
        switch body {
        case "absent": return actual == nil
        case "string": return text != nil
        case "int": return actual?.intValue != nil
        case "bool": return actual?.boolValue != nil
        case "object": return actual?.objectValue != nil
        case "array": return actual?.arrayValue != nil
        case "ip4": return text.flatMap { IPAddress($0) }.map { !$0.isIPv6 } ?? false
        case "ip6": return text.flatMap { IPAddress($0) }.map { $0.isIPv6 } ?? false
        case "ip": return text.flatMap { IPAddress($0) } != nil
        case "cidr4": return text.flatMap { IPNetwork($0) }.map { !$0.isIPv6 } ?? false
        case "cidr6": return text.flatMap { IPNetwork($0) }.map { $0.isIPv6 } ?? false
        case "cidr": return text.flatMap { IPNetwork($0) } != nil
        case "mac": return text.map(isMAC) ?? false
        default: break
        }
        if body.hasPrefix("prefix:") { return text?.hasPrefix(String(body.dropFirst(7))) ?? false }
        if body.hasPrefix("contains:") { return text?.contains(String(body.dropFirst(9))) ?? false }
        if body.hasPrefix("regex:") {
            guard let text, let re = try? NSRegularExpression(pattern: String(body.dropFirst(6))) else { return false }
            return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
        return nil  // "<something else>" is a literal string
    }

    static func isMAC(_ s: String) -> Bool {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && $0.allSatisfy { "0123456789abcdef".contains($0) } }
    }

    static func describe(_ v: JSON?) -> String { v?.compactText ?? "nothing" }
}
