/// What the assign path needs to know about a stored block before paying for a full parse:
/// its `affinity` and whether `unallocated` holds any ordinal.
///
/// A host with a few hundred live endpoints has several full blocks; decoding each (every
/// allocation and attribute) only to find no free ordinal cost about a quarter of a
/// millisecond per block. This is one pass over the bytes that builds nothing. It answers
/// only when the text is unambiguous (no escapes in the fields it reads, no
/// `hostAffinity`, no repeated fields, nothing after the object); otherwise it returns nil
/// and the caller decodes the block as before.
struct BlockSummary: Equatable {
    /// The top-level `affinity` string; nil when it is `null` or absent.
    var affinity: String?
    /// Whether the top-level `unallocated` array has at least one element.
    var hasFreeOrdinal: Bool

    init(affinity: String?, hasFreeOrdinal: Bool) {
        self.affinity = affinity
        self.hasFreeOrdinal = hasFreeOrdinal
    }

    /// Scans `jsonText`; nil when it cannot decide exactly.
    init?(jsonText: String) {
        var text = jsonText
        guard let s = text.withUTF8({ BlockSummary.scan($0) }) else { return nil }
        self = s
    }

    private static func scan(_ b: UnsafeBufferPointer<UInt8>) -> BlockSummary? {
        var i = 0
        let n = b.count
        func skipSpace() {
            while i < n, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }
        /// At an opening quote: the string's raw bytes (nil when it holds an escape), moving past it.
        func plainString() -> (start: Int, end: Int)? {
            i += 1
            let start = i
            while i < n {
                switch b[i] {
                case 0x22: i += 1; return (start, i - 1)
                case 0x5C: return nil
                default: i += 1
                }
            }
            return nil
        }
        /// Moves past one value of any kind; false when the text is malformed.
        func skipValue() -> Bool {
            guard i < n else { return false }
            if b[i] != 0x7B && b[i] != 0x5B && b[i] != 0x22 {
                while i < n, b[i] != 0x2C, b[i] != 0x7D, b[i] != 0x5D, b[i] > 0x20 { i += 1 }
                return true
            }
            var depth = 0
            var inString = false
            while i < n {
                let c = b[i]
                i += 1
                if inString {
                    if c == 0x5C { i += 1 } else if c == 0x22 { inString = false; if depth == 0 { return true } }
                    continue
                }
                switch c {
                case 0x22: inString = true
                case 0x7B, 0x5B: depth += 1
                case 0x7D, 0x5D:
                    depth -= 1
                    if depth == 0 { return true }
                    if depth < 0 { return false }
                default: break
                }
            }
            return false
        }
        func equals(_ r: (start: Int, end: Int), _ word: StaticString) -> Bool {
            guard r.end - r.start == word.utf8CodeUnitCount else { return false }
            let w = word.utf8Start
            for k in 0..<word.utf8CodeUnitCount where b[r.start + k] != w[k] { return false }
            return true
        }

        skipSpace()
        guard i < n, b[i] == 0x7B else { return nil }
        i += 1
        var affinity: String?? = .none
        var hasFree: Bool?
        var first = true
        while true {
            skipSpace()
            guard i < n else { return nil }
            if b[i] == 0x7D { i += 1; break }
            if !first {
                guard b[i] == 0x2C else { return nil }
                i += 1
                skipSpace()
            }
            first = false
            guard i < n, b[i] == 0x22, let key = plainString() else { return nil }
            skipSpace()
            guard i < n, b[i] == 0x3A else { return nil }
            i += 1
            skipSpace()
            guard i < n else { return nil }
            if equals(key, "affinity") {
                guard affinity == nil else { return nil }
                if b[i] == 0x22 {
                    guard let v = plainString() else { return nil }
                    affinity = .some(String(decoding: UnsafeBufferPointer(rebasing: b[v.start..<v.end]), as: UTF8.self))
                } else if n - i >= 4, b[i] == 0x6E, b[i + 1] == 0x75, b[i + 2] == 0x6C, b[i + 3] == 0x6C {
                    i += 4
                    affinity = .some(nil)
                } else {
                    return nil
                }
            } else if equals(key, "unallocated") {
                guard hasFree == nil, b[i] == 0x5B else { return nil }
                let open = i
                i += 1
                skipSpace()
                guard i < n else { return nil }
                if b[i] == 0x5D {
                    i += 1
                    hasFree = false
                } else {
                    i = open
                    guard skipValue() else { return nil }
                    hasFree = true
                }
            } else if equals(key, "hostAffinity") {
                return nil
            } else {
                guard skipValue() else { return nil }
            }
        }
        skipSpace()
        guard i == n, let a = affinity, let free = hasFree else { return nil }
        return BlockSummary(affinity: a, hasFreeOrdinal: free)
    }
}
