import JSON

/// A rule's verdict.
public enum RuleAction: String, Sendable, Hashable, CaseIterable {
    case allow = "Allow"
    case deny = "Deny"
    case log = "Log"
    case pass = "Pass"
}

/// A protocol written as a name (`TCP`, `UDP`, `ICMP`, `ICMPv6`, `SCTP`, `UDPLite`) or a
/// number 1–255 (numorstring.Protocol).
public enum IPProtocol: Sendable, Hashable, CustomStringConvertible {
    case name(String)
    case number(UInt8)

    /// The well-known names and their numbers.
    public static let names: [String: UInt8] = ["TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58, "SCTP": 132, "UDPLite": 136]

    public static let tcp = IPProtocol.name("TCP")
    public static let udp = IPProtocol.name("UDP")

    /// The protocol number, or nil for an unknown name.
    public var number: UInt8? {
        switch self {
        case .number(let n): return n
        case .name(let s):
            if let n = Self.names[s] { return n }
            // Upstream also accepts lower-case names.
            return Self.names.first { $0.key.lowercased() == s.lowercased() }?.value
        }
    }

    /// Whether rules with this protocol may match ports (TCP, UDP, SCTP, UDPLite).
    public var supportsPorts: Bool { [6, 17, 132, 136].contains(number ?? 0) }

    public var description: String {
        switch self {
        case .name(let s): return s
        case .number(let n): return String(n)
        }
    }

    init(json: JSON, path: String) throws(CalicoAPIError) {
        if let s = json.stringValue {
            if let n = Int(s), (1...255).contains(n) { self = .number(UInt8(n)); return }
            guard IPProtocol.name(s).number != nil else {
                throw .invalidField(path: path, reason: "unknown protocol \"\(s)\"")
            }
            self = .name(s)
        } else if let n = json.intValue, (1...255).contains(n) {
            self = .number(UInt8(n))
        } else {
            throw .invalidField(path: path, reason: "expected a protocol name or a number 1-255")
        }
    }

    public var json: JSON {
        switch self {
        case .name(let s): return .string(s)
        case .number(let n): return .int(Int(n))
        }
    }
}

/// A port match: a number, a range `"a:b"`, or a named port (numorstring.Port).
public enum PortMatch: Sendable, Hashable, CustomStringConvertible {
    case range(min: UInt16, max: UInt16)
    case named(String)

    public static func number(_ n: UInt16) -> PortMatch { .range(min: n, max: n) }

    public var description: String {
        switch self {
        case .range(let a, let b): return a == b ? String(a) : "\(a):\(b)"
        case .named(let s): return s
        }
    }

    init(json: JSON, path: String) throws(CalicoAPIError) {
        if let n = json.intValue {
            guard (0...65535).contains(n) else { throw .invalidField(path: path, reason: "port \(n) out of range") }
            self = .number(UInt16(n))
            return
        }
        guard let s = json.stringValue, !s.isEmpty else {
            throw .invalidField(path: path, reason: "expected a port number, a range \"a:b\" or a port name")
        }
        if let n = UInt16(s) { self = .number(n); return }
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, let a = UInt16(parts[0]), let b = UInt16(parts[1]) {
            guard a <= b else { throw .invalidField(path: path, reason: "port range \(s) has min > max") }
            self = .range(min: a, max: b)
            return
        }
        guard !s.contains(":") else { throw .invalidField(path: path, reason: "invalid port range \"\(s)\"") }
        self = .named(s)
    }

    /// Go's numorstring.Port encoding: a number for one port, a string for a range or name.
    public var json: JSON {
        switch self {
        case .range(let a, let b): return a == b ? .int(Int(a)) : .string("\(a):\(b)")
        case .named(let s): return .string(s)
        }
    }
}

/// ICMP type and code to match (`icmp`, `notICMP`).
public struct ICMPFields: Sendable, Hashable {
    public var type: Int?
    public var code: Int?

    public init(type: Int? = nil, code: Int? = nil) {
        self.type = type
        self.code = code
    }

    init(reader r: inout FieldReader) throws(CalicoAPIError) {
        type = try r.int("type")
        code = try r.int("code")
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("type", omitNil: type.map { .int($0) })
        w.set("code", omitNil: code.map { .int($0) })
        return w.json
    }
}

/// Service-account match of an entity rule (Kubernetes only; kept for round trips).
public struct ServiceAccountMatch: Sendable, Hashable {
    public var names: [String]
    public var selector: String?

    public init(names: [String] = [], selector: String? = nil) {
        self.names = names
        self.selector = selector
    }

    init(reader r: inout FieldReader) throws(CalicoAPIError) {
        names = try r.strings("names") ?? []
        selector = try r.string("selector")
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("names", omitEmpty: names)
        w.set("selector", omitEmpty: selector)
        return w.json
    }
}

/// The `source` or `destination` of a rule.
public struct EntityRule: Sendable, Hashable {
    public var nets: [String]
    public var notNets: [String]
    public var selector: String?
    public var notSelector: String?
    public var namespaceSelector: String?
    public var ports: [PortMatch]
    public var notPorts: [PortMatch]
    public var serviceAccounts: ServiceAccountMatch?

    public init(nets: [String] = [], notNets: [String] = [], selector: String? = nil, notSelector: String? = nil,
                namespaceSelector: String? = nil, ports: [PortMatch] = [], notPorts: [PortMatch] = [],
                serviceAccounts: ServiceAccountMatch? = nil) {
        self.nets = nets
        self.notNets = notNets
        self.selector = selector
        self.notSelector = notSelector
        self.namespaceSelector = namespaceSelector
        self.ports = ports
        self.notPorts = notPorts
        self.serviceAccounts = serviceAccounts
    }

    /// Whether nothing is set (matches everything).
    public var isEmpty: Bool { self == EntityRule() }

    init(reader r: inout FieldReader) throws(CalicoAPIError) {
        nets = try r.strings("nets") ?? []
        notNets = try r.strings("notNets") ?? []
        selector = try r.string("selector").flatMap { $0.isEmpty ? nil : $0 }
        notSelector = try r.string("notSelector").flatMap { $0.isEmpty ? nil : $0 }
        namespaceSelector = try r.string("namespaceSelector").flatMap { $0.isEmpty ? nil : $0 }
        ports = try Self.ports(&r, "ports")
        notPorts = try Self.ports(&r, "notPorts")
        if var s = try r.object("serviceAccounts") {
            serviceAccounts = try ServiceAccountMatch(reader: &s)
            s.finish()
        } else {
            serviceAccounts = nil
        }
    }

    private static func ports(_ r: inout FieldReader, _ key: String) throws(CalicoAPIError) -> [PortMatch] {
        guard let elements = try r.array(key) else { return [] }
        var out: [PortMatch] = []
        for (e, p) in elements { out.append(try PortMatch(json: e, path: p)) }
        return out
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("nets", omitEmpty: nets)
        w.set("notNets", omitEmpty: notNets)
        w.set("selector", omitEmpty: selector)
        w.set("notSelector", omitEmpty: notSelector)
        w.set("namespaceSelector", omitEmpty: namespaceSelector)
        w.set("ports", omitEmpty: ports.map(\.json))
        w.set("notPorts", omitEmpty: notPorts.map(\.json))
        w.set("serviceAccounts", omitNil: serviceAccounts?.json)
        return w.json
    }
}

/// One policy or profile rule.
public struct Rule: Sendable, Hashable {
    public var action: RuleAction
    /// 4 or 6.
    public var ipVersion: Int?
    public var `protocol`: IPProtocol?
    public var notProtocol: IPProtocol?
    public var icmp: ICMPFields?
    public var notICMP: ICMPFields?
    public var source: EntityRule
    public var destination: EntityRule
    /// `http` match (application layer; kept verbatim for round trips).
    public var http: JSON?
    /// `metadata` (`annotations`), kept verbatim.
    public var ruleMetadata: JSON?

    public init(action: RuleAction, ipVersion: Int? = nil, protocol: IPProtocol? = nil, notProtocol: IPProtocol? = nil,
                icmp: ICMPFields? = nil, notICMP: ICMPFields? = nil, source: EntityRule = EntityRule(),
                destination: EntityRule = EntityRule(), http: JSON? = nil, ruleMetadata: JSON? = nil) {
        self.action = action
        self.ipVersion = ipVersion
        self.protocol = `protocol`
        self.notProtocol = notProtocol
        self.icmp = icmp
        self.notICMP = notICMP
        self.source = source
        self.destination = destination
        self.http = http
        self.ruleMetadata = ruleMetadata
    }

    init(reader r: inout FieldReader) throws(CalicoAPIError) {
        let a = try r.requiredString("action")
        // Upstream's validator accepts any case ("allow") and the API stores it as given.
        guard let act = RuleAction.allCases.first(where: { $0.rawValue.lowercased() == a.lowercased() }) else {
            throw .invalidField(path: r.fieldPath("action"), reason: "expected Allow, Deny, Log or Pass, found \"\(a)\"")
        }
        action = act
        ipVersion = try r.int("ipVersion")
        if let v = ipVersion, v != 4, v != 6 {
            throw .invalidField(path: r.fieldPath("ipVersion"), reason: "expected 4 or 6")
        }
        `protocol` = try r.raw("protocol").map { (j) throws(CalicoAPIError) in try IPProtocol(json: j, path: r.fieldPath("protocol")) }
        notProtocol = try r.raw("notProtocol").map { (j) throws(CalicoAPIError) in try IPProtocol(json: j, path: r.fieldPath("notProtocol")) }
        icmp = try Self.icmp(&r, "icmp")
        notICMP = try Self.icmp(&r, "notICMP")
        source = try Self.entity(&r, "source")
        destination = try Self.entity(&r, "destination")
        http = r.raw("http")
        ruleMetadata = r.raw("metadata")
    }

    private static func icmp(_ r: inout FieldReader, _ key: String) throws(CalicoAPIError) -> ICMPFields? {
        guard var o = try r.object(key) else { return nil }
        defer { o.finish() }
        return try ICMPFields(reader: &o)
    }

    private static func entity(_ r: inout FieldReader, _ key: String) throws(CalicoAPIError) -> EntityRule {
        guard var o = try r.object(key) else { return EntityRule() }
        defer { o.finish() }
        return try EntityRule(reader: &o)
    }

    /// Calico's JSON; `source` and `destination` are always written (Go's `omitempty`
    /// does not omit structs).
    public var json: JSON {
        var w = ObjectWriter()
        w.set("action", .string(action.rawValue))
        w.set("ipVersion", omitNil: ipVersion.map { .int($0) })
        w.set("protocol", omitNil: `protocol`?.json)
        w.set("notProtocol", omitNil: notProtocol?.json)
        w.set("icmp", omitNil: icmp?.json)
        w.set("notICMP", omitNil: notICMP?.json)
        w.set("source", source.json)
        w.set("destination", destination.json)
        w.set("http", omitNil: http)
        w.set("metadata", omitNil: ruleMetadata)
        return w.json
    }

    static func rules(_ r: inout FieldReader, _ key: String) throws(CalicoAPIError) -> [Rule] {
        try r.objects(key) { (o) throws(CalicoAPIError) in try Rule(reader: &o) } ?? []
    }
}

/// The directions a policy applies to.
public enum PolicyType: String, Sendable, Hashable, CaseIterable {
    case ingress = "Ingress"
    case egress = "Egress"

    static func list(_ r: inout FieldReader, _ key: String) throws(CalicoAPIError) -> [PolicyType] {
        guard let names = try r.strings(key) else { return [] }
        var out: [PolicyType] = []
        for (i, n) in names.enumerated() {
            guard let t = PolicyType.allCases.first(where: { $0.rawValue.lowercased() == n.lowercased() }) else {
                throw .invalidField(path: r.fieldPath(key) + "[\(i)]", reason: "expected Ingress or Egress, found \"\(n)\"")
            }
            out.append(t)
        }
        return out
    }

    /// libcalico-go's defaulting of an empty `types`: Ingress when there are no egress
    /// rules (also when there are no rules at all), Egress when only egress rules, both when both.
    public static func defaults(ingress: [Rule], egress: [Rule]) -> [PolicyType] {
        if egress.isEmpty { return [.ingress] }
        if ingress.isEmpty { return [.egress] }
        return [.ingress, .egress]
    }
}
