import CalicoAPI
import IPAddress

/// A packet as the host's netfilter hooks see it.
public struct Packet: Sendable, Hashable, CustomStringConvertible {
    /// Conntrack state of the packet's connection.
    public enum State: Sendable, Hashable { case new, established, related, invalid }

    /// The interface it arrived on; nil when the host itself sends it.
    public var inInterface: String?
    /// The interface it leaves by; nil when it is for the host itself.
    public var outInterface: String?
    public var source: IPAddress
    public var destination: IPAddress
    /// IANA protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    public var protocolNumber: UInt8
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    public var state: State

    public init(from inInterface: String?, to outInterface: String?, source: IPAddress, destination: IPAddress,
                protocolNumber: UInt8, sourcePort: UInt16? = nil, destinationPort: UInt16? = nil,
                icmpType: UInt8? = nil, icmpCode: UInt8? = nil, state: State = .new) {
        self.inInterface = inInterface
        self.outInterface = outInterface
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.state = state
    }

    /// A new TCP connection's first packet.
    public static func tcp(from inInterface: String?, to outInterface: String?, _ source: IPAddress, _ destination: IPAddress,
                           sourcePort: UInt16 = 40000, port: UInt16) -> Packet {
        Packet(from: inInterface, to: outInterface, source: source, destination: destination, protocolNumber: 6,
               sourcePort: sourcePort, destinationPort: port)
    }

    public var description: String {
        "\(inInterface ?? "host")→\(outInterface ?? "host") \(source)→\(destination) proto \(protocolNumber)"
            + (destinationPort.map { " dport \($0)" } ?? "") + (icmpType.map { " icmp \($0)/\(icmpCode ?? 0)" } ?? "")
    }
}

/// What the host does with a packet, and why.
public struct Decision: Sendable, Hashable, CustomStringConvertible {
    public enum Verdict: Sendable, Hashable { case accept, drop }
    public var verdict: Verdict
    /// The chains and rules that decided, in order (`cali-tw-cali1`, `cali-pi-x rule 2 Deny`).
    public var trace: [String]
    /// Rules with action Log that matched, as `<chain> rule <n>`.
    public var logged: [String]

    public var isAccepted: Bool { verdict == .accept }
    public var description: String { "\(verdict) via " + trace.joined(separator: " → ") }
}

extension Dataplane {
    /// What the ruleset ``NFTRenderer`` makes of this dataplane does with `packet`.
    ///
    /// Walks the same structure as the kernel: forward traffic from a `cali*` interface
    /// runs its endpoint's egress (`cali-fw-`), then traffic to a `cali*` interface its
    /// ingress (`cali-tw-`); traffic from a workload to the host runs egress and then the
    /// endpoint-to-host action; the host may send to known workloads. Traffic of a `cali*`
    /// interface felix does not know is dropped.
    public func decide(_ packet: Packet) -> Decision {
        var d = Decision(verdict: .accept, trace: [], logged: [])
        let fromWorkload = packet.inInterface?.hasPrefix("cali") ?? false
        let toWorkload = packet.outInterface?.hasPrefix("cali") ?? false

        if packet.outInterface == nil {
            // input hook
            guard fromWorkload else { return d }
            if packet.protocolNumber == 58, packet.source.isIPv6, let t = packet.icmpType, [130, 131, 132, 133, 135, 136].contains(t) {
                d.trace.append("\(NFTNames.workloadToHost): ICMPv6 \(t) accepted")
                return d
            }
            switch endpointChain(.egress, interface: packet.inInterface!, packet, &d) {
            case .accept, .drop: return d
            case .return:
                switch endpointToHostAction {
                case .drop: d.verdict = .drop
                case .accept, .return: d.verdict = .accept
                }
                d.trace.append("\(NFTNames.workloadToHost): \(endpointToHostAction.rawValue)")
                return d
            }
        }
        if packet.inInterface == nil {
            // output hook
            if toWorkload, endpoints[packet.outInterface!] == nil {
                d.verdict = .drop
                d.trace.append("\(NFTNames.output): unknown workload interface \(packet.outInterface!)")
            }
            return d
        }
        // forward hook
        if fromWorkload {
            switch endpointChain(.egress, interface: packet.inInterface!, packet, &d) {
            case .accept, .drop: return d
            case .return: break
            }
        }
        if toWorkload {
            switch endpointChain(.ingress, interface: packet.outInterface!, packet, &d) {
            case .accept, .drop: return d
            case .return: break
            }
        }
        d.verdict = .accept
        return d
    }

    private enum ChainExit { case accept, drop, `return` }

    /// `cali-fw-<if>` / `cali-tw-<if>` reached through the dispatch map.
    private func endpointChain(_ direction: Direction, interface: String, _ p: Packet, _ d: inout Decision) -> ChainExit {
        let chain = direction == .ingress ? NFTNames.toWorkload(interface) : NFTNames.fromWorkload(interface)
        guard let ep = endpoints[interface] else {
            d.verdict = .drop
            d.trace.append("\(direction == .ingress ? NFTNames.toWorkloadDispatch : NFTNames.fromWorkloadDispatch): unknown interface \(interface)")
            return .drop
        }
        func exit(_ e: ChainExit, _ why: String) -> ChainExit {
            d.trace.append("\(chain): \(why)")
            if e != .return { d.verdict = e == .accept ? .accept : .drop }
            return e
        }
        switch p.state {
        case .established, .related: return exit(.accept, "established/related")
        case .invalid: return exit(.drop, "invalid")
        case .new: break
        }
        if direction == .egress, !ep.addresses.contains(where: { $0.contains(p.source) }) {
            return exit(.drop, "source \(p.source) is not the endpoint's")
        }
        let policies = ep.policies(direction)
        var passed = false
        for id in policies {
            guard let program = self.policies[id] else { return exit(.drop, "policy \(id) missing") }
            let name = direction == .ingress ? NFTNames.policyIngress(id) : NFTNames.policyEgress(id)
            switch run(program.rules(direction), chain: name, inProfile: false, p, &d) {
            case .allow: return exit(.return, "allowed by \(name)")
            case .deny: return exit(.drop, "denied by \(name)")
            case .pass: passed = true
            case .noMatch: continue
            }
            if passed { break }
        }
        if !policies.isEmpty && !passed { return exit(.drop, "no policy allowed") }
        for name in ep.profiles {
            guard let profile = profiles[name] else { return exit(.drop, "profile \(name) missing") }
            let chainName = direction == .ingress ? NFTNames.profileIngress(name) : NFTNames.profileEgress(name)
            switch run(profile.rules(direction), chain: chainName, inProfile: true, p, &d) {
            case .allow: return exit(.return, "allowed by \(chainName)")
            case .deny: return exit(.drop, "denied by \(chainName)")
            case .pass, .noMatch: continue
            }
        }
        return exit(.drop, "no profile allowed")
    }

    private enum RulesOutcome { case allow, deny, pass, noMatch }

    private func run(_ rules: [CompiledRule], chain: String, inProfile: Bool, _ p: Packet, _ d: inout Decision) -> RulesOutcome {
        for (i, r) in rules.enumerated() where matches(r, p) {
            switch r.action {
            case .allow: return .allow
            case .deny:
                d.trace.append("\(chain) rule \(i + 1) Deny")
                return .deny
            case .pass: return .pass
            case .log: d.logged.append("\(chain) rule \(i + 1)")
            }
        }
        return .noMatch
    }

    /// Whether `r` matches `p`, with exactly the semantics of the nft rules
    /// ``NFTRenderer`` writes for it.
    func matches(_ r: CompiledRule, _ p: Packet) -> Bool {
        let v6 = p.source.isIPv6
        if let v = r.ipVersion, v != (v6 ? 6 : 4) { return false }
        if let n = r.protocolNumber, n != p.protocolNumber { return false }
        if let n = r.notProtocolNumber, n == p.protocolNumber { return false }
        if r.icmp != nil || r.notICMP != nil {
            let icmpProto: UInt8 = v6 ? 58 : 1
            guard r.protocolNumber == icmpProto, p.protocolNumber == icmpProto, let type = p.icmpType else { return false }
            if let m = r.icmp {
                if m.type != type { return false }
                if let c = m.code, c != (p.icmpCode ?? 0) { return false }
            }
            if let m = r.notICMP {
                if let c = m.code {
                    if m.type == type && c == (p.icmpCode ?? 0) { return false }
                } else if m.type == type {
                    return false
                }
            }
        }
        return matches(r.source, address: p.source, port: p.sourcePort, p)
            && matches(r.destination, address: p.destination, port: p.destinationPort, p)
    }

    private func matches(_ e: CompiledEntity, address: IPAddress, port: UInt16?, _ p: Packet) -> Bool {
        if !e.nets.isEmpty, !e.nets.contains(where: { $0.contains(address) }) { return false }
        if e.notNets.contains(where: { $0.contains(address) }) { return false }
        if let s = e.selectorSet, !(addressSets[s] ?? []).contains(where: { $0.contains(address) }) { return false }
        if let s = e.notSelectorSet, (addressSets[s] ?? []).contains(where: { $0.contains(address) }) { return false }
        func inNamed(_ id: String) -> Bool {
            guard let port else { return false }
            return (namedPortSets[id] ?? []).contains {
                $0.address.contains(address) && $0.protocolNumber == p.protocolNumber && $0.port == port
            }
        }
        if !e.notPorts.isEmpty || !e.notNamedPortSets.isEmpty {
            // `th dport != {…}` needs a transport header to read.
            guard let port else { return false }
            if e.notPorts.contains(where: { $0.contains(port) }) { return false }
            if e.notNamedPortSets.contains(where: inNamed) { return false }
        }
        if e.hasPortMatch {
            guard let port else { return false }
            if !e.ports.contains(where: { $0.contains(port) }) && !e.namedPortSets.contains(where: inNamed) { return false }
        }
        return true
    }
}
