import CalicoAPI
import IPAddress

/// The resolved policy of one host: everything the kernel must enforce, with every
/// selector already turned into a named set of addresses.
///
/// Both forms of enforcement read this one value: ``Dataplane/decide(_:)`` (the evaluator
/// the tests drive) and ``NFTRenderer`` (the nftables ruleset felix loads), so what the
/// tests prove about the evaluator holds for the kernel's rules too.
public struct Dataplane: Sendable, Hashable {
    /// Local endpoints with an interface, by interface name.
    public var endpoints: [String: EndpointProgram]
    /// Policies that apply to at least one local endpoint, by ``PolicyProgram/chainID``.
    public var policies: [String: PolicyProgram]
    /// Profiles named by local endpoints that exist, by name. A named profile missing
    /// here denies.
    public var profiles: [String: ProfileProgram]
    /// Member addresses of each rule selector, by set ID.
    public var addressSets: [String: [IPNetwork]]
    /// Members of each named-port set (address, protocol, port), by set ID.
    public var namedPortSets: [String: [NamedPortMember]]
    /// What happens to traffic from a workload to the host itself once its egress policy
    /// allowed it (felix's `DefaultEndpointToHostAction`).
    public var endpointToHostAction: EndpointToHostAction

    public init(endpoints: [String: EndpointProgram] = [:], policies: [String: PolicyProgram] = [:],
                profiles: [String: ProfileProgram] = [:], addressSets: [String: [IPNetwork]] = [:],
                namedPortSets: [String: [NamedPortMember]] = [:], endpointToHostAction: EndpointToHostAction = .drop) {
        self.endpoints = endpoints
        self.policies = policies
        self.profiles = profiles
        self.addressSets = addressSets
        self.namedPortSets = namedPortSets
        self.endpointToHostAction = endpointToHostAction
    }
}

/// felix's `DefaultEndpointToHostAction` (upstream default `Drop`).
public enum EndpointToHostAction: String, Sendable, Hashable, CaseIterable {
    /// Drop workload-to-host traffic even when egress policy allowed it.
    case drop = "DROP"
    /// Accept it once egress policy allowed it.
    case accept = "ACCEPT"
    /// Leave it to the host's other rules once egress policy allowed it.
    case `return` = "RETURN"
}

/// One address/protocol/port of an endpoint's named port.
public struct NamedPortMember: Sendable, Hashable, Comparable {
    public var address: IPNetwork
    public var protocolNumber: UInt8
    public var port: UInt16

    public init(address: IPNetwork, protocolNumber: UInt8, port: UInt16) {
        self.address = address
        self.protocolNumber = protocolNumber
        self.port = port
    }

    public static func < (a: NamedPortMember, b: NamedPortMember) -> Bool {
        (a.address.address, a.address.prefixLength, a.protocolNumber, a.port)
            < (b.address.address, b.address.prefixLength, b.protocolNumber, b.port)
    }
}

/// What runs for one local endpoint, per direction.
public struct EndpointProgram: Sendable, Hashable {
    public var id: String
    public var interfaceName: String
    /// The endpoint's addresses; traffic from its interface with any other source is dropped.
    public var addresses: [IPNetwork]
    /// Chain IDs of the policies selecting it for ingress, in the order they run.
    public var ingressPolicies: [String]
    /// Chain IDs of the policies selecting it for egress, in the order they run.
    public var egressPolicies: [String]
    /// Profile names in order (present in ``Dataplane/profiles`` or missing → deny).
    public var profiles: [String]

    public init(id: String, interfaceName: String, addresses: [IPNetwork], ingressPolicies: [String] = [],
                egressPolicies: [String] = [], profiles: [String] = []) {
        self.id = id
        self.interfaceName = interfaceName
        self.addresses = addresses
        self.ingressPolicies = ingressPolicies
        self.egressPolicies = egressPolicies
        self.profiles = profiles
    }

    public func policies(_ direction: Direction) -> [String] {
        direction == .ingress ? ingressPolicies : egressPolicies
    }
}

/// A policy's compiled rules.
public struct PolicyProgram: Sendable, Hashable {
    /// A short stable ID derived from the policy's kind and name (the `<id>` of
    /// `cali-pi-<id>`); names can be longer than an nft identifier and hold any character.
    public var chainID: String
    /// `<namespace>/<name>` or `<name>`, for humans.
    public var name: String
    public var ingress: [CompiledRule]
    public var egress: [CompiledRule]
    /// The directions it applies in (its `types`): only these get a chain.
    public var directions: Set<Direction>

    public init(chainID: String, name: String, ingress: [CompiledRule], egress: [CompiledRule],
                directions: Set<Direction> = [.ingress, .egress]) {
        self.chainID = chainID
        self.name = name
        self.ingress = ingress
        self.egress = egress
        self.directions = directions
    }

    public func rules(_ direction: Direction) -> [CompiledRule] { direction == .ingress ? ingress : egress }
}

/// A profile's compiled rules.
public struct ProfileProgram: Sendable, Hashable {
    public var name: String
    public var ingress: [CompiledRule]
    public var egress: [CompiledRule]

    public init(name: String, ingress: [CompiledRule], egress: [CompiledRule]) {
        self.name = name
        self.ingress = ingress
        self.egress = egress
    }

    public func rules(_ direction: Direction) -> [CompiledRule] { direction == .ingress ? ingress : egress }
}

/// A rule with its selectors resolved to set IDs and its names to numbers.
public struct CompiledRule: Sendable, Hashable {
    public var action: RuleAction
    /// 4 or 6, or nil for both.
    public var ipVersion: Int?
    public var protocolNumber: UInt8?
    public var notProtocolNumber: UInt8?
    public var icmp: ICMPMatch?
    public var notICMP: ICMPMatch?
    public var source: CompiledEntity
    public var destination: CompiledEntity

    public init(action: RuleAction, ipVersion: Int? = nil, protocolNumber: UInt8? = nil, notProtocolNumber: UInt8? = nil,
                icmp: ICMPMatch? = nil, notICMP: ICMPMatch? = nil, source: CompiledEntity = CompiledEntity(),
                destination: CompiledEntity = CompiledEntity()) {
        self.action = action
        self.ipVersion = ipVersion
        self.protocolNumber = protocolNumber
        self.notProtocolNumber = notProtocolNumber
        self.icmp = icmp
        self.notICMP = notICMP
        self.source = source
        self.destination = destination
    }

}

/// An ICMP type with an optional code.
public struct ICMPMatch: Sendable, Hashable {
    public var type: UInt8
    public var code: UInt8?

    public init(type: UInt8, code: UInt8? = nil) {
        self.type = type
        self.code = code
    }
}

/// The resolved `source` or `destination` of a rule.
public struct CompiledEntity: Sendable, Hashable {
    public var nets: [IPNetwork]
    public var notNets: [IPNetwork]
    /// Set ID of the selector's member addresses (also set when only `namespaceSelector`
    /// was given).
    public var selectorSet: String?
    public var notSelectorSet: String?
    /// Numeric ports and ranges. Together with ``namedPortSets``: the port matches when
    /// either does; both empty means any port.
    public var ports: [ClosedRange<UInt16>]
    public var namedPortSets: [String]
    public var notPorts: [ClosedRange<UInt16>]
    public var notNamedPortSets: [String]

    public init(nets: [IPNetwork] = [], notNets: [IPNetwork] = [], selectorSet: String? = nil, notSelectorSet: String? = nil,
                ports: [ClosedRange<UInt16>] = [], namedPortSets: [String] = [], notPorts: [ClosedRange<UInt16>] = [],
                notNamedPortSets: [String] = []) {
        self.nets = nets
        self.notNets = notNets
        self.selectorSet = selectorSet
        self.notSelectorSet = notSelectorSet
        self.ports = ports
        self.namedPortSets = namedPortSets
        self.notPorts = notPorts
        self.notNamedPortSets = notNamedPortSets
    }

    /// Whether any port condition is present.
    var hasPortMatch: Bool { !ports.isEmpty || !namedPortSets.isEmpty }
    /// Whether the entity needs to know the packet's address family.
    var isFamilySpecific: Bool {
        !nets.isEmpty || !notNets.isEmpty || selectorSet != nil || notSelectorSet != nil
            || !namedPortSets.isEmpty || !notNamedPortSets.isEmpty
    }
}
