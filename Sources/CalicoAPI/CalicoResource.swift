import JSON

/// A Calico v3 resource (`apiVersion: projectcalico.org/v3`) as a value type that reads and
/// writes Calico's own JSON, so values written by upstream Calico read back and ours read
/// in upstream tools.
public protocol CalicoResource: Sendable, Hashable {
    /// The kind's registry entry (name, plural, scope).
    static var kind: ResourceKind { get }
    var metadata: ObjectMeta { get set }
    /// Decodes Calico's JSON, recording fields it does not know in `context`.
    init(json: JSON, context: DecodingContext) throws(CalicoAPIError)
    /// Calico's JSON: `{"kind","apiVersion","metadata","spec"}`.
    var json: JSON { get }
    /// The resource with the defaults libcalico-go fills on create and update (an IPPool's
    /// block size and node selector, a policy's `types`).
    func withDefaults() -> Self
}

extension CalicoResource {
    public static var apiVersion: String { "projectcalico.org/v3" }

    /// Decodes leniently: fields this version does not model are ignored.
    public init(json: JSON) throws(CalicoAPIError) {
        try self.init(json: json, context: DecodingContext())
    }

    /// Decodes as calicoctl does: any unknown field is an error naming its path.
    public init(strictJSON json: JSON) throws(CalicoAPIError) {
        let context = DecodingContext()
        try self.init(json: json, context: context)
        if let first = context.unknownFields.first { throw .unknownField(first) }
    }

    /// Decodes leniently from JSON text.
    public init(jsonText: String) throws(CalicoAPIError) {
        let parsed: JSON
        do { parsed = try JSON(parsing: jsonText) } catch { throw .invalidJSON(error.description) }
        try self.init(json: parsed)
    }

    public func withDefaults() -> Self { self }

    /// The key this resource is stored under.
    public var key: String { Self.kind.key(name: metadata.name, namespace: metadata.namespace) }
}

/// The common `{"kind","apiVersion","metadata","spec"}` frame.
struct Envelope {
    var root: FieldReader
    var metadata: ObjectMeta
    var spec: FieldReader

    init(_ json: JSON, kind: ResourceKind, context: DecodingContext) throws(CalicoAPIError) {
        root = try FieldReader(json, path: "", context: context)
        if let k = try root.string("kind"), k != kind.name {
            throw .kindMismatch(expected: kind.name, found: k)
        }
        if let v = try root.string("apiVersion"), v != "projectcalico.org/v3" {
            throw .invalidField(path: "apiVersion", reason: "expected projectcalico.org/v3, found \(v)")
        }
        if var m = try root.object("metadata") {
            metadata = try ObjectMeta(reader: &m)
            m.finish()
        } else {
            metadata = ObjectMeta(name: "")
        }
        spec = try root.object("spec") ?? FieldReader.empty(path: "spec", context: context)
    }

    /// Reports unknown members of the root and the spec.
    func finish() {
        spec.finish()
        root.finish()
    }

    static func json(kind: ResourceKind, metadata: ObjectMeta, spec: JSON, extra: [String: JSON] = [:]) -> JSON {
        var o = extra
        o["kind"] = .string(kind.name)
        o["apiVersion"] = "projectcalico.org/v3"
        o["metadata"] = metadata.json
        o["spec"] = spec
        return .object(o)
    }
}
