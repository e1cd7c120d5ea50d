import IPAddress
import JSON

/// `ipipMode` / `vxlanMode` of a pool.
public enum EncapsulationMode: String, Sendable, Hashable, CaseIterable {
    case never = "Never"
    case always = "Always"
    case crossSubnet = "CrossSubnet"
}

/// A pool of addresses IPAM hands out in blocks (`ippools/<name>`).
public struct IPPool: CalicoResource {
    public static var kind: ResourceKind { .ipPool }

    public var metadata: ObjectMeta
    /// The pool's network, as written (`192.168.0.0/16`).
    public var cidr: String
    /// Prefix length of the blocks carved from the pool; nil means the default (26 for IPv4,
    /// 122 for IPv6).
    public var blockSize: Int?
    public var ipipMode: EncapsulationMode?
    public var vxlanMode: EncapsulationMode?
    public var natOutgoing: Bool
    /// A disabled pool hands out no new addresses.
    public var disabled: Bool
    /// Which nodes may take blocks from the pool; nil or empty means `all()`.
    public var nodeSelector: String?
    /// Deprecated v1 fields (`ipip`, `nat-outgoing`), kept so a read-modify-write keeps them.
    public var legacyFields: [String: JSON]

    public init(name: String, cidr: String, blockSize: Int? = nil, ipipMode: EncapsulationMode? = nil,
                vxlanMode: EncapsulationMode? = nil, natOutgoing: Bool = false, disabled: Bool = false,
                nodeSelector: String? = nil) {
        metadata = ObjectMeta(name: name)
        self.cidr = cidr
        self.blockSize = blockSize
        self.ipipMode = ipipMode
        self.vxlanMode = vxlanMode
        self.natOutgoing = natOutgoing
        self.disabled = disabled
        self.nodeSelector = nodeSelector
        legacyFields = [:]
    }

    /// The pool's network, or nil when `cidr` does not parse.
    public var network: IPNetwork? { IPNetwork(cidr)?.masked }

    public var isIPv6: Bool { cidr.contains(":") }

    /// The block prefix length in effect.
    public var effectiveBlockSize: Int { blockSize ?? (isIPv6 ? 122 : 26) }

    /// The node selector in effect.
    public var effectiveNodeSelector: String {
        guard let s = nodeSelector, !s.trimmingSpaces.isEmpty else { return "all()" }
        return s
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .ipPool, context: context)
        metadata = env.metadata
        cidr = try env.spec.requiredString("cidr")
        guard IPNetwork(cidr) != nil else { throw .invalidField(path: "spec.cidr", reason: "not a CIDR: \(cidr)") }
        blockSize = try env.spec.int("blockSize").flatMap { $0 == 0 ? nil : $0 }
        ipipMode = try Self.mode(&env.spec, "ipipMode")
        vxlanMode = try Self.mode(&env.spec, "vxlanMode")
        natOutgoing = try env.spec.bool("natOutgoing") ?? false
        disabled = try env.spec.bool("disabled") ?? false
        nodeSelector = try env.spec.string("nodeSelector")
        var legacy: [String: JSON] = [:]
        for k in ["ipip", "nat-outgoing"] { if let v = env.spec.raw(k) { legacy[k] = v } }
        legacyFields = legacy
        env.finish()
    }

    private static func mode(_ r: inout FieldReader, _ key: String) throws(CalicoAPIError) -> EncapsulationMode? {
        guard let s = try r.string(key), !s.isEmpty else { return nil }
        guard let m = EncapsulationMode.allCases.first(where: { $0.rawValue.lowercased() == s.lowercased() }) else {
            throw .invalidField(path: r.fieldPath(key), reason: "expected Never, Always or CrossSubnet, found \"\(s)\"")
        }
        return m
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.fields = legacyFields
        w.set("cidr", .string(cidr))
        w.set("vxlanMode", omitEmpty: vxlanMode?.rawValue)
        w.set("ipipMode", omitEmpty: ipipMode?.rawValue)
        w.set("natOutgoing", omitFalse: natOutgoing)
        w.set("disabled", omitFalse: disabled)
        w.set("blockSize", omitNil: blockSize.map { .int($0) })
        w.set("nodeSelector", omitEmpty: nodeSelector)
        return Envelope.json(kind: .ipPool, metadata: metadata, spec: w.json)
    }

    /// What libcalico-go fills on create: block size 26/122, `all()`, modes `Never`.
    public func withDefaults() -> IPPool {
        var p = self
        if p.blockSize == nil { p.blockSize = effectiveBlockSize }
        if p.nodeSelector == nil || p.nodeSelector!.trimmingSpaces.isEmpty { p.nodeSelector = "all()" }
        if p.ipipMode == nil { p.ipipMode = .never }
        if p.vxlanMode == nil { p.vxlanMode = .never }
        if let n = network { p.cidr = n.description }
        return p
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" { s.removeLast() }
        return s
    }
}
