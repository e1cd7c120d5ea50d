import Datastore

/// Why a resource could not be decoded, validated or stored.
///
/// The texts follow libcalico-go's errors (`resource does not exist: Profile(calico)`) so
/// operators see what upstream tools would print.
public enum CalicoAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text is not JSON.
    case invalidJSON(String)
    /// A field holds a value of the wrong type or an invalid value. `path` is like
    /// `spec.ingress[0].protocol`.
    case invalidField(path: String, reason: String)
    /// A required field is absent.
    case missingField(String)
    /// A field Calico does not define (calicoctl refuses these). `path` is like `spec.foo`.
    case unknownField(String)
    /// A kind name that is not a Calico resource kind.
    case unknownKind(String)
    /// The value's `kind` is not the one being decoded.
    case kindMismatch(expected: String, found: String)
    /// Get, update or delete of a resource that is not there.
    case notFound(kind: String, name: String, namespace: String?)
    /// Create of a resource that is already there.
    case alreadyExists(kind: String, name: String, namespace: String?)
    /// The resource changed since `resourceVersion` was read (compare-and-swap lost).
    case conflict(kind: String, name: String, namespace: String?)
    /// The datastore failed.
    case datastore(DatastoreError)

    public var description: String {
        switch self {
        case .invalidJSON(let m): return "invalid JSON: \(m)"
        case .invalidField(let p, let r): return "invalid value for field \(p): \(r)"
        case .missingField(let p): return "missing required field \(p)"
        case .unknownField(let p): return "unknown field \"\(p)\""
        case .unknownKind(let k): return "resource type '\(k)' is not supported"
        case .kindMismatch(let e, let f): return "expected kind \(e), found \(f)"
        case .notFound(let k, let n, let ns): return "resource does not exist: \(Self.ident(k, n, ns))"
        case .alreadyExists(let k, let n, let ns): return "resource already exists: \(Self.ident(k, n, ns))"
        case .conflict(let k, let n, let ns): return "update conflict: \(Self.ident(k, n, ns))"
        case .datastore(let e): return e.description
        }
    }

    private static func ident(_ kind: String, _ name: String, _ namespace: String?) -> String {
        if let namespace { return "\(kind)(\(namespace)/\(name))" }
        return "\(kind)(\(name))"
    }
}
