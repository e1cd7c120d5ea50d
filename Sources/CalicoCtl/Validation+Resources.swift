import IPAddress
import JSON
import Selector

/// The kinds calicoctl manages, with the checks each one's spec gets.
extension FieldChecker {
    static let apiVersion = "projectcalico.org/v3"

    /// Checks the frame (`apiVersion`, `kind`, `metadata`) and the kind's spec.
    /// `kindName` is the canonical kind (the caller resolved it).
    mutating func checkResource(_ r: JSON, kindName: String, namespaced: Bool) {
        if let v = string(r, "apiVersion", at: "") {
            if v != Self.apiVersion {
                let hint = v.hasPrefix("v1") || v == "projectcalico.org/v1" || v == "projectcalico.org/v2"
                    ? "; this looks like an older Calico format: rewrite it for projectcalico.org/v3" : ""
                report("apiVersion", "'\(v)' is not supported: use \(Self.apiVersion)\(hint)")
            }
        } else if r["apiVersion"] == nil {
            report("apiVersion", "missing: add apiVersion: \(Self.apiVersion)")
        }
        guard let meta = object(r, "metadata", at: "") else {
            if r["metadata"] == nil { report("metadata", "missing: every resource needs metadata with a name") }
            return
        }
        if let name = string(meta, "name", at: "metadata") {
            checkName(name, kind: kindName, at: "metadata.name")
        } else if meta["name"] == nil {
            report("metadata.name", "missing: every resource needs a name")
        }
        if let ns = string(meta, "namespace", at: "metadata"), !ns.isEmpty {
            if !namespaced {
                report("metadata.namespace", "\(kindName) is not namespaced: remove the namespace")
            } else if !Self.isDNS1123Label(ns) {
                report("metadata.namespace", "'\(ns)' is not a valid namespace: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit")
            }
        }
        if let labels = meta["labels"], !labels.isNull { checkLabels(labels, at: "metadata.labels") }
        if let annotations = meta["annotations"], let o = annotations.objectValue {
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                if !Self.isLabelKey(k) { report("metadata.annotations.\(k)", "'\(k)' is not a valid annotation name") }
                if v.stringValue == nil { report("metadata.annotations.\(k)", "annotation values must be strings, found \(describe(v))") }
            }
        }
        let spec = object(r, "spec", at: "") ?? JSON.object([:])
        switch kindName {
        case "NetworkPolicy": checkPolicy(spec, global: false)
        case "GlobalNetworkPolicy": checkPolicy(spec, global: true)
        case "Profile": checkProfile(spec)
        case "IPPool": checkIPPool(spec, specGiven: r["spec"] != nil)
        case "WorkloadEndpoint": checkWorkloadEndpoint(spec)
        case "HostEndpoint": checkHostEndpoint(spec)
        case "Node": checkNode(spec)
        default: break
        }
    }

    // MARK: Policies and profiles

    mutating func checkPolicy(_ spec: JSON, global: Bool) {
        if let order = spec["order"], !order.isNull, order.doubleValue == nil {
            report("spec.order", "expected a number, found \(describe(order)); lower orders run first")
        }
        checkSelector(spec, "selector", at: "spec")
        checkSelector(spec, "serviceAccountSelector", at: "spec")
        if global { checkSelector(spec, "namespaceSelector", at: "spec") }
        let ingress = checkRules(spec, "ingress")
        let egress = checkRules(spec, "egress")
        if let types = array(spec, "types", at: "spec") {
            var seen = Set<String>()
            for (i, t) in types.enumerated() {
                let p = "spec.types[\(i)]"
                guard let s = t.stringValue else { report(p, "expected Ingress or Egress, found \(describe(t))"); continue }
                guard s == "Ingress" || s == "Egress" else {
                    let fix = ["Ingress", "Egress"].first { $0.lowercased() == s.lowercased() }
                    report(p, "'\(s)' is not a policy type: use Ingress or Egress" + (fix.map { " (did you mean \($0)?)" } ?? ""))
                    continue
                }
                if !seen.insert(s).inserted { report(p, "\(s) is listed twice") }
            }
            if ingress > 0 && !seen.contains("Ingress") && !types.isEmpty {
                report("spec.types", "ingress rules are given but types does not include Ingress, so they would never apply")
            }
            if egress > 0 && !seen.contains("Egress") && !types.isEmpty {
                report("spec.types", "egress rules are given but types does not include Egress, so they would never apply")
            }
        }
        if global {
            let doNotTrack = spec["doNotTrack"]?.boolValue ?? false
            let preDNAT = spec["preDNAT"]?.boolValue ?? false
            let applyOnForward = spec["applyOnForward"]?.boolValue ?? false
            if doNotTrack && preDNAT { report("spec.preDNAT", "preDNAT and doNotTrack cannot both be true") }
            if preDNAT && egress > 0 { report("spec.egress", "a preDNAT policy cannot have egress rules") }
            if (doNotTrack || preDNAT) && !applyOnForward {
                report("spec.applyOnForward", "must be true when \(preDNAT ? "preDNAT" : "doNotTrack") is true")
            }
        }
    }

    mutating func checkProfile(_ spec: JSON) {
        _ = checkRules(spec, "ingress")
        _ = checkRules(spec, "egress")
        if let l = spec["labelsToApply"], !l.isNull { checkLabels(l, at: "spec.labelsToApply") }
    }

    /// Checks `spec.<key>` as a rule list; returns how many rules it holds.
    mutating func checkRules(_ spec: JSON, _ key: String) -> Int {
        guard let rules = array(spec, key, at: "spec") else { return 0 }
        for (i, rule) in rules.enumerated() {
            let p = "spec.\(key)[\(i)]"
            guard case .object = rule else {
                report(p, "expected a rule (an object with action, protocol, source, destination…), found \(describe(rule))")
                continue
            }
            checkRule(rule, at: p)
        }
        return rules.count
    }

    static let actions = ["Allow", "Deny", "Log", "Pass"]
    static let portProtocols: Set<Int> = [6, 17, 132]

    /// A protocol's number, or nil when invalid (reported).
    mutating func protocolNumber(_ v: JSON, at path: String) -> Int? {
        let names: [String: Int] = ["TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58, "SCTP": 132, "UDPLite": 136]
        if let s = v.stringValue {
            if let n = names[s] { return n }
            if let n = Int(s), (1...255).contains(n) { return n }
            if let (name, n) = names.first(where: { $0.key.lowercased() == s.lowercased() }) {
                _ = name
                return n  // upstream accepts lower-case names
            }
            report(path, "'\(s)' is not a protocol: use TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1–255")
            return nil
        }
        if let n = v.intValue {
            if (1...255).contains(n) { return n }
            report(path, "protocol number \(n) is out of range 1–255")
            return nil
        }
        report(path, "expected a protocol name or number, found \(describe(v))")
        return nil
    }

    mutating func checkRule(_ rule: JSON, at path: String) {
        if let action = string(rule, "action", at: path) {
            if !Self.actions.contains(action) {
                let fix = Self.actions.first { $0.lowercased() == action.lowercased() }
                report(path + ".action", "'\(action)' is not an action: use Allow, Deny, Log or Pass" + (fix.map { " (did you mean \($0)?)" } ?? ""))
            }
        } else if rule["action"] == nil {
            report(path + ".action", "missing: every rule needs an action (Allow, Deny, Log or Pass)")
        }
        var ipVersion: Int? = nil
        if let v = rule["ipVersion"], !v.isNull {
            if let n = v.intValue, n == 4 || n == 6 { ipVersion = n } else { report(path + ".ipVersion", "expected 4 or 6, found \(describe(v))") }
        }
        var proto: Int? = nil
        var protoText = ""
        if let v = rule["protocol"], !v.isNull {
            proto = protocolNumber(v, at: path + ".protocol")
            protoText = v.stringValue ?? v.compactText
        }
        if let v = rule["notProtocol"], !v.isNull { _ = protocolNumber(v, at: path + ".notProtocol") }

        for icmpKey in ["icmp", "notICMP"] {
            guard let icmp = object(rule, icmpKey, at: path) else { continue }
            let p = path + "." + icmpKey
            if proto != 1 && proto != 58 {
                let had = rule["protocol"] == nil || rule["protocol"]!.isNull ? "no protocol is set" : "the protocol is \(protoText)"
                report(p, "ICMP type/code can only be matched with protocol ICMP or ICMPv6, but \(had)")
            }
            if proto == 1 && ipVersion == 6 { report(p, "protocol ICMP is IPv4 but ipVersion is 6 (use ICMPv6)") }
            if proto == 58 && ipVersion == 4 { report(p, "protocol ICMPv6 is IPv6 but ipVersion is 4 (use ICMP)") }
            var hasType = false
            if let t = icmp["type"], !t.isNull {
                hasType = true
                if let n = t.intValue { if !(0...254).contains(n) { report(p + ".type", "ICMP type \(n) is out of range 0–254") } }
                else { report(p + ".type", "expected a number, found \(describe(t))") }
            }
            if let c = icmp["code"], !c.isNull {
                if let n = c.intValue { if !(0...255).contains(n) { report(p + ".code", "ICMP code \(n) is out of range 0–255") } }
                else { report(p + ".code", "expected a number, found \(describe(c))") }
                if !hasType { report(p + ".code", "an ICMP code needs an ICMP type") }
            }
        }

        for side in ["source", "destination"] {
            guard let entity = object(rule, side, at: path) else { continue }
            checkEntity(entity, at: path + "." + side, protocolNumber: proto, protocolText: protoText,
                        protocolGiven: rule["protocol"].map { !$0.isNull } ?? false, ipVersion: ipVersion)
        }
    }

    mutating func checkEntity(_ e: JSON, at path: String, protocolNumber proto: Int?, protocolText: String,
                              protocolGiven: Bool, ipVersion: Int?) {
        for key in ["selector", "notSelector", "namespaceSelector"] { checkSelector(e, key, at: path) }
        for key in ["nets", "notNets"] {
            guard let nets = array(e, key, at: path) else { continue }
            for (i, n) in nets.enumerated() {
                let p = "\(path).\(key)[\(i)]"
                guard let s = n.stringValue else { report(p, "expected a CIDR string, found \(describe(n))"); continue }
                if let net = checkCIDR(s, at: p, allowBareAddress: true), let v = ipVersion, (net.isIPv6 ? 6 : 4) != v {
                    report(p, "\(s) is an IPv\(net.isIPv6 ? 6 : 4) network but the rule's ipVersion is \(v)")
                }
            }
        }
        for key in ["ports", "notPorts"] {
            guard let ports = array(e, key, at: path) else { continue }
            if !ports.isEmpty && !(proto.map { Self.portProtocols.contains($0) } ?? false) {
                let why = protocolGiven ? "the rule's protocol is \(protocolText)" : "the rule has no protocol"
                report("\(path).\(key)", "ports can only be matched with protocol TCP, UDP or SCTP, but \(why): add protocol: TCP (or UDP/SCTP) to the rule")
            }
            for (i, port) in ports.enumerated() { checkPort(port, at: "\(path).\(key)[\(i)]") }
        }
        if let sa = object(e, "serviceAccounts", at: path) {
            checkSelector(sa, "selector", at: path + ".serviceAccounts")
        }
    }

    mutating func checkPort(_ v: JSON, at path: String) {
        if let n = v.intValue {
            if !(0...65535).contains(n) { report(path, "port \(n) is out of range 0–65535") }
            return
        }
        guard let s = v.stringValue, !s.isEmpty else {
            report(path, "expected a port number, a range like \"8000:8080\" or a port name, found \(describe(v))")
            return
        }
        if s.contains(":") {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), (0...65535).contains(a), (0...65535).contains(b) else {
                report(path, "'\(s)' is not a port range: write \"min:max\" with ports 0–65535")
                return
            }
            if a > b { report(path, "port range '\(s)' starts after it ends") }
            return
        }
        if let n = Int(s) {
            if !(0...65535).contains(n) { report(path, "port \(n) is out of range 0–65535") }
            return
        }
        let ok = s.unicodeScalars.count <= 128 && ASCII.alnum(s.unicodeScalars.first!)
            && s.unicodeScalars.allSatisfy { ASCII.alnum($0) || $0 == "-" || $0 == "_" }
        if !ok { report(path, "'\(s)' is not a port number, range or port name") }
    }

    // MARK: IP pools

    mutating func checkIPPool(_ spec: JSON, specGiven: Bool) {
        var network: IPNetwork? = nil
        if let cidr = string(spec, "cidr", at: "spec") {
            network = checkCIDR(cidr, at: "spec.cidr")
        } else if spec["cidr"] == nil {
            report("spec.cidr", "missing: an IP pool needs a cidr, like 172.29.0.0/16")
        }
        let v6 = network?.isIPv6 ?? false
        if let b = spec["blockSize"], !b.isNull {
            if let size = b.intValue {
                let range = v6 ? 116...128 : 20...32
                if size != 0 && !range.contains(size) {
                    report("spec.blockSize", "\(size) is out of range: IPv\(v6 ? 6 : 4) block sizes are \(range.lowerBound)–\(range.upperBound)")
                } else if let net = network, size != 0, net.prefixLength > size {
                    report("spec.blockSize", "blocks of /\(size) do not fit in the pool \(net.masked): use a block size of at least \(net.prefixLength) or a larger pool")
                }
            } else {
                report("spec.blockSize", "expected a number (a prefix length), found \(describe(b))")
            }
        } else if let net = network, net.prefixLength > (v6 ? 122 : 26) {
            report("spec.cidr", "the pool \(net.masked) is smaller than the default block size /\(v6 ? 122 : 26): set spec.blockSize to at least \(net.prefixLength)")
        }
        var modes: [String: String] = [:]
        for key in ["ipipMode", "vxlanMode"] {
            guard let m = string(spec, key, at: "spec"), !m.isEmpty else { continue }
            guard let canonical = ["Never", "Always", "CrossSubnet"].first(where: { $0.lowercased() == m.lowercased() }) else {
                report("spec." + key, "'\(m)' is not a mode: use Never, Always or CrossSubnet")
                continue
            }
            modes[key] = canonical
        }
        if let ipip = modes["ipipMode"], ipip != "Never" {
            if let vx = modes["vxlanMode"], vx != "Never" {
                report("spec.vxlanMode", "IPIP and VXLAN cannot both be enabled on one pool (ipipMode \(ipip), vxlanMode \(vx))")
            }
            if v6 { report("spec.ipipMode", "IPIP is not available for IPv6 pools: use Never") }
        }
        for key in ["natOutgoing", "disabled", "disableBGPExport"] {
            if let b = spec[key], !b.isNull, b.boolValue == nil { report("spec." + key, "expected true or false, found \(describe(b))") }
        }
        checkSelector(spec, "nodeSelector", at: "spec")
        _ = specGiven
    }

    // MARK: Endpoints and nodes

    mutating func checkWorkloadEndpoint(_ spec: JSON) {
        if let nets = array(spec, "ipNetworks", at: "spec") {
            for (i, n) in nets.enumerated() {
                let p = "spec.ipNetworks[\(i)]"
                guard let s = n.stringValue else { report(p, "expected a CIDR string, found \(describe(n))"); continue }
                _ = checkCIDR(s, at: p, allowBareAddress: true)
            }
        }
        if let node = string(spec, "node", at: "spec"), !node.isEmpty { checkName(node, kind: "Node", at: "spec.node") }
        checkInterfaceName(spec)
        checkProfilesList(spec)
        checkEndpointPorts(spec)
        if let mac = string(spec, "mac", at: "spec"), !mac.isEmpty, !Self.isMAC(mac) {
            report("spec.mac", "'\(mac)' is not a MAC address (like ee:ee:ee:ee:ee:ee)")
        }
        for key in ["ipv4Gateway", "ipv6Gateway"] {
            if let g = string(spec, key, at: "spec"), !g.isEmpty { _ = checkIP(g, at: "spec." + key) }
        }
    }

    mutating func checkHostEndpoint(_ spec: JSON) {
        if let node = string(spec, "node", at: "spec"), !node.isEmpty { checkName(node, kind: "Node", at: "spec.node") }
        if let ips = array(spec, "expectedIPs", at: "spec") {
            for (i, ip) in ips.enumerated() {
                if let s = ip.stringValue { _ = checkIP(s, at: "spec.expectedIPs[\(i)]") }
                else { report("spec.expectedIPs[\(i)]", "expected an IP address, found \(describe(ip))") }
            }
        }
        checkInterfaceName(spec)
        checkProfilesList(spec)
        checkEndpointPorts(spec)
    }

    mutating func checkNode(_ spec: JSON) {
        if let bgp = object(spec, "bgp", at: "spec") {
            for key in ["ipv4Address", "ipv6Address"] {
                guard let s = string(bgp, key, at: "spec.bgp"), !s.isEmpty else { continue }
                // A host address with its subnet's prefix (`10.0.0.5/24`): not masked.
                if IPNetwork(s, allowBareAddress: true) == nil { report("spec.bgp." + key, "'\(s)' is not an address with a prefix length, like 10.0.0.5/24") }
            }
        }
        for key in ["ipv4VXLANTunnelAddr", "ipv6VXLANTunnelAddr"] {
            if let s = string(spec, key, at: "spec"), !s.isEmpty { _ = checkIP(s, at: "spec." + key) }
        }
    }

    private mutating func checkInterfaceName(_ spec: JSON) {
        if let name = string(spec, "interfaceName", at: "spec"), !name.isEmpty {
            if name.utf8.count > 15 || name.contains("/") || name.contains(where: \.isWhitespace) {
                report("spec.interfaceName", "'\(name)' is not a valid interface name (at most 15 characters, no '/' or spaces)")
            }
        }
    }

    private mutating func checkProfilesList(_ spec: JSON) {
        guard let profiles = array(spec, "profiles", at: "spec") else { return }
        for (i, p) in profiles.enumerated() {
            if let s = p.stringValue { checkName(s, kind: "Profile", at: "spec.profiles[\(i)]") }
            else { report("spec.profiles[\(i)]", "expected a profile name, found \(describe(p))") }
        }
    }

    private mutating func checkEndpointPorts(_ spec: JSON) {
        guard let ports = array(spec, "ports", at: "spec") else { return }
        for (i, port) in ports.enumerated() {
            let p = "spec.ports[\(i)]"
            guard case .object = port else { report(p, "expected a port (name, protocol, port), found \(describe(port))"); continue }
            if let proto = port["protocol"], !proto.isNull {
                if let n = protocolNumber(proto, at: p + ".protocol"), !Self.portProtocols.contains(n) {
                    report(p + ".protocol", "named ports need protocol TCP, UDP or SCTP")
                }
            }
            if let n = port["port"], !n.isNull {
                if let x = n.intValue { if !(1...65535).contains(x) { report(p + ".port", "port \(x) is out of range 1–65535") } }
                else { report(p + ".port", "expected a port number, found \(describe(n))") }
            } else {
                report(p + ".port", "missing: a named port needs a port number")
            }
        }
    }

    static func isMAC(_ s: String) -> Bool {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
    }
}
