import CNI
import IPAddress
import JSON

/// What a result printed at a given `cniVersion` must look like (CNI SPEC.md of that
/// version), judged on the JSON itself so that a member a parser would tolerate, or drop,
/// still counts.
///
/// - 0.1.0, 0.2.0: `ip4` / `ip6` objects (`ip` with prefix length, optional `gateway`,
///   `routes[{dst, gw}]`), optional `dns`; no `ips` or `interfaces`.
/// - 0.3.0, 0.3.1, 0.4.0: `interfaces[{name, mac, sandbox}]`, `ips[{version, interface,
///   address, gateway}]` with `version` "4"/"6" matching the address, `routes`, `dns`.
/// - 1.0.0: the same without `ips[].version`.
/// - 1.1.0: adds interface `mtu`/`socketPath`/`pciID`, route `mtu`/`advmss`/`priority`/
///   `table`/`scope`; below 1.1.0 those members must not appear.
public enum ResultShape {
    /// Every way `result` differs from the shape of `version`, as readable lines; empty
    /// when it conforms. `interfaceName` and `sandbox` are the attachment's `CNI_IFNAME`
    /// and `CNI_NETNS`: from 0.3.0 on, the result must list that interface in that sandbox.
    public static func problems(_ result: JSON, version: CNIVersion, interfaceName: String, sandbox: String) -> [String] {
        guard let object = result.objectValue else { return ["the result is not a JSON object: \(clip(result))"] }
        var out: [String] = []
        if object["cniVersion"]?.stringValue != version.description {
            out.append("cniVersion: expected \"\(version)\", got \(object["cniVersion"].map(clip) ?? "nothing")")
        }
        if let dns = object["dns"], !dns.isNull, dns.objectValue == nil { out.append("dns is not an object: \(clip(dns))") }
        if version.usesLegacyResultShape {
            out += legacyProblems(object)
        } else {
            out += currentProblems(object, version: version, interfaceName: interfaceName, sandbox: sandbox)
        }
        return out
    }

    static func legacyProblems(_ o: [String: JSON]) -> [String] {
        var out: [String] = []
        for key in ["ips", "interfaces"] where o[key] != nil { out.append("\(key) is not part of a 0.1/0.2 result") }
        var found = false
        for (key, v6) in [("ip4", false), ("ip6", true)] {
            guard let config = o[key], !config.isNull else { continue }
            found = true
            guard config.objectValue != nil else { out.append("\(key) is not an object"); continue }
            out += cidr(config["ip"], v6: v6, at: "\(key).ip")
            if let g = config["gateway"], !g.isNull { out += address(g, v6: v6, at: "\(key).gateway") }
            for (i, r) in (config["routes"]?.arrayValue ?? []).enumerated() {
                out += routeProblems(r, at: "\(key).routes[\(i)]", extended: false)
            }
            if let r = config["routes"], !r.isNull, r.arrayValue == nil { out.append("\(key).routes is not an array") }
        }
        if !found { out.append("neither ip4 nor ip6: a 0.1/0.2 result carries its addresses there") }
        return out
    }

    static func currentProblems(_ o: [String: JSON], version: CNIVersion, interfaceName: String, sandbox: String) -> [String] {
        var out: [String] = []
        for key in ["ip4", "ip6"] where o[key] != nil { out.append("\(key) belongs to 0.1/0.2 results, not \(version)") }
        let interfaces = o["interfaces"]?.arrayValue
        if o["interfaces"] != nil && interfaces == nil { out.append("interfaces is not an array") }
        for (i, interface) in (interfaces ?? []).enumerated() {
            let at = "interfaces[\(i)]"
            guard interface.objectValue != nil else { out.append("\(at) is not an object"); continue }
            if interface["name"]?.stringValue?.isEmpty ?? true { out.append("\(at).name is missing") }
            for key in ["mac", "sandbox"] {
                if let v = interface[key], v.stringValue == nil { out.append("\(at).\(key) is not a string") }
            }
            if let mac = interface["mac"]?.stringValue, !mac.isEmpty, !JSONMatcher.isMAC(mac.lowercased()) {
                out.append("\(at).mac is not a MAC address: \(mac)")
            }
            for key in ["mtu", "socketPath", "pciID"] where interface[key] != nil && !version.hasExtendedFields {
                out.append("\(at).\(key) exists only from 1.1.0")
            }
            if version.hasExtendedFields, let m = interface["mtu"], m.intValue == nil { out.append("\(at).mtu is not an integer") }
        }
        let named = (interfaces ?? []).filter { $0["name"]?.stringValue == interfaceName }
        if named.isEmpty {
            out.append("interfaces lists no \(interfaceName)")
        } else if !named.contains(where: { $0["sandbox"]?.stringValue == sandbox }) {
            out.append("interface \(interfaceName) does not name sandbox \(sandbox)")
        }
        guard let ips = o["ips"]?.arrayValue else {
            out.append("ips is missing or not an array")
            return out
        }
        if ips.isEmpty { out.append("ips is empty") }
        for (i, ip) in ips.enumerated() {
            let at = "ips[\(i)]"
            guard ip.objectValue != nil else { out.append("\(at) is not an object"); continue }
            let network = ip["address"]?.stringValue.flatMap { IPNetwork($0) }
            if network == nil { out.append("\(at).address is not an address with prefix length: \(ip["address"].map(clip) ?? "nothing")") }
            if let g = ip["gateway"], !g.isNull { out += address(g, v6: network?.isIPv6, at: "\(at).gateway") }
            if let index = ip["interface"], !index.isNull {
                if let n = index.intValue {
                    if n < 0 || n >= (interfaces?.count ?? 0) { out.append("\(at).interface \(n) is not an index into interfaces") }
                } else {
                    out.append("\(at).interface is not an integer")
                }
            }
            if version.hasIPVersionField {
                let want = network.map { $0.isIPv6 ? "6" : "4" }
                if ip["version"]?.stringValue == nil {
                    out.append("\(at).version is missing (required before 1.0.0)")
                } else if let want, ip["version"]?.stringValue != want {
                    out.append("\(at).version \(clip(ip["version"]!)) does not match \(ip["address"]!.stringValue!)")
                }
            } else if ip["version"] != nil {
                out.append("\(at).version was removed in 1.0.0")
            }
        }
        if let routes = o["routes"], !routes.isNull {
            if let list = routes.arrayValue {
                for (i, r) in list.enumerated() { out += routeProblems(r, at: "routes[\(i)]", extended: version.hasExtendedFields) }
            } else {
                out.append("routes is not an array")
            }
        }
        return out
    }

    static func routeProblems(_ r: JSON, at: String, extended: Bool) -> [String] {
        guard r.objectValue != nil else { return ["\(at) is not an object"] }
        var out = cidr(r["dst"], v6: nil, at: "\(at).dst")
        if let gw = r["gw"], !gw.isNull { out += address(gw, v6: r["dst"]?.stringValue.flatMap { IPNetwork($0) }?.isIPv6, at: "\(at).gw") }
        for key in ["mtu", "advmss", "priority", "table", "scope"] {
            guard let v = r[key] else { continue }
            if !extended { out.append("\(at).\(key) exists only from 1.1.0") } else if v.intValue == nil { out.append("\(at).\(key) is not an integer") }
        }
        return out
    }

    static func cidr(_ v: JSON?, v6: Bool?, at: String) -> [String] {
        guard let s = v?.stringValue, let n = IPNetwork(s) else {
            return ["\(at) is not an address with prefix length: \(v.map(clip) ?? "nothing")"]
        }
        if let v6, n.isIPv6 != v6 { return ["\(at) \(s) is of the wrong family"] }
        return []
    }

    static func address(_ v: JSON, v6: Bool?, at: String) -> [String] {
        guard let s = v.stringValue, let a = IPAddress(s) else { return ["\(at) is not an IP address: \(clip(v))"] }
        if let v6, a.isIPv6 != v6 { return ["\(at) \(s) is of the wrong family"] }
        return []
    }

    static func clip(_ v: JSON) -> String {
        let t = v.compactText
        return t.count > 200 ? String(t.prefix(200)) + "…" : t
    }
}

/// How the Mesos CNI isolator reads a plugin's stdout (REFERENCE.md §1): exactly one JSON
/// object (logs belong on stderr), parsed into the 0.1/0.2 result message, where unknown
/// members are ignored. A result without `ip4` gives the task no address, and behind
/// `mesos-cni-port-mapper` fails the launch.
public enum MesosJudgement {
    /// Why Mesos would not get an IPv4 address for the task from `stdout`; empty when it
    /// would (the address is returned by `address(in:)`).
    public static func problems(stdout: [UInt8]) -> [String] {
        let json: JSON
        do { json = try JSON(parsing: stdout) } catch {
            let text = String(decoding: stdout, as: UTF8.self)
            return ["stdout is not exactly one JSON value (\(error)): \(text.count > 200 ? String(text.prefix(200)) + "…" : text)"]
        }
        guard json.objectValue != nil else { return ["stdout is not a JSON object: \(ResultShape.clip(json))"] }
        guard let ip4 = json["ip4"], !ip4.isNull else {
            let hint = json["ips"] != nil ? " (a 0.3+ result: Mesos reads no address from ips)" : ""
            return ["no ip4 in the result\(hint): the task would get no IP"]
        }
        var out = ResultShape.cidr(ip4["ip"], v6: false, at: "ip4.ip")
        if let g = ip4["gateway"], !g.isNull { out += ResultShape.address(g, v6: false, at: "ip4.gateway") }
        if let ip6 = json["ip6"], !ip6.isNull { out += ResultShape.cidr(ip6["ip"], v6: true, at: "ip6.ip") }
        return out
    }

    /// The task's address as Mesos would record it (`ip4.ip`), if any.
    public static func address(in stdout: [UInt8]) -> IPNetwork? {
        guard let json = try? JSON(parsing: stdout) else { return nil }
        return json["ip4"]?["ip"]?.stringValue.flatMap { IPNetwork($0) }
    }
}
