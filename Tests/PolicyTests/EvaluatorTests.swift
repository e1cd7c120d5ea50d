import CalicoAPI
import IPAddress
import Policy
import Testing

/// One row of the table: a cluster state, a packet, and whether the host lets it through.
struct PolicyCase: Sendable, CustomTestStringConvertible {
    var name: String
    var policies: [PolicyDefinition] = []
    var profiles: [ProfileDefinition] = [Cluster.calicoProfile]
    var endpoints: [PolicyEndpoint] = Cluster.endpoints
    var toHost: EndpointToHostAction = .drop
    var packet: Packet
    var accepted: Bool
    var testDescription: String { name }
}

// Addresses of the fixture endpoints.
let bf = ip("172.29.0.2"), bs = ip("172.29.0.3"), ff = ip("172.29.0.4"), rb = ip("172.29.1.5"), ob = ip("172.29.0.9")
let outside = ip("8.8.8.8")

/// Local workload to local workload, TCP.
func tcp(_ from: String, _ src: IPAddress, _ to: String, _ dst: IPAddress, _ port: UInt16, state: Packet.State = .new) -> Packet {
    var p = Packet.tcp(from: from, to: to, src, dst, port: port)
    p.state = state
    return p
}

func udp(_ from: String?, _ src: IPAddress, _ to: String?, _ dst: IPAddress, _ port: UInt16) -> Packet {
    Packet(from: from, to: to, source: src, destination: dst, protocolNumber: 17, sourcePort: 5353, destinationPort: port)
}

func icmp(_ from: String?, _ src: IPAddress, _ to: String?, _ dst: IPAddress, type: UInt8, code: UInt8 = 0) -> Packet {
    Packet(from: from, to: to, source: src, destination: dst, protocolNumber: src.isIPv6 ? 58 : 1, icmpType: type, icmpCode: code)
}

let seed = Cluster.seedPolicy

let policyCases: [PolicyCase] = [
    // --- Profiles when no policy applies (the seed's "before") ---
    PolicyCase(name: "no policy: bookstore frontend reaches server via profile", packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "no policy: fruitstore frontend reaches server via profile", packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "no policy: profile ingress needs has(calico) (outside source dropped)",
               packet: tcp("eth0", outside, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "no policy: profile egress allows to the outside", packet: tcp("cali-bf", bf, "eth0", outside, 443), accepted: true),
    PolicyCase(name: "remote endpoint inherits calico label from its profile", packet: tcp("eth0", rb, "cali-bs", bs, 80), accepted: true),

    // --- The seed's policy ---
    PolicyCase(name: "seed: bookstore frontend → server:80 allowed", policies: [seed], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "seed: fruitstore frontend → server:80 denied", policies: [seed], packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "seed: bookstore → server:81 falls off the end (dropped)", policies: [seed], packet: tcp("cali-bf", bf, "cali-bs", bs, 81), accepted: false),
    PolicyCase(name: "seed: UDP to server:80 falls off the end", policies: [seed], packet: udp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "seed: remote bookstore endpoint (other host) allowed by selector set", policies: [seed],
               packet: tcp("eth0", rb, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "seed: bookstore in another namespace is outside the policy's rule scope", policies: [seed],
               packet: tcp("cali-ob", ob, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "seed: server not selected for egress, its replies' new flows use profile", policies: [seed],
               packet: tcp("cali-bs", bs, "cali-ff", ff, 8080), accepted: true),
    PolicyCase(name: "seed: frontends themselves are not selected (profile still applies)", policies: [seed],
               packet: tcp("cali-ff", ff, "cali-bf", bf, 80), accepted: true),
    PolicyCase(name: "seed: established fruitstore traffic still accepted", policies: [seed],
               packet: tcp("cali-ff", ff, "cali-bs", bs, 80, state: .established), accepted: true),
    PolicyCase(name: "conntrack invalid dropped even with no policy", packet: tcp("cali-bf", bf, "cali-bs", bs, 80, state: .invalid), accepted: false),
    PolicyCase(name: "related accepted even when policy denies", policies: [seed],
               packet: tcp("cali-ff", ff, "cali-bs", bs, 80, state: .related), accepted: true),

    // --- Order, then name ---
    PolicyCase(name: "lower order runs first: deny(1) before allow(2)", policies: [
        networkPolicy("b-allow", #"{"order":2,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
        networkPolicy("a-deny", #"{"order":1,"selector":"role == 'server'","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "lower order runs first: allow(1) before deny(2)", policies: [
        networkPolicy("b-allow", #"{"order":1,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
        networkPolicy("a-deny", #"{"order":2,"selector":"role == 'server'","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "missing order runs last", policies: [
        networkPolicy("a-deny", #"{"selector":"role == 'server'","ingress":[{"action":"Deny"}]}"#),
        networkPolicy("z-allow", #"{"order":1000,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "equal order: name decides (a-allow before b-deny)", policies: [
        networkPolicy("b-deny", #"{"order":5,"selector":"role == 'server'","ingress":[{"action":"Deny"}]}"#),
        networkPolicy("a-allow", #"{"order":5,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "fractional orders compare as numbers", policies: [
        networkPolicy("a", #"{"order":10.5,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
        networkPolicy("b", #"{"order":10.25,"selector":"role == 'server'","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "global and namespaced policies interleave by order", policies: [
        globalPolicy("g-deny", #"{"order":1,"selector":"role == 'server'","ingress":[{"action":"Deny","source":{"selector":"biz_type == 'bookstore'"}}]}"#),
        networkPolicy("allow", #"{"order":2,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),

    // --- Actions ---
    PolicyCase(name: "Log continues to the next rule", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Log"},{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "Log alone then end of policy drops", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Log"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "Pass skips later policies and goes to profiles (which allow)", policies: [
        networkPolicy("a-pass", #"{"order":1,"selector":"role == 'server'","ingress":[{"action":"Pass"}]}"#),
        networkPolicy("b-deny", #"{"order":2,"selector":"role == 'server'","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "Pass goes to profiles: profile does not allow an outside source", policies: [
        networkPolicy("a-pass", #"{"order":1,"selector":"role == 'server'","ingress":[{"action":"Pass"}]}"#),
    ], packet: tcp("eth0", outside, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "Deny stops even when a later rule would allow", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Deny","protocol":"TCP"},{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),

    // --- types ---
    PolicyCase(name: "egress-only rules default types to Egress: ingress untouched", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","egress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "egress-only rules: egress now governed (and denied)", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","egress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bs", bs, "eth0", outside, 80), accepted: false),
    PolicyCase(name: "no rules at all defaults to Ingress: default deny ingress", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'"}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "no rules at all: egress unaffected", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'"}"#),
    ], packet: tcp("cali-bs", bs, "eth0", outside, 80), accepted: true),
    PolicyCase(name: "explicit types [Egress] with ingress rules ignores them", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","types":["Egress"],"ingress":[{"action":"Deny"}],"egress":[{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "source egress and destination ingress both needed (egress denies)", policies: [
        networkPolicy("deny-out", #"{"selector":"biz_type == 'bookstore'","types":["Egress"]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),

    // --- Namespaces ---
    PolicyCase(name: "NetworkPolicy selects only its namespace's endpoints", policies: [
        networkPolicy("deny-all", namespace: "other", #"{"selector":"all()","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "NetworkPolicy in the endpoint's namespace applies", policies: [
        networkPolicy("deny-all", namespace: "other", #"{"selector":"all()","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-ob", ob, 80), accepted: false),
    PolicyCase(name: "namespaceSelector reaches into another namespace", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"namespaceSelector":"projectcalico.org/name == 'other'","selector":"biz_type == 'bookstore'"}}]}"#),
    ], packet: tcp("cali-ob", ob, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "namespaceSelector excludes the policy's own namespace when it does not match", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"namespaceSelector":"projectcalico.org/name == 'other'"}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "GlobalNetworkPolicy rule selectors span namespaces", policies: [
        globalPolicy("g", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"selector":"biz_type == 'bookstore'"}}]}"#),
    ], packet: tcp("cali-ob", ob, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "GlobalNetworkPolicy namespaceSelector limits the endpoints it applies to", policies: [
        globalPolicy("g", #"{"selector":"all()","namespaceSelector":"projectcalico.org/name == 'other'","ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "doNotTrack policies never apply to workloads", policies: [
        globalPolicy("g", #"{"selector":"all()","doNotTrack":true,"applyOnForward":true,"ingress":[{"action":"Deny"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),

    // --- Profiles ---
    PolicyCase(name: "a missing profile denies", profiles: [], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "profiles run in order: the first allows before a missing one", endpoints: Cluster.endpoints.map {
        var e = $0
        if e.id == "default/bs" { e.profiles = ["calico", "missing"] }
        return e
    }, packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "profiles run in order: a missing profile first denies", endpoints: Cluster.endpoints.map {
        var e = $0
        if e.id == "default/bs" { e.profiles = ["missing", "calico"] }
        return e
    }, packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "profile Deny drops", profiles: [Cluster.calicoProfile, profile("strict", #"{"ingress":[{"action":"Deny"}]}"#)],
               endpoints: Cluster.endpoints.map {
                   var e = $0
                   if e.id == "default/bs" { e.profiles = ["strict", "calico"] }
                   return e
               }, packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "profile Pass moves on to the next profile", profiles: [Cluster.calicoProfile, profile("p", #"{"ingress":[{"action":"Pass"},{"action":"Deny"}]}"#)],
               endpoints: Cluster.endpoints.map {
                   var e = $0
                   if e.id == "default/bs" { e.profiles = ["p", "calico"] }
                   return e
               }, packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "no profile allowing drops", profiles: [profile("calico", #"{"egress":[{"action":"Allow"}]}"#)],
               packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "labelsToApply: endpoint labels win over the profile's", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"selector":"biz_type == 'bookstore'"}}]}"#),
    ], profiles: [profile("calico", #"{"ingress":[{"action":"Allow","source":{"selector":"has(calico)"}}],"egress":[{"action":"Allow"}],"labelsToApply":{"calico":"","biz_type":"bookstore"}}"#)],
               packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "labelsToApply: a label the endpoint lacks is inherited", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"selector":"team == 'books'"}}]}"#),
    ], profiles: [profile("calico", #"{"egress":[{"action":"Allow"}],"labelsToApply":{"team":"books"}}"#)],
               packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "labelsToApply also selects which endpoints a policy applies to", policies: [
        networkPolicy("p", #"{"selector":"team == 'books'","ingress":[{"action":"Deny"}]}"#),
    ], profiles: [profile("calico", #"{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}],"labelsToApply":{"team":"books"}}"#)],
               packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: false),

    // --- Protocols ---
    PolicyCase(name: "protocol by name (UDP) matches UDP", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"UDP"}]}"#),
    ], packet: udp("cali-bf", bf, "cali-bs", bs, 53), accepted: true),
    PolicyCase(name: "protocol by name (UDP) does not match TCP", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"UDP"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 53), accepted: false),
    PolicyCase(name: "protocol by number (17)", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":17}]}"#),
    ], packet: udp("cali-bf", bf, "cali-bs", bs, 53), accepted: true),
    PolicyCase(name: "notProtocol TCP excludes TCP", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","notProtocol":"TCP"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "notProtocol TCP lets UDP through", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","notProtocol":"TCP"}]}"#),
    ], packet: udp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),

    // --- Ports ---
    PolicyCase(name: "port range \"8000:9000\" includes 8080", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":["8000:9000"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 8080), accepted: true),
    PolicyCase(name: "port range excludes 9001", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":["8000:9000"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 9001), accepted: false),
    PolicyCase(name: "notPorts excludes 22", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"notPorts":[22]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 22), accepted: false),
    PolicyCase(name: "notPorts lets 23 through", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"notPorts":[22]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 23), accepted: true),
    PolicyCase(name: "source ports match the sender's port", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","source":{"ports":["40000:40010"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "named port resolves to the endpoint's port (http → 80)", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":["http"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "named port does not match another port", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":["http"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 8080), accepted: false),
    PolicyCase(name: "named port with a protocol the endpoint's port lacks does not match", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"UDP","destination":{"ports":["http"]}}]}"#),
    ], packet: udp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "numbers and named ports combine (either matches)", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":[443,"http"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 443), accepted: true),
    PolicyCase(name: "named notPorts excludes the named port", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"notPorts":["http"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "ports without a protocol make the rule never match", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Deny","destination":{"ports":[80]}},{"action":"Allow"}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),

    // --- Nets ---
    PolicyCase(name: "source nets match", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"nets":["172.29.0.0/30"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "source nets exclude others", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"nets":["172.29.0.0/30"]}}]}"#),
    ], packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "source notNets exclude", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"notNets":["172.29.0.4/32"]}}]}"#),
    ], packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "destination nets on egress", policies: [
        networkPolicy("p", #"{"selector":"biz_type == 'fruitstore'","egress":[{"action":"Allow","destination":{"nets":["10.0.0.0/8","8.8.8.0/24"]}}]}"#),
    ], packet: tcp("cali-ff", ff, "eth0", outside, 53), accepted: true),
    PolicyCase(name: "destination nets on egress exclude others", policies: [
        networkPolicy("p", #"{"selector":"biz_type == 'fruitstore'","egress":[{"action":"Allow","destination":{"nets":["10.0.0.0/8"]}}]}"#),
    ], packet: tcp("cali-ff", ff, "eth0", outside, 53), accepted: false),
    PolicyCase(name: "IPv6 nets only: an IPv4 packet does not match", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"nets":["fd00::/64"]}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "IPv6 nets match an IPv6 packet", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"nets":["fd00::/64"]}}]}"#),
    ], packet: tcp("cali-ff", ip("fd00::4"), "cali-bs", ip("fd00::3"), 80), accepted: true),

    // --- Selectors ---
    PolicyCase(name: "notSelector excludes fruitstore", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"notSelector":"biz_type == 'fruitstore'"}}]}"#),
    ], packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "notSelector in a NetworkPolicy scopes to its namespace (outside source excluded)", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"notSelector":"biz_type == 'fruitstore'"}}]}"#),
    ], packet: tcp("eth0", outside, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "notSelector in a global policy lets a non-endpoint source through", policies: [
        globalPolicy("g", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"notSelector":"biz_type == 'fruitstore'"}}]}"#),
    ], packet: tcp("eth0", outside, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "selector matches IPv6 member addresses", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Deny","source":{"selector":"biz_type == 'fruitstore'"}},{"action":"Allow"}]}"#),
    ], packet: tcp("cali-ff", ip("fd00::4"), "cali-bs", ip("fd00::3"), 80), accepted: false),
    PolicyCase(name: "destination selector on egress", policies: [
        networkPolicy("p", #"{"selector":"biz_type == 'fruitstore'","egress":[{"action":"Allow","destination":{"selector":"role == 'server'"}}]}"#),
    ], packet: tcp("cali-ff", ff, "cali-bs", bs, 80), accepted: true),
    PolicyCase(name: "destination selector on egress excludes non-members", policies: [
        networkPolicy("p", #"{"selector":"biz_type == 'fruitstore'","egress":[{"action":"Allow","destination":{"selector":"role == 'server'"}}]}"#),
    ], packet: tcp("cali-ff", ff, "cali-bf", bf, 80), accepted: false),
    PolicyCase(name: "serviceAccounts never match Mesos endpoints", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","source":{"serviceAccounts":{"names":["web"]}}}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),

    // --- ICMP and IP version ---
    PolicyCase(name: "ICMP type 8 allowed", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"ICMP","icmp":{"type":8}}]}"#),
    ], packet: icmp("cali-bf", bf, "cali-bs", bs, type: 8), accepted: true),
    PolicyCase(name: "ICMP type 8 rule does not match type 13", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"ICMP","icmp":{"type":8}}]}"#),
    ], packet: icmp("cali-bf", bf, "cali-bs", bs, type: 13), accepted: false),
    PolicyCase(name: "ICMP type and code must both match", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"ICMP","icmp":{"type":3,"code":4}}]}"#),
    ], packet: icmp("cali-bf", bf, "cali-bs", bs, type: 3, code: 1), accepted: false),
    PolicyCase(name: "notICMP type 8 excludes echo", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"ICMP","notICMP":{"type":8}}]}"#),
    ], packet: icmp("cali-bf", bf, "cali-bs", bs, type: 8), accepted: false),
    PolicyCase(name: "notICMP type 8 code 0 lets type 8 code 1 through", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"ICMP","notICMP":{"type":8,"code":0}}]}"#),
    ], packet: icmp("cali-bf", bf, "cali-bs", bs, type: 8, code: 1), accepted: true),
    PolicyCase(name: "ICMPv6 rule matches ICMPv6 echo", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","protocol":"ICMPv6","icmp":{"type":128}}]}"#),
    ], packet: icmp("cali-ff", ip("fd00::4"), "cali-bs", ip("fd00::3"), type: 128), accepted: true),
    PolicyCase(name: "ipVersion 6 rule ignores IPv4", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","ipVersion":6}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: false),
    PolicyCase(name: "ipVersion 4 rule matches IPv4", policies: [
        networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Allow","ipVersion":4}]}"#),
    ], packet: tcp("cali-bf", bf, "cali-bs", bs, 80), accepted: true),

    // --- Interfaces, host traffic, spoofing ---
    PolicyCase(name: "traffic from an unknown cali* interface is dropped", packet: tcp("cali-new", ip("172.29.0.50"), "eth0", outside, 80), accepted: false),
    PolicyCase(name: "traffic to an unknown cali* interface is dropped", packet: tcp("eth0", rb, "cali-new", ip("172.29.0.50"), 80), accepted: false),
    PolicyCase(name: "host to an unknown cali* interface is dropped", packet: tcp("", outside, "cali-new", ip("172.29.0.50"), 80).fromHost, accepted: false),
    PolicyCase(name: "host to a known workload is allowed (felix default)", policies: [seed],
               packet: tcp("", outside, "cali-bs", bs, 80).fromHost, accepted: true),
    PolicyCase(name: "non-calico forward traffic is untouched", packet: tcp("eth0", outside, "eth1", ip("10.0.0.1"), 22), accepted: true),
    PolicyCase(name: "workload to host dropped by default (DefaultEndpointToHostAction)", packet: udp("cali-bf", bf, nil, ip("10.0.0.1"), 53), accepted: false),
    PolicyCase(name: "workload to host accepted when configured and egress allows", toHost: .accept,
               packet: udp("cali-bf", bf, nil, ip("10.0.0.1"), 53), accepted: true),
    PolicyCase(name: "workload to host still subject to egress policy", policies: [
        networkPolicy("p", #"{"selector":"biz_type == 'bookstore'","types":["Egress"]}"#),
    ], toHost: .accept, packet: udp("cali-bf", bf, nil, ip("10.0.0.1"), 53), accepted: false),
    PolicyCase(name: "IPv6 neighbour solicitation to the host always allowed",
               packet: icmp("cali-bs", ip("fe80::1"), nil, ip("ff02::1:ff00:1"), type: 135), accepted: true),
    PolicyCase(name: "spoofed source from a workload dropped", packet: tcp("cali-ff", bs, "cali-bf", bf, 80), accepted: false),
]

extension Packet {
    /// The same packet sent by the host itself.
    var fromHost: Packet {
        var p = self
        p.inInterface = nil
        return p
    }
}

@Test(arguments: policyCases)
func evaluator(_ c: PolicyCase) {
    let dp = Cluster.index(c.policies, profiles: c.profiles, endpoints: c.endpoints, endpointToHostAction: c.toHost).dataplane()
    let d = dp.decide(c.packet)
    #expect(d.isAccepted == c.accepted, "\(c.packet): \(d)")
}
