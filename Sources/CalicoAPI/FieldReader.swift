import JSON

/// Collects the paths of fields a decoder met but does not know (`spec.foo`,
/// `spec.ingress[0].source.bar`).
///
/// Decoding is lenient by default, because a newer Calico may have written fields this
/// version does not model; calicoctl decodes user input strictly and refuses them
/// (see `CalicoResource.init(strictJSON:)`).
public final class DecodingContext {
    /// Unknown field paths, in the order met.
    public private(set) var unknownFields: [String] = []

    public init() {}

    func noteUnknown(_ path: String) { unknownFields.append(path) }
}

/// Reads the members of one JSON object, remembering which were asked for so the rest can
/// be reported as unknown by `finish()`.
struct FieldReader {
    let fields: [String: JSON]
    /// The object's own path ("" for the root, "spec", "spec.ingress[0]").
    let path: String
    let context: DecodingContext
    private var used: Set<String> = []

    init(_ json: JSON, path: String, context: DecodingContext) throws(CalicoAPIError) {
        guard case .object(let o) = json else {
            throw .invalidField(path: path.isEmpty ? "(root)" : path, reason: "expected an object, found \(json.typeName)")
        }
        fields = o
        self.path = path
        self.context = context
    }

    /// An empty object at `path`, for absent optional sections.
    static func empty(path: String, context: DecodingContext) -> FieldReader {
        // An object never fails to read as an object.
        try! FieldReader(.object([:]), path: path, context: context)
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// The member's value; `null` reads as absent (Go's encoder writes `null` for nil).
    mutating func raw(_ key: String) -> JSON? {
        used.insert(key)
        guard let v = fields[key], !v.isNull else { return nil }
        return v
    }

    mutating func string(_ key: String) throws(CalicoAPIError) -> String? {
        guard let v = raw(key) else { return nil }
        guard let s = v.stringValue else { throw mismatch(key, "string", v) }
        return s
    }

    mutating func requiredString(_ key: String) throws(CalicoAPIError) -> String {
        guard let s = try string(key) else { throw .missingField(fieldPath(key)) }
        return s
    }

    mutating func bool(_ key: String) throws(CalicoAPIError) -> Bool? {
        guard let v = raw(key) else { return nil }
        guard let b = v.boolValue else { throw mismatch(key, "boolean", v) }
        return b
    }

    mutating func int(_ key: String) throws(CalicoAPIError) -> Int? {
        guard let v = raw(key) else { return nil }
        guard let i = v.intValue else { throw mismatch(key, "integer", v) }
        return i
    }

    mutating func double(_ key: String) throws(CalicoAPIError) -> Double? {
        guard let v = raw(key) else { return nil }
        guard let d = v.doubleValue else { throw mismatch(key, "number", v) }
        return d
    }

    mutating func strings(_ key: String) throws(CalicoAPIError) -> [String]? {
        guard let v = raw(key) else { return nil }
        guard let a = v.arrayValue else { throw mismatch(key, "array", v) }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for (i, e) in a.enumerated() {
            guard let s = e.stringValue else {
                throw .invalidField(path: fieldPath(key) + "[\(i)]", reason: "expected a string, found \(e.typeName)")
            }
            out.append(s)
        }
        return out
    }

    mutating func stringMap(_ key: String) throws(CalicoAPIError) -> [String: String]? {
        guard let v = raw(key) else { return nil }
        guard let o = v.objectValue else { throw mismatch(key, "object", v) }
        var out: [String: String] = [:]
        for (k, e) in o {
            guard let s = e.stringValue else {
                throw .invalidField(path: fieldPath(key) + "." + k, reason: "expected a string, found \(e.typeName)")
            }
            out[k] = s
        }
        return out
    }

    /// A nested object's reader; the caller must `finish()` it.
    mutating func object(_ key: String) throws(CalicoAPIError) -> FieldReader? {
        guard let v = raw(key) else { return nil }
        return try FieldReader(v, path: fieldPath(key), context: context)
    }

    /// The elements of an array member with their paths (`spec.ingress[0]`).
    mutating func array(_ key: String) throws(CalicoAPIError) -> [(JSON, String)]? {
        guard let v = raw(key) else { return nil }
        guard let a = v.arrayValue else { throw mismatch(key, "array", v) }
        let base = fieldPath(key)
        return a.enumerated().map { ($0.element, base + "[\($0.offset)]") }
    }

    /// Decodes each element of an array member of objects with `body`.
    mutating func objects<T>(_ key: String, _ body: (inout FieldReader) throws(CalicoAPIError) -> T) throws(CalicoAPIError) -> [T]? {
        guard let elements = try array(key) else { return nil }
        var out: [T] = []
        out.reserveCapacity(elements.count)
        for (e, p) in elements {
            var r = try FieldReader(e, path: p, context: context)
            out.append(try body(&r))
            r.finish()
        }
        return out
    }

    /// Reports every member not asked for as unknown.
    func finish() {
        for k in fields.keys.sorted() where !used.contains(k) { context.noteUnknown(fieldPath(k)) }
    }

    func mismatch(_ key: String, _ expected: String, _ found: JSON) -> CalicoAPIError {
        .invalidField(path: fieldPath(key), reason: "expected \(article(expected)) \(expected), found \(found.typeName)")
    }

    private func article(_ word: String) -> String { word.first.map { "aeiou".contains($0) } == true ? "an" : "a" }
}

/// Builds JSON objects the way Go's encoder does with `omitempty`.
struct ObjectWriter {
    var fields: [String: JSON] = [:]

    mutating func set(_ key: String, _ value: JSON) { fields[key] = value }

    /// Omits nil and "".
    mutating func set(_ key: String, omitEmpty value: String?) {
        if let value, !value.isEmpty { fields[key] = .string(value) }
    }

    /// Omits false.
    mutating func set(_ key: String, omitFalse value: Bool) {
        if value { fields[key] = .bool(true) }
    }

    /// Omits nil and empty lists.
    mutating func set(_ key: String, omitEmpty value: [String]?) {
        if let value, !value.isEmpty { fields[key] = .array(value.map { .string($0) }) }
    }

    /// Omits nil and empty maps.
    mutating func set(_ key: String, omitEmpty value: [String: String]?) {
        if let value, !value.isEmpty { fields[key] = .object(value.mapValues { .string($0) }) }
    }

    /// Omits nil.
    mutating func set(_ key: String, omitNil value: JSON?) {
        if let value { fields[key] = value }
    }

    /// Omits nil and empty lists.
    mutating func set(_ key: String, omitEmpty value: [JSON]?) {
        if let value, !value.isEmpty { fields[key] = .array(value) }
    }

    var json: JSON { .object(fields) }
}
