import Datastore
import JSON
import POSIX

/// get / list / create / update / delete of Calico resources over any `Datastore`, as
/// libcalico-go's clientv3 does over etcd: the key is `ResourceKind.key`, the value is the
/// resource's JSON without `resourceVersion`, and `resourceVersion` is the key's mod revision.
///
/// Every call is one or two datastore round trips; conflicts are reported, not retried
/// (the caller decides whether a re-read-and-retry is right).
public struct ResourceClient: Sendable {
    public let store: any Datastore

    public init(store: any Datastore) {
        self.store = store
    }

    // MARK: Reading

    /// The resource, or nil when absent. `metadata.resourceVersion` is the mod revision.
    public func get<R: CalicoResource>(_ type: R.Type, name: String, namespace: String? = nil) throws(CalicoAPIError) -> R? {
        let key = R.kind.key(name: name, namespace: namespace)
        guard let kv = try call({ () throws(DatastoreError) in try store.get(key) }) else { return nil }
        return try Self.decode(R.self, kv)
    }

    /// Every resource of the kind, sorted by key (namespace, then name). For namespaced
    /// kinds, nil `namespace` means all namespaces.
    public func list<R: CalicoResource>(_ type: R.Type, namespace: String? = nil) throws(CalicoAPIError) -> [R] {
        let prefix = R.kind.keyPrefix(namespace: namespace)
        let page = try call({ () throws(DatastoreError) in try store.list(prefix: prefix) })
        var out: [R] = []
        out.reserveCapacity(page.kvs.count)
        for kv in page.kvs {
            // A cluster-scoped prefix like `.../nodes/` must not pick up deeper keys.
            if !R.kind.isNamespaced, kv.key.dropFirst(prefix.count).contains("/") { continue }
            out.append(try Self.decode(R.self, kv))
        }
        return out
    }

    // MARK: Writing

    /// Creates the resource (fails with `.alreadyExists` when present), filling upstream's
    /// defaults, a new `uid` and `creationTimestamp`. Returns what was stored, with its
    /// `resourceVersion`.
    public func create<R: CalicoResource>(_ resource: R) throws(CalicoAPIError) -> R {
        var r = try Self.prepareForCreate(resource)
        let key = r.key
        let value = Self.storedText(r)
        let rev = try call({ () throws(DatastoreError) in try store.create(key, value) })
        guard let rev else { throw .alreadyExists(kind: R.kind.name, name: r.metadata.name, namespace: r.metadata.namespace) }
        r.metadata.resourceVersion = String(rev)
        return r
    }

    /// What `create` stores for `resource`: defaults, namespace, a new `uid` and
    /// `creationTimestamp`, its name validated. For a caller that writes the key and value
    /// inside a transaction of its own.
    public static func prepareForCreate<R: CalicoResource>(_ resource: R) throws(CalicoAPIError) -> R {
        var r = resource.withDefaults()
        if R.kind.isNamespaced, r.metadata.namespace == nil { r.metadata.namespace = "default" }
        if !R.kind.isNamespaced { r.metadata.namespace = nil }
        try validateName(r)
        guard r.metadata.resourceVersion == nil else {
            throw .invalidField(path: "metadata.resourceVersion", reason: "field must not be set for a Create request")
        }
        r.metadata.uid = newUID()
        r.metadata.creationTimestamp = rfc3339Now()
        return r
    }

    /// Replaces an existing resource. With `metadata.resourceVersion` set, only if the
    /// stored one is still at that revision (else `.conflict`); without, against whatever is
    /// stored now. `uid` and `creationTimestamp` are kept from the stored value when the
    /// given resource has none.
    public func update<R: CalicoResource>(_ resource: R) throws(CalicoAPIError) -> R {
        var r = resource.withDefaults()
        if R.kind.isNamespaced, r.metadata.namespace == nil { r.metadata.namespace = "default" }
        if !R.kind.isNamespaced { r.metadata.namespace = nil }
        try Self.validateName(r)
        let key = r.key
        guard let current = try call({ () throws(DatastoreError) in try store.get(key) }) else {
            throw .notFound(kind: R.kind.name, name: r.metadata.name, namespace: r.metadata.namespace)
        }
        let expected: Int64
        if let rv = r.metadata.resourceVersion {
            guard let n = Int64(rv) else {
                throw .invalidField(path: "metadata.resourceVersion", reason: "not a revision: \(rv)")
            }
            guard n == current.modRevision else {
                throw .conflict(kind: R.kind.name, name: r.metadata.name, namespace: r.metadata.namespace)
            }
            expected = n
        } else {
            expected = current.modRevision
        }
        if r.metadata.uid == nil || r.metadata.creationTimestamp == nil,
           let stored = try? Self.decode(R.self, current) {
            if r.metadata.uid == nil { r.metadata.uid = stored.metadata.uid }
            if r.metadata.creationTimestamp == nil { r.metadata.creationTimestamp = stored.metadata.creationTimestamp }
        }
        let value = Self.storedText(r)
        let rev = try call({ () throws(DatastoreError) in try store.update(key, value, modRevision: expected) })
        guard let rev else { throw .conflict(kind: R.kind.name, name: r.metadata.name, namespace: r.metadata.namespace) }
        r.metadata.resourceVersion = String(rev)
        return r
    }

    /// Creates the resource, or updates it when it exists (calicoctl `apply`). Retries a
    /// few times when it races another writer, unless a `resourceVersion` was given.
    public func apply<R: CalicoResource>(_ resource: R) throws(CalicoAPIError) -> R {
        var attempts = 0
        while true {
            attempts += 1
            do {
                if try get(R.self, name: resource.metadata.name, namespace: resource.metadata.namespace) == nil {
                    var fresh = resource
                    fresh.metadata.resourceVersion = nil
                    return try create(fresh)
                }
                return try update(resource)
            } catch .alreadyExists where attempts < 5 {
                continue
            } catch .notFound where attempts < 5 {
                continue
            } catch .conflict where attempts < 5 && resource.metadata.resourceVersion == nil {
                continue
            }
        }
    }

    /// Deletes the resource and returns it as it was. With `resourceVersion`, only if it is
    /// still at that revision (else `.conflict`).
    @discardableResult
    public func delete<R: CalicoResource>(_ type: R.Type, name: String, namespace: String? = nil,
                                          resourceVersion: String? = nil) throws(CalicoAPIError) -> R {
        let ns = R.kind.isNamespaced ? (namespace ?? "default") : nil
        let key = R.kind.key(name: name, namespace: ns)
        guard let current = try call({ () throws(DatastoreError) in try store.get(key) }) else {
            throw .notFound(kind: R.kind.name, name: name, namespace: ns)
        }
        if let resourceVersion, Int64(resourceVersion) != current.modRevision {
            throw .conflict(kind: R.kind.name, name: name, namespace: ns)
        }
        let ok = try call({ () throws(DatastoreError) in try store.delete(key, modRevision: current.modRevision) })
        guard ok else {
            if resourceVersion != nil { throw .conflict(kind: R.kind.name, name: name, namespace: ns) }
            // Changed between read and delete: report what is gone from our point of view.
            throw .conflict(kind: R.kind.name, name: name, namespace: ns)
        }
        return try Self.decode(R.self, current)
    }

    // MARK: By kind (calicoctl)

    /// `get` for a kind known only at run time.
    public func get(kind: ResourceKind, name: String, namespace: String? = nil) throws(CalicoAPIError) -> (any CalicoResource)? {
        try openGet(kind.resourceType, name: name, namespace: namespace)
    }

    /// `list` for a kind known only at run time.
    public func list(kind: ResourceKind, namespace: String? = nil) throws(CalicoAPIError) -> [any CalicoResource] {
        try openList(kind.resourceType, namespace: namespace)
    }

    /// `delete` for a kind known only at run time.
    @discardableResult
    public func delete(kind: ResourceKind, name: String, namespace: String? = nil,
                       resourceVersion: String? = nil) throws(CalicoAPIError) -> any CalicoResource {
        try openDelete(kind.resourceType, name: name, namespace: namespace, resourceVersion: resourceVersion)
    }

    private func openGet<R: CalicoResource>(_ t: R.Type, name: String, namespace: String?) throws(CalicoAPIError) -> (any CalicoResource)? {
        try get(t, name: name, namespace: namespace)
    }

    private func openList<R: CalicoResource>(_ t: R.Type, namespace: String?) throws(CalicoAPIError) -> [any CalicoResource] {
        try list(t, namespace: namespace)
    }

    private func openDelete<R: CalicoResource>(_ t: R.Type, name: String, namespace: String?,
                                               resourceVersion: String?) throws(CalicoAPIError) -> any CalicoResource {
        try delete(t, name: name, namespace: namespace, resourceVersion: resourceVersion)
    }

    // MARK: Helpers

    /// Decodes a stored value leniently (a newer Calico may have written more fields) and
    /// sets `resourceVersion` from the mod revision.
    public static func decode<R: CalicoResource>(_ type: R.Type, _ kv: KeyValue) throws(CalicoAPIError) -> R {
        var r = try R(jsonText: kv.value)
        r.metadata.resourceVersion = String(kv.modRevision)
        if R.kind.isNamespaced, r.metadata.namespace == nil {
            // The key is authoritative: `.../<plural>/<ns>/<name>`.
            let parts = kv.key.split(separator: "/")
            if parts.count >= 2 { r.metadata.namespace = String(parts[parts.count - 2]) }
        }
        return r
    }

    /// The text stored for `resource`: its JSON without `resourceVersion`.
    public static func storedText<R: CalicoResource>(_ resource: R) -> String {
        var r = resource
        r.metadata.resourceVersion = nil
        return r.json.compactText
    }

    /// A random (version 4) UUID, as Kubernetes generates for `uid`.
    public static func newUID() -> String {
        var g = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Array("0123456789abcdef")
        var s = ""
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { s.append("-") }
            s.append(hex[Int(b >> 4)])
            s.append(hex[Int(b & 0xF)])
        }
        return s
    }

    private static func validateName<R: CalicoResource>(_ r: R) throws(CalicoAPIError) {
        let name = r.metadata.name
        guard !name.isEmpty else { throw .missingField("metadata.name") }
        guard !name.contains("/") else { throw .invalidField(path: "metadata.name", reason: "must not contain '/'") }
        if let ns = r.metadata.namespace, ns.isEmpty || ns.contains("/") {
            throw .invalidField(path: "metadata.namespace", reason: "invalid namespace \"\(ns)\"")
        }
    }

    private func call<T>(_ body: () throws(DatastoreError) -> T) throws(CalicoAPIError) -> T {
        do { return try body() } catch { throw .datastore(error) }
    }
}
