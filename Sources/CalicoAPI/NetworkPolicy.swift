import JSON

/// A namespaced policy (`networkpolicies/<ns>/<name>`); its selector only picks endpoints
/// of its namespace.
public struct NetworkPolicy: CalicoResource {
    public static var kind: ResourceKind { .networkPolicy }

    public var metadata: ObjectMeta
    /// Lower orders run first; nil runs after every ordered policy.
    public var order: Double?
    public var selector: String?
    /// Empty means "default on create" (see `withDefaults`).
    public var types: [PolicyType]
    public var ingress: [Rule]
    public var egress: [Rule]
    public var serviceAccountSelector: String?

    public init(name: String, namespace: String = "default", order: Double? = nil, selector: String? = nil,
                types: [PolicyType] = [], ingress: [Rule] = [], egress: [Rule] = []) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.order = order
        self.selector = selector
        self.types = types
        self.ingress = ingress
        self.egress = egress
        serviceAccountSelector = nil
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .networkPolicy, context: context)
        metadata = env.metadata
        if metadata.namespace == nil { metadata.namespace = "default" }
        order = try env.spec.double("order")
        selector = try env.spec.string("selector")
        types = try PolicyType.list(&env.spec, "types")
        ingress = try Rule.rules(&env.spec, "ingress")
        egress = try Rule.rules(&env.spec, "egress")
        serviceAccountSelector = try env.spec.string("serviceAccountSelector")
        env.finish()
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("order", omitNil: order.map { .double($0) })
        w.set("selector", omitEmpty: selector)
        w.set("types", omitEmpty: types.map(\.rawValue))
        w.set("ingress", omitEmpty: ingress.map(\.json))
        w.set("egress", omitEmpty: egress.map(\.json))
        w.set("serviceAccountSelector", omitEmpty: serviceAccountSelector)
        return Envelope.json(kind: .networkPolicy, metadata: metadata, spec: w.json)
    }

    /// Fills `types` as libcalico-go does when it is empty.
    public func withDefaults() -> NetworkPolicy {
        var p = self
        if p.types.isEmpty { p.types = PolicyType.defaults(ingress: ingress, egress: egress) }
        return p
    }
}

/// A cluster-wide policy (`globalnetworkpolicies/<name>`).
public struct GlobalNetworkPolicy: CalicoResource {
    public static var kind: ResourceKind { .globalNetworkPolicy }

    public var metadata: ObjectMeta
    public var order: Double?
    public var selector: String?
    public var types: [PolicyType]
    public var ingress: [Rule]
    public var egress: [Rule]
    public var doNotTrack: Bool
    public var preDNAT: Bool
    public var applyOnForward: Bool
    public var namespaceSelector: String?
    public var serviceAccountSelector: String?

    public init(name: String, order: Double? = nil, selector: String? = nil, types: [PolicyType] = [],
                ingress: [Rule] = [], egress: [Rule] = []) {
        metadata = ObjectMeta(name: name)
        self.order = order
        self.selector = selector
        self.types = types
        self.ingress = ingress
        self.egress = egress
        doNotTrack = false
        preDNAT = false
        applyOnForward = false
        namespaceSelector = nil
        serviceAccountSelector = nil
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .globalNetworkPolicy, context: context)
        metadata = env.metadata
        order = try env.spec.double("order")
        selector = try env.spec.string("selector")
        types = try PolicyType.list(&env.spec, "types")
        ingress = try Rule.rules(&env.spec, "ingress")
        egress = try Rule.rules(&env.spec, "egress")
        doNotTrack = try env.spec.bool("doNotTrack") ?? false
        preDNAT = try env.spec.bool("preDNAT") ?? false
        applyOnForward = try env.spec.bool("applyOnForward") ?? false
        namespaceSelector = try env.spec.string("namespaceSelector")
        serviceAccountSelector = try env.spec.string("serviceAccountSelector")
        env.finish()
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("order", omitNil: order.map { .double($0) })
        w.set("selector", omitEmpty: selector)
        w.set("types", omitEmpty: types.map(\.rawValue))
        w.set("ingress", omitEmpty: ingress.map(\.json))
        w.set("egress", omitEmpty: egress.map(\.json))
        w.set("doNotTrack", omitFalse: doNotTrack)
        w.set("preDNAT", omitFalse: preDNAT)
        w.set("applyOnForward", omitFalse: applyOnForward)
        w.set("namespaceSelector", omitEmpty: namespaceSelector)
        w.set("serviceAccountSelector", omitEmpty: serviceAccountSelector)
        return Envelope.json(kind: .globalNetworkPolicy, metadata: metadata, spec: w.json)
    }

    /// Fills `types` as libcalico-go does when it is empty.
    public func withDefaults() -> GlobalNetworkPolicy {
        var p = self
        if p.types.isEmpty { p.types = PolicyType.defaults(ingress: ingress, egress: egress) }
        return p
    }
}
