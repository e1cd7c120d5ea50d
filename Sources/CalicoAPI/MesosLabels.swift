/// Turning Mesos NetworkInfo labels into Calico endpoint labels.
///
/// Mesos allows any text; Calico labels follow Kubernetes rules (keys and values of at most
/// 63 characters from `[-_.a-zA-Z0-9]`, starting and ending alphanumerically). The Calico
/// CNI plugin sanitises both keys and values:
/// 1. `/` becomes `.`;
/// 2. every run of characters outside `[-_.a-zA-Z0-9]` becomes one `-`;
/// 3. every run of `.` and `-` that contains a `.` becomes one `.`;
/// 4. leading and trailing `.` and `-` are trimmed.
///
/// Two additions so that any Marathon label is accepted (upstream leaves these to fail
/// validation; DC/OS wrapped the plugin to shorten values):
/// - leading and trailing `_` are trimmed too (Kubernetes requires alphanumeric ends);
/// - a result longer than 63 characters becomes the first 7 hex digits of the SHA-256 of the
///   sanitised text, then `...`, then its last 53 characters (63 in all). SHA-256 is stable
///   across releases and hosts, so the same label always maps to the same value.
public enum MesosLabels {
    /// Kubernetes' limit on a label name or value.
    public static let maxLength = 63

    /// Sanitises one key or value (see the type's documentation).
    public static func sanitize(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        // Steps 1 and 2.
        var inIllegalRun = false
        for b in text.utf8 {
            let c = b == UInt8(ascii: "/") ? UInt8(ascii: ".") : b
            if isLegal(c) {
                out.append(c)
                inIllegalRun = false
            } else if !inIllegalRun {
                out.append(UInt8(ascii: "-"))
                inIllegalRun = true
            }
        }
        // Step 3: collapse runs of '.'/'-' holding a '.'.
        var collapsed: [UInt8] = []
        collapsed.reserveCapacity(out.count)
        var i = 0
        while i < out.count {
            let c = out[i]
            guard c == UInt8(ascii: ".") || c == UInt8(ascii: "-") else { collapsed.append(c); i += 1; continue }
            var j = i
            var hasDot = false
            while j < out.count, out[j] == UInt8(ascii: ".") || out[j] == UInt8(ascii: "-") {
                if out[j] == UInt8(ascii: ".") { hasDot = true }
                j += 1
            }
            if hasDot { collapsed.append(UInt8(ascii: ".")) } else { collapsed.append(contentsOf: out[i..<j]) }
            i = j
        }
        // Step 4, plus '_'.
        var s = collapsed[...]
        while let f = s.first, isEdge(f) { s.removeFirst() }
        while let l = s.last, isEdge(l) { s.removeLast() }
        return shorten(String(decoding: s, as: UTF8.self))
    }

    /// Sanitises a label map; labels whose key sanitises to nothing are dropped. When two keys
    /// sanitise to the same text, the one sorting last wins (deterministic).
    public static func sanitize(_ labels: [String: String]) -> [String: String] {
        var out: [String: String] = [:]
        for k in labels.keys.sorted() {
            let key = sanitize(k)
            if key.isEmpty { continue }
            out[key] = sanitize(labels[k]!)
        }
        return out
    }

    /// `sha256[:7]...last53` for text over 63 characters; shorter text is returned unchanged.
    public static func shorten(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > maxLength else { return text }
        let prefix = String(SHA256.hexDigest(text).prefix(7))
        return prefix + "..." + String(decoding: bytes.suffix(maxLength - 10), as: UTF8.self)
    }

    private static func isLegal(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    private static func isEdge(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
    }
}
