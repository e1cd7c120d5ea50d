import IPAddress
import JSON
import Selector

/// One thing wrong with a resource: the field and the problem.
public struct ValidationProblem: Sendable, Hashable, CustomStringConvertible {
    /// `spec.ingress[0].source.selector`; empty for the whole document.
    public var path: String
    public var message: String
    /// Extra lines shown under the message (a selector with a caret under the error).
    public var detail: String?

    public init(path: String, message: String, detail: String? = nil) {
        self.path = path
        self.message = message
        self.detail = detail
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// The field checks calicoctl runs before storing anything: names, selectors, CIDRs,
/// block sizes, rules (actions, protocols, ports, ICMP). Works on the JSON as written so it
/// reports every problem at once, with the path the operator wrote. Unknown fields and
/// type mismatches are left to the CalicoAPI decoder.
struct FieldChecker {
    private(set) var problems: [ValidationProblem] = []

    mutating func report(_ path: String, _ message: String, detail: String? = nil) {
        problems.append(ValidationProblem(path: path, message: message, detail: detail))
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    // MARK: Typed access that reports mismatches

    mutating func string(_ o: JSON, _ key: String, at path: String) -> String? {
        guard let v = o[key], !v.isNull else { return nil }
        guard let s = v.stringValue else {
            report(Self.join(path, key), "expected a string, found \(describe(v))")
            return nil
        }
        return s
    }

    mutating func array(_ o: JSON, _ key: String, at path: String) -> [JSON]? {
        guard let v = o[key], !v.isNull else { return nil }
        guard let a = v.arrayValue else {
            report(Self.join(path, key), "expected a list, found \(describe(v))")
            return nil
        }
        return a
    }

    mutating func object(_ o: JSON, _ key: String, at path: String) -> JSON? {
        guard let v = o[key], !v.isNull else { return nil }
        guard case .object = v else {
            report(Self.join(path, key), "expected an object (a mapping of fields), found \(describe(v))")
            return nil
        }
        return v
    }

    func describe(_ v: JSON) -> String {
        switch v {
        case .string(let s): return "the string \"\(s)\""
        case .int, .double: return "the number \(v.compactText)"
        case .bool(let b): return "\(b)"
        case .null: return "nothing"
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    // MARK: Names and labels

    /// DNS-1123 subdomain: what Calico requires of most resource names.
    static func isDNS1123Subdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0), maxLength: 253) }
    }

    /// DNS-1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric.
    static func isDNS1123Label(_ s: String, maxLength: Int = 63) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= maxLength else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
        return alnum(u.first!) && alnum(u.last!) && u.allSatisfy { alnum($0) || $0 == 45 }
    }

    mutating func checkName(_ name: String, kind: String, at path: String) {
        if kind == "Profile" {
            // The CNI plugin names a profile after its network, and network names allow
            // `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`; refusing those here would make the plugin's
            // own profiles impossible to edit.
            let ok = name.utf8.count <= 253 && name.first.map { $0.isLetter || $0.isNumber } == true
                && name.unicodeScalars.allSatisfy { $0.isASCII && (ASCII.alnum($0) || "_.-".unicodeScalars.contains($0)) }
            if !ok {
                report(path, "'\(name)' is not a valid profile name: use letters, digits, '_', '.' and '-', starting with a letter or digit")
            }
            return
        }
        if !Self.isDNS1123Subdomain(name) {
            var hint = ""
            let lowered = name.lowercased().replacingUnderscores()
            if lowered != name, Self.isDNS1123Subdomain(lowered) { hint = " (did you mean '\(lowered)'?)" }
            report(path, "'\(name)' is not a valid name: names are lower-case letters, digits, '-' and '.', start and end with a letter or digit, at most 253 characters\(hint)")
        }
    }

    /// Kubernetes label key: optional DNS-subdomain prefix and '/', then a name of at most 63
    /// characters of alphanumerics, '-', '_', '.', starting and ending alphanumeric.
    static func isLabelKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return false }
        if parts.count == 2 && !isDNS1123Subdomain(String(parts[0])) { return false }
        return isLabelValue(String(parts.last!)) && !parts.last!.isEmpty
    }

    /// Kubernetes label value: empty, or at most 63 alphanumerics, '-', '_', '.', starting
    /// and ending alphanumeric.
    static func isLabelValue(_ v: String) -> Bool {
        if v.isEmpty { return true }
        let u = Array(v.unicodeScalars)
        guard u.count <= 63 else { return false }
        return ASCII.alnum(u.first!) && ASCII.alnum(u.last!)
            && u.allSatisfy { ASCII.alnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    mutating func checkLabels(_ labels: JSON, at path: String) {
        guard let o = labels.objectValue else {
            report(path, "expected a mapping of label names to values, found \(describe(labels))")
            return
        }
        for (k, v) in o.sorted(by: { $0.key < $1.key }) {
            let p = path + "." + k
            if !Self.isLabelKey(k) {
                report(p, "'\(k)' is not a valid label name: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
            }
            guard let s = v.stringValue else {
                report(p, "label values must be strings, found \(describe(v)) (quote it: '\(v.compactText)')")
                continue
            }
            if !Self.isLabelValue(s) {
                report(p, "'\(s)' is not a valid label value: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
            }
        }
    }

    // MARK: Selectors and networks

    mutating func checkSelector(_ o: JSON, _ key: String, at path: String) {
        guard let text = string(o, key, at: path) else { return }
        do {
            _ = try Selector(parsing: text)
        } catch {
            report(Self.join(path, key), "invalid selector: \(error.description)", detail: error.pointer)
        }
    }

    /// A CIDR that must be a network address (`10.0.0.0/16`, not `10.0.0.1/16`).
    mutating func checkCIDR(_ text: String, at path: String, allowBareAddress: Bool = false) -> IPNetwork? {
        guard let net = IPNetwork(text, allowBareAddress: allowBareAddress) else {
            report(path, "'\(text)' is not a valid CIDR (expected an address and prefix length, like 172.29.0.0/16)")
            return nil
        }
        if !net.isMasked {
            report(path, "'\(text)' is not a network address: the bits after the /\(net.prefixLength) prefix must be zero (did you mean \(net.masked)?)")
        }
        return net
    }

    mutating func checkIP(_ text: String, at path: String) -> IPAddress? {
        guard let ip = IPAddress(text) else {
            report(path, "'\(text)' is not a valid IP address")
            return nil
        }
        return ip
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}

/// ASCII character classes for names and labels.
enum ASCII {
    static func alnum(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
    }
}
