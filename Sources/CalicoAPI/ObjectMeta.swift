import JSON

/// The `metadata` of every Calico v3 resource (Kubernetes `ObjectMeta`).
///
/// `resourceVersion` is not part of the stored value: the resource client fills it from the
/// key's etcd mod revision on read and strips it on write.
public struct ObjectMeta: Sendable, Hashable {
    public var name: String
    /// Set for namespaced kinds (NetworkPolicy, WorkloadEndpoint); nil otherwise.
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    /// RFC 3339, as `2020-06-01T10:00:00Z`.
    public var creationTimestamp: String?
    public var labels: [String: String]
    public var annotations: [String: String]
    /// Other Kubernetes ObjectMeta fields (`generation`, `ownerReferences`, …), kept as read
    /// so a value written by another tool survives a read-modify-write.
    public var otherFields: [String: JSON]

    public init(name: String, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
                creationTimestamp: String? = nil, labels: [String: String] = [:], annotations: [String: String] = [:],
                otherFields: [String: JSON] = [:]) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.creationTimestamp = creationTimestamp
        self.labels = labels
        self.annotations = annotations
        self.otherFields = otherFields
    }

    /// Kubernetes ObjectMeta members Calico accepts but this project does not interpret.
    static let passThroughFields: Set<String> = [
        "generateName", "selfLink", "generation", "deletionTimestamp", "deletionGracePeriodSeconds",
        "ownerReferences", "finalizers", "managedFields", "clusterName",
    ]

    init(reader r: inout FieldReader) throws(CalicoAPIError) {
        name = try r.string("name") ?? ""
        namespace = try r.string("namespace").flatMap { $0.isEmpty ? nil : $0 }
        uid = try r.string("uid").flatMap { $0.isEmpty ? nil : $0 }
        // Go writes resourceVersion as a string; accept a number too.
        if let rv = r.raw("resourceVersion") {
            if let s = rv.stringValue { resourceVersion = s.isEmpty ? nil : s }
            else if let i = rv.intValue { resourceVersion = String(i) }
            else { throw r.mismatch("resourceVersion", "string", rv) }
        } else {
            resourceVersion = nil
        }
        creationTimestamp = try r.string("creationTimestamp")
        labels = try r.stringMap("labels") ?? [:]
        annotations = try r.stringMap("annotations") ?? [:]
        var other: [String: JSON] = [:]
        for k in Self.passThroughFields { if let v = r.raw(k) { other[k] = v } }
        otherFields = other
    }

    /// Calico's JSON. `creationTimestamp` is written as `null` when unset, as Kubernetes'
    /// `metav1.Time` does.
    public var json: JSON {
        var w = ObjectWriter()
        w.fields = otherFields
        w.set("name", omitEmpty: name)
        w.set("namespace", omitEmpty: namespace)
        w.set("uid", omitEmpty: uid)
        w.set("resourceVersion", omitEmpty: resourceVersion)
        w.set("creationTimestamp", creationTimestamp.map { .string($0) } ?? .null)
        w.set("labels", omitEmpty: labels)
        w.set("annotations", omitEmpty: annotations)
        return w.json
    }
}
