import JSON

/// Cluster-wide facts (`clusterinformations/default`). Felix waits for
/// `datastoreReady: true` before programming anything.
public struct ClusterInformation: CalicoResource {
    public static var kind: ResourceKind { .clusterInformation }

    /// The only instance's name.
    public static let defaultName = "default"

    public var metadata: ObjectMeta
    public var clusterGUID: String?
    public var clusterType: String?
    public var calicoVersion: String?
    public var datastoreReady: Bool?
    public var variant: String?

    public init(name: String = ClusterInformation.defaultName, clusterGUID: String? = nil, clusterType: String? = nil,
                calicoVersion: String? = nil, datastoreReady: Bool? = nil, variant: String? = nil) {
        metadata = ObjectMeta(name: name)
        self.clusterGUID = clusterGUID
        self.clusterType = clusterType
        self.calicoVersion = calicoVersion
        self.datastoreReady = datastoreReady
        self.variant = variant
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .clusterInformation, context: context)
        metadata = env.metadata
        clusterGUID = try env.spec.string("clusterGUID")
        clusterType = try env.spec.string("clusterType")
        calicoVersion = try env.spec.string("calicoVersion")
        datastoreReady = try env.spec.bool("datastoreReady")
        variant = try env.spec.string("variant")
        env.finish()
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("clusterGUID", omitEmpty: clusterGUID)
        w.set("clusterType", omitEmpty: clusterType)
        w.set("calicoVersion", omitEmpty: calicoVersion)
        w.set("datastoreReady", omitNil: datastoreReady.map { .bool($0) })
        w.set("variant", omitEmpty: variant)
        return Envelope.json(kind: .clusterInformation, metadata: metadata, spec: w.json)
    }
}
