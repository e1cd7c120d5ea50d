import JSON

/// A profile (`profiles/<name>`): rules and labels shared by the endpoints that name it.
/// The CNI plugin creates one per network name.
public struct Profile: CalicoResource {
    public static var kind: ResourceKind { .profile }

    public var metadata: ObjectMeta
    public var ingress: [Rule]
    public var egress: [Rule]
    /// Labels every endpoint using the profile inherits (its own labels win).
    public var labelsToApply: [String: String]

    public init(name: String, ingress: [Rule] = [], egress: [Rule] = [], labelsToApply: [String: String] = [:]) {
        metadata = ObjectMeta(name: name)
        self.ingress = ingress
        self.egress = egress
        self.labelsToApply = labelsToApply
    }

    /// The profile the CNI plugin creates for a network: egress Allow all, ingress Allow
    /// from `has(<network>)`, `labelsToApply: {<network>: ""}`.
    public static func networkDefault(name: String) -> Profile {
        Profile(name: name,
                ingress: [Rule(action: .allow, source: EntityRule(selector: "has(\(name))"))],
                egress: [Rule(action: .allow)],
                labelsToApply: [name: ""])
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .profile, context: context)
        metadata = env.metadata
        ingress = try Rule.rules(&env.spec, "ingress")
        egress = try Rule.rules(&env.spec, "egress")
        // Go writes an empty map as "labelsToApply": {} only when non-nil; accept both.
        labelsToApply = try env.spec.stringMap("labelsToApply") ?? [:]
        env.finish()
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("ingress", omitEmpty: ingress.map(\.json))
        w.set("egress", omitEmpty: egress.map(\.json))
        w.set("labelsToApply", omitEmpty: labelsToApply)
        return Envelope.json(kind: .profile, metadata: metadata, spec: w.json)
    }
}
