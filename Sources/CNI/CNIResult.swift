import IPAddress
import JSON

/// The one result type every plugin builds: the 1.1.0 model.
///
/// Results are parsed from any version's JSON (the 0.1/0.2 `ip4`/`ip6` shape included)
/// into this type and converted only when printed (`json(cniVersion:)`), so plugin code
/// never branches on versions.
public struct CNIResult: Sendable, Hashable {
    /// An interface the plugin created or configured.
    public struct Interface: Sendable, Hashable {
        public var name: String
        /// Hardware address, `aa:bb:cc:dd:ee:ff`; empty when unknown.
        public var mac: String
        /// The netns path for a container-side interface; empty on the host side.
        public var sandbox: String
        /// 1.1.0 and later.
        public var mtu: Int?
        /// 1.1.0 and later (vhost-user and the like).
        public var socketPath: String?
        /// 1.1.0 and later (SR-IOV).
        public var pciID: String?

        public init(name: String, mac: String = "", sandbox: String = "", mtu: Int? = nil, socketPath: String? = nil, pciID: String? = nil) {
            self.name = name
            self.mac = mac
            self.sandbox = sandbox
            self.mtu = mtu
            self.socketPath = socketPath
            self.pciID = pciID
        }
    }

    /// An address assigned to an interface.
    public struct IPConfig: Sendable, Hashable {
        /// Address with prefix length (`172.29.10.66/32`).
        public var address: IPNetwork
        public var gateway: IPAddress?
        /// Index into `interfaces`; nil in IPAM results, which know no interfaces.
        public var interface: Int?

        public init(address: IPNetwork, gateway: IPAddress? = nil, interface: Int? = nil) {
            self.address = address
            self.gateway = gateway
            self.interface = interface
        }
    }

    /// A route; the extended fields are printed from 1.1.0 on.
    public struct Route: Sendable, Hashable {
        public var destination: IPNetwork
        public var gateway: IPAddress?
        public var mtu: Int?
        public var advmss: Int?
        public var priority: Int?
        public var table: Int?
        public var scope: Int?

        public init(destination: IPNetwork, gateway: IPAddress? = nil, mtu: Int? = nil, advmss: Int? = nil,
                    priority: Int? = nil, table: Int? = nil, scope: Int? = nil) {
            self.destination = destination
            self.gateway = gateway
            self.mtu = mtu
            self.advmss = advmss
            self.priority = priority
            self.table = table
            self.scope = scope
        }
    }

    /// Resolver settings (same shape in every version, and in a config's `dns`).
    public struct DNS: Sendable, Hashable {
        public var nameservers: [String]
        public var domain: String
        public var search: [String]
        public var options: [String]

        public init(nameservers: [String] = [], domain: String = "", search: [String] = [], options: [String] = []) {
            self.nameservers = nameservers
            self.domain = domain
            self.search = search
            self.options = options
        }

        public var isEmpty: Bool { nameservers.isEmpty && domain.isEmpty && search.isEmpty && options.isEmpty }
    }

    public var interfaces: [Interface]
    public var ips: [IPConfig]
    public var routes: [Route]
    public var dns: DNS

    public init(interfaces: [Interface] = [], ips: [IPConfig] = [], routes: [Route] = [], dns: DNS = DNS()) {
        self.interfaces = interfaces
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }
}

// MARK: - Parsing

extension CNIResult {
    /// Parses a result of any version. The shape follows the result's own `cniVersion`
    /// (below 0.3.0: `ip4`/`ip6`); without one, the presence of `ip4`/`ip6` decides.
    /// Malformed content throws code 6.
    public init(parsing json: JSON) throws(CNIError) {
        guard case .object(let o) = json else { throw .decodingFailure("result is not a JSON object", details: json.typeName) }
        let legacy: Bool
        if let v = o["cniVersion"] {
            guard let s = v.stringValue else { throw .decodingFailure("result cniVersion is not a string") }
            if let version = CNIVersion(s) {
                legacy = version.usesLegacyResultShape
            } else if s.isEmpty {
                legacy = true
            } else {
                throw .incompatibleVersion("unsupported result version \"\(s)\"")
            }
        } else {
            legacy = o["ip4"] != nil || o["ip6"] != nil
        }
        self.init()
        if let d = o["dns"] { dns = try DNS(parsing: d, context: "dns") }
        if legacy {
            for family in ["ip4", "ip6"] {
                guard let c = o[family], !c.isNull else { continue }
                guard case .object(let config) = c else { throw .decodingFailure("\(family) is not an object") }
                let address = try Self.network(config["ip"], "\(family).ip")
                let gateway = try Self.optionalAddress(config["gateway"], "\(family).gateway")
                ips.append(IPConfig(address: address, gateway: gateway))
                for (i, r) in try Self.array(config["routes"], "\(family).routes").enumerated() {
                    routes.append(try Route(parsing: r, context: "\(family).routes[\(i)]"))
                }
            }
        } else {
            for (i, j) in try Self.array(o["interfaces"], "interfaces").enumerated() {
                interfaces.append(try Interface(parsing: j, context: "interfaces[\(i)]"))
            }
            for (i, j) in try Self.array(o["ips"], "ips").enumerated() {
                let ctx = "ips[\(i)]"
                let address = try Self.network(j["address"], "\(ctx).address")
                let gateway = try Self.optionalAddress(j["gateway"], "\(ctx).gateway")
                let index = try Self.optionalInt(j["interface"], "\(ctx).interface")
                if let index, index < 0 { throw .decodingFailure("\(ctx).interface is negative") }
                if let v = j["version"], !v.isNull {
                    guard let s = v.stringValue, s == "4" || s == "6" else { throw .decodingFailure("\(ctx).version must be \"4\" or \"6\"") }
                    guard (s == "6") == address.isIPv6 else { throw .decodingFailure("\(ctx).version \(s) does not match \(address)") }
                }
                ips.append(IPConfig(address: address, gateway: gateway, interface: index))
            }
            for (i, j) in try Self.array(o["routes"], "routes").enumerated() {
                routes.append(try Route(parsing: j, context: "routes[\(i)]"))
            }
        }
    }

    /// Parses result bytes (an IPAM plugin's stdout, a cached result).
    public init(parsing bytes: [UInt8]) throws(CNIError) {
        let json: JSON
        do { json = try JSON(parsing: bytes) } catch { throw .decodingFailure("result is not valid JSON", details: error.description) }
        try self.init(parsing: json)
    }

    static func array(_ v: JSON?, _ what: String) throws(CNIError) -> [JSON] {
        guard let v, !v.isNull else { return [] }
        guard let a = v.arrayValue else { throw .decodingFailure("\(what) is not an array") }
        return a
    }

    static func network(_ v: JSON?, _ what: String) throws(CNIError) -> IPNetwork {
        guard let s = v?.stringValue else { throw .decodingFailure("\(what) is missing or not a string") }
        guard let n = IPNetwork(s) else { throw .decodingFailure("\(what) is not an address with prefix length", details: s) }
        return n
    }

    static func optionalAddress(_ v: JSON?, _ what: String) throws(CNIError) -> IPAddress? {
        guard let v, !v.isNull else { return nil }
        guard let s = v.stringValue, let a = IPAddress(s) else { throw .decodingFailure("\(what) is not an IP address", details: v.compactText) }
        return a
    }

    static func optionalInt(_ v: JSON?, _ what: String) throws(CNIError) -> Int? {
        guard let v, !v.isNull else { return nil }
        guard let i = v.intValue else { throw .decodingFailure("\(what) is not an integer") }
        return i
    }

    static func optionalString(_ v: JSON?, _ what: String) throws(CNIError) -> String? {
        guard let v, !v.isNull else { return nil }
        guard let s = v.stringValue else { throw .decodingFailure("\(what) is not a string") }
        return s
    }

    static func strings(_ v: JSON?, _ what: String) throws(CNIError) -> [String] {
        var out: [String] = []
        for (i, e) in try array(v, what).enumerated() {
            guard let s = e.stringValue else { throw .decodingFailure("\(what)[\(i)] is not a string") }
            out.append(s)
        }
        return out
    }
}

extension CNIResult.Interface {
    init(parsing j: JSON, context: String) throws(CNIError) {
        guard j.objectValue != nil else { throw .decodingFailure("\(context) is not an object") }
        guard let name = try CNIResult.optionalString(j["name"], "\(context).name") else {
            throw .decodingFailure("\(context).name is missing")
        }
        self.init(
            name: name,
            mac: try CNIResult.optionalString(j["mac"], "\(context).mac") ?? "",
            sandbox: try CNIResult.optionalString(j["sandbox"], "\(context).sandbox") ?? "",
            mtu: try CNIResult.optionalInt(j["mtu"], "\(context).mtu"),
            socketPath: try CNIResult.optionalString(j["socketPath"], "\(context).socketPath"),
            pciID: try CNIResult.optionalString(j["pciID"], "\(context).pciID"))
    }
}

extension CNIResult.Route {
    init(parsing j: JSON, context: String) throws(CNIError) {
        guard j.objectValue != nil else { throw .decodingFailure("\(context) is not an object") }
        self.init(
            destination: try CNIResult.network(j["dst"], "\(context).dst"),
            gateway: try CNIResult.optionalAddress(j["gw"], "\(context).gw"),
            mtu: try CNIResult.optionalInt(j["mtu"], "\(context).mtu"),
            advmss: try CNIResult.optionalInt(j["advmss"], "\(context).advmss"),
            priority: try CNIResult.optionalInt(j["priority"], "\(context).priority"),
            table: try CNIResult.optionalInt(j["table"], "\(context).table"),
            scope: try CNIResult.optionalInt(j["scope"], "\(context).scope"))
    }
}

extension CNIResult.DNS {
    /// Parses a `dns` object (of a result or of a network config).
    public init(parsing j: JSON, context: String = "dns") throws(CNIError) {
        if j.isNull { self.init(); return }
        guard j.objectValue != nil else { throw .decodingFailure("\(context) is not an object") }
        self.init(
            nameservers: try CNIResult.strings(j["nameservers"], "\(context).nameservers"),
            domain: try CNIResult.optionalString(j["domain"], "\(context).domain") ?? "",
            search: try CNIResult.strings(j["search"], "\(context).search"),
            options: try CNIResult.strings(j["options"], "\(context).options"))
    }

    /// The object with only the members that are set (`{}` when none).
    public var json: JSON {
        var o: [String: JSON] = [:]
        if !nameservers.isEmpty { o["nameservers"] = .array(nameservers.map { .string($0) }) }
        if !domain.isEmpty { o["domain"] = .string(domain) }
        if !search.isEmpty { o["search"] = .array(search.map { .string($0) }) }
        if !options.isEmpty { o["options"] = .array(options.map { .string($0) }) }
        return .object(o)
    }
}

// MARK: - Printing

extension CNIResult {
    /// The result in the shape of `cniVersion`, which is printed as given (an empty string
    /// prints as "0.1.0", the version it means).
    ///
    /// - 0.1.0/0.2.0: `ip4`/`ip6` from the first IPv4 and the first IPv6 address, routes
    ///   split by destination family, interfaces dropped; no address at all throws code 1.
    /// - 0.3.0/0.3.1/0.4.0: `interfaces`, `ips` with `version`, `routes`, `dns`.
    /// - 1.0.0: as 0.4.0 without `ips[].version`.
    /// - 1.1.0: adds interface `mtu`/`socketPath`/`pciID`, route `mtu`/`advmss`/
    ///   `priority`/`table`/`scope`.
    ///
    /// `interface` is printed whenever it is set, 0 included. `dns` is always present.
    public func json(cniVersion: String) throws(CNIError) -> JSON {
        let printed = cniVersion.isEmpty ? "0.1.0" : cniVersion
        guard let version = CNIVersion.fromConfig(cniVersion) else {
            throw .incompatibleVersion("cannot print a result for version \"\(cniVersion)\"", details: "known versions: \(CNIVersion.all.map(\.description).joined(separator: ", "))")
        }
        var o: [String: JSON] = ["cniVersion": .string(printed), "dns": dns.json]
        if version.usesLegacyResultShape {
            let v4 = ips.first { !$0.address.isIPv6 }
            let v6 = ips.first { $0.address.isIPv6 }
            guard v4 != nil || v6 != nil else {
                throw .incompatibleVersion("cannot convert the result to \(printed): no IP addresses")
            }
            for (key, ip, isV6) in [("ip4", v4, false), ("ip6", v6, true)] {
                guard let ip else { continue }
                var c: [String: JSON] = ["ip": .string(ip.address.description)]
                if let gw = ip.gateway { c["gateway"] = .string(gw.description) }
                let rs = routes.filter { $0.destination.isIPv6 == isV6 }.map { r -> JSON in
                    var ro: [String: JSON] = ["dst": .string(r.destination.description)]
                    if let gw = r.gateway { ro["gw"] = .string(gw.description) }
                    return .object(ro)
                }
                if !rs.isEmpty { c["routes"] = .array(rs) }
                o[key] = .object(c)
            }
            return .object(o)
        }
        if !interfaces.isEmpty {
            o["interfaces"] = .array(interfaces.map { i in
                var io: [String: JSON] = ["name": .string(i.name)]
                if !i.mac.isEmpty { io["mac"] = .string(i.mac) }
                if !i.sandbox.isEmpty { io["sandbox"] = .string(i.sandbox) }
                if version.hasExtendedFields {
                    if let mtu = i.mtu, mtu != 0 { io["mtu"] = .int(mtu) }
                    if let s = i.socketPath, !s.isEmpty { io["socketPath"] = .string(s) }
                    if let s = i.pciID, !s.isEmpty { io["pciID"] = .string(s) }
                }
                return .object(io)
            })
        }
        if !ips.isEmpty {
            o["ips"] = .array(ips.map { ip in
                var io: [String: JSON] = ["address": .string(ip.address.description)]
                if version.hasIPVersionField { io["version"] = .string(ip.address.isIPv6 ? "6" : "4") }
                if let index = ip.interface { io["interface"] = .int(index) }
                if let gw = ip.gateway { io["gateway"] = .string(gw.description) }
                return .object(io)
            })
        }
        if !routes.isEmpty {
            o["routes"] = .array(routes.map { r in
                var ro: [String: JSON] = ["dst": .string(r.destination.description)]
                if let gw = r.gateway { ro["gw"] = .string(gw.description) }
                if version.hasExtendedFields {
                    for (key, value) in [("mtu", r.mtu), ("advmss", r.advmss), ("priority", r.priority), ("table", r.table), ("scope", r.scope)] {
                        if let value { ro[key] = .int(value) }
                    }
                }
                return .object(ro)
            })
        }
        return .object(o)
    }

    /// The printed bytes: compact JSON (keys sorted) and a newline.
    public func encoded(cniVersion: String) throws(CNIError) -> [UInt8] {
        Array(try json(cniVersion: cniVersion).compactText.utf8) + [0x0A]
    }
}
