import JSON

/// Felix settings (`felixconfigurations/default`, `node.<name>`). Minimal: the spec is
/// kept as raw JSON with typed accessors for the settings this project reads; its many
/// fields are not checked for unknown names.
public struct FelixConfiguration: CalicoResource {
    public static var kind: ResourceKind { .felixConfiguration }

    public var metadata: ObjectMeta
    /// Every spec member, verbatim.
    public var spec: [String: JSON]

    public init(name: String = "default", spec: [String: JSON] = [:]) {
        metadata = ObjectMeta(name: name)
        self.spec = spec
    }

    /// `logSeverityScreen` (`Info`, `Debug`, …).
    public var logSeverityScreen: String? {
        get { spec["logSeverityScreen"]?.stringValue }
        set { spec["logSeverityScreen"] = newValue.map { .string($0) } }
    }

    /// `defaultEndpointToHostAction` (`Drop`, `Accept`, `Return`).
    public var defaultEndpointToHostAction: String? {
        get { spec["defaultEndpointToHostAction"]?.stringValue }
        set { spec["defaultEndpointToHostAction"] = newValue.map { .string($0) } }
    }

    public var vxlanEnabled: Bool? {
        get { spec["vxlanEnabled"]?.boolValue }
        set { spec["vxlanEnabled"] = newValue.map { .bool($0) } }
    }

    public var ipipEnabled: Bool? {
        get { spec["ipipEnabled"]?.boolValue }
        set { spec["ipipEnabled"] = newValue.map { .bool($0) } }
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        let env = try Envelope(json, kind: .felixConfiguration, context: context)
        metadata = env.metadata
        spec = env.spec.fields
        // The spec's members are taken as a whole; only the root is checked.
        env.root.finish()
    }

    public var json: JSON { Envelope.json(kind: .felixConfiguration, metadata: metadata, spec: .object(spec)) }
}
