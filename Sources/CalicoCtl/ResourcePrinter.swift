import CalicoAPI
import JSON

/// `get`'s output formats.
enum OutputFormat: String {
    case ps, wide, yaml, json

    init(option: String?) throws(UsageError) {
        guard let option else { self = .ps; return }
        guard let f = OutputFormat(rawValue: option.lowercased()) else {
            throw UsageError("unknown output format '\(option)': use ps, wide, yaml or json", command: "get")
        }
        self = f
    }
}

/// Renders resources as upstream calicoctl does.
enum ResourcePrinter {
    /// The resource's JSON as printed (kind, apiVersion, metadata with resourceVersion, spec).
    static func json(_ r: any CalicoResource) -> JSON { r.json }

    /// YAML or JSON of one resource, or of a `…List` when `asList`.
    static func document(_ resources: [any CalicoResource], kind: ResourceKind, asList: Bool, revision: Int64?, format: OutputFormat) -> String {
        let value: JSON
        if asList {
            var meta: [String: JSON] = [:]
            if let revision { meta["resourceVersion"] = .string(String(revision)) }
            value = .object([
                "apiVersion": "projectcalico.org/v3",
                "kind": .string(kind.listName),
                "items": .array(resources.map(json)),
                "metadata": .object(meta),
            ])
        } else {
            value = resources.first.map(json) ?? .null
        }
        return format == .json ? value.prettyText + "\n" : YAMLWriter.text(value)
    }

    /// The `ps` / `wide` table.
    static func table(_ resources: [any CalicoResource], kind: ResourceKind, wide: Bool, showNamespace: Bool) -> String {
        let (header, row) = columns(kind: kind, wide: wide)
        var rows = resources.map { r -> [String] in row(r.json) }
        var heads = header
        if showNamespace && kind.isNamespaced {
            heads.insert("NAMESPACE", at: 0)
            rows = zip(resources, rows).map { [$0.metadata.namespace ?? "default"] + $1 }
        }
        return Table.columns(heads, rows)
    }

    private static func str(_ v: JSON?) -> String {
        guard let v, !v.isNull else { return "" }
        return v.stringValue ?? v.compactText
    }

    private static func list(_ v: JSON?) -> String {
        (v?.arrayValue ?? []).map { str($0) }.joined(separator: ",")
    }

    private static func columns(kind: ResourceKind, wide: Bool) -> ([String], (JSON) -> [String]) {
        let name: (JSON) -> String = { str($0["metadata"]?["name"]) }
        switch kind {
        case .node:
            if !wide { return (["NAME"], { [name($0)] }) }
            return (["NAME", "ASN", "IPV4", "IPV6"], { r in
                let bgp = r["spec"]?["bgp"]
                let asn = str(bgp?["asNumber"])
                return [name(r), asn.isEmpty ? (bgp == nil ? "" : "(64512)") : asn,
                        str(bgp?["ipv4Address"]), str(bgp?["ipv6Address"])]
            })
        case .ipPool:
            let sel: (JSON) -> String = { r in
                let s = str(r["spec"]?["nodeSelector"])
                return s.isEmpty ? "all()" : s
            }
            if !wide { return (["NAME", "CIDR", "SELECTOR"], { [name($0), str($0["spec"]?["cidr"]), sel($0)] }) }
            return (["NAME", "CIDR", "NAT", "IPIPMODE", "VXLANMODE", "DISABLED", "SELECTOR"], { r in
                let s = r["spec"]
                func mode(_ k: String) -> String { let m = str(s?[k]); return m.isEmpty ? "Never" : m }
                return [name(r), str(s?["cidr"]), String(s?["natOutgoing"]?.boolValue ?? false), mode("ipipMode"),
                        mode("vxlanMode"), String(s?["disabled"]?.boolValue ?? false), sel(r)]
            })
        case .workloadEndpoint:
            let workload: (JSON) -> String = { r in
                let s = r["spec"]
                if str(s?["orchestrator"]) == "k8s" { return str(s?["pod"]) }
                let w = str(s?["workload"])
                return w.isEmpty ? str(s?["containerID"]) : w
            }
            if !wide {
                return (["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"], { r in
                    [workload(r), str(r["spec"]?["node"]), list(r["spec"]?["ipNetworks"]), str(r["spec"]?["interfaceName"])]
                })
            }
            return (["NAME", "WORKLOAD", "NODE", "NETWORKS", "INTERFACE", "PROFILES", "NATS"], { r in
                let s = r["spec"]
                let nats = (s?["ipNATs"]?.arrayValue ?? []).map { "\(str($0["externalIP"]))->\(str($0["internalIP"]))" }.joined(separator: ",")
                return [name(r), workload(r), str(s?["node"]), list(s?["ipNetworks"]), str(s?["interfaceName"]),
                        list(s?["profiles"]), nats]
            })
        case .networkPolicy, .globalNetworkPolicy:
            if !wide { return (["NAME"], { [name($0)] }) }
            return (["NAME", "ORDER", "SELECTOR"], { r in
                [name(r), str(r["spec"]?["order"]), str(r["spec"]?["selector"])]
            })
        case .hostEndpoint:
            if !wide { return (["NAME", "NODE"], { [name($0), str($0["spec"]?["node"])] }) }
            return (["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"], { r in
                let s = r["spec"]
                return [name(r), str(s?["node"]), str(s?["interfaceName"]), list(s?["expectedIPs"]), list(s?["profiles"])]
            })
        case .profile:
            if !wide { return (["NAME"], { [name($0)] }) }
            return (["NAME", "LABELS"], { r in
                let labels = (r["spec"]?["labelsToApply"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
                    .map { "\($0.key)=\(str($0.value))" }.joined(separator: ",")
                return [name(r), labels]
            })
        default:
            return (["NAME"], { [name($0)] })
        }
    }
}
