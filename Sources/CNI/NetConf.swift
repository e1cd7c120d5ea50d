import JSON

/// A network configuration as read from stdin.
///
/// The well-known keys are decoded; everything else stays in `raw`, so a plugin reads its
/// own settings with `conf["mtu"]`, `conf["datastore_type"]`, ... . `bytes` keeps stdin
/// exactly as received, because delegated plugins must get identical bytes.
public struct NetConf: Sendable {
    /// The whole config object.
    public var raw: JSON
    /// stdin, byte for byte.
    public var bytes: [UInt8]
    /// `cniVersion` exactly as written ("" when missing); results and errors print it.
    public var cniVersionString: String
    /// The parsed version; nil when the string is not one this library knows (the
    /// dispatcher refuses such configs with code 1 before a plugin sees them).
    public var cniVersion: CNIVersion?
    public var name: String
    public var type: String
    /// The `ipam` object, if any.
    public var ipam: JSON?
    public var dns: CNIResult.DNS
    /// The previous result (CHECK, and DEL from libcni runtimes), in the canonical model.
    public var prevResult: CNIResult?
    public var runtimeConfig: JSON?
    public var args: JSON?

    /// Decodes `bytes`. Throws code 6 when they are not a JSON object or a well-known key
    /// has the wrong type; name and version rules are the dispatcher's (codes 7 and 1).
    public init(bytes: [UInt8]) throws(CNIError) {
        let json: JSON
        do { json = try JSON(parsing: bytes) } catch { throw .decodingFailure("error parsing the network configuration", details: error.description) }
        try self.init(json: json, bytes: bytes)
    }

    /// Decodes an already parsed config; `bytes` should be what it was parsed from.
    public init(json: JSON, bytes: [UInt8]) throws(CNIError) {
        guard case .object(let o) = json else {
            throw .decodingFailure("the network configuration is not a JSON object", details: json.typeName)
        }
        func string(_ key: String) throws(CNIError) -> String {
            guard let v = o[key], !v.isNull else { return "" }
            guard let s = v.stringValue else { throw .decodingFailure("\"\(key)\" must be a string", details: v.compactText) }
            return s
        }
        func object(_ key: String) throws(CNIError) -> JSON? {
            guard let v = o[key], !v.isNull else { return nil }
            guard v.objectValue != nil else { throw .decodingFailure("\"\(key)\" must be an object", details: v.typeName) }
            return v
        }
        raw = json
        self.bytes = bytes
        cniVersionString = try string("cniVersion")
        cniVersion = CNIVersion.fromConfig(cniVersionString)
        name = try string("name")
        type = try string("type")
        ipam = try object("ipam")
        if let ipam, let t = ipam["type"], t.stringValue == nil {
            throw .decodingFailure("\"ipam.type\" must be a string", details: t.compactText)
        }
        dns = try CNIResult.DNS(parsing: o["dns"] ?? .null)
        runtimeConfig = try object("runtimeConfig")
        args = try object("args")
        if let p = try object("prevResult") {
            var prev = p
            // A prevResult without its own version has the config's.
            if prev["cniVersion"] == nil, !cniVersionString.isEmpty { prev["cniVersion"] = .string(cniVersionString) }
            do {
                prevResult = try CNIResult(parsing: prev)
            } catch {
                throw .decodingFailure("invalid prevResult: \(error.msg)", details: error.details)
            }
        }
    }

    /// The config's own key `key` (`conf["mtu"]`, `conf["nodename"]`).
    public subscript(key: String) -> JSON? { raw[key] }

    /// `ipam.type`, when there is an IPAM section.
    public var ipamType: String? { ipam?["type"]?.stringValue }

    /// The version results are printed in ("0.1.0" for a config without one).
    public var resultVersion: String { cniVersionString.isEmpty ? "0.1.0" : cniVersionString }

    /// `log_file_path`, when set: the plugin also logs to this file.
    public var logFilePath: String? { raw["log_file_path"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }

    /// `log_level` (debug, info, warning, error); nil when missing or unknown.
    public var logLevel: CNILogLevel? { raw["log_level"]?.stringValue.flatMap(CNILogLevel.init(name:)) }

    /// What Mesos injected as `args["org.apache.mesos"]["network_info"]`, if anything.
    public var mesosNetworkInfo: MesosNetworkInfo? {
        guard let info = args?["org.apache.mesos"]?["network_info"], info.objectValue != nil else { return nil }
        return MesosNetworkInfo(raw: info)
    }

    /// GC's list of attachments to keep: `cni.dev/valid-attachments`, else the legacy
    /// `cni.dev/attachments`; when neither is present nothing is valid (everything of this
    /// network may be released). Throws code 6 on a malformed list.
    public func validAttachments() throws(CNIError) -> [CNIAttachment] {
        let key = raw["cni.dev/valid-attachments"] != nil ? "cni.dev/valid-attachments" : "cni.dev/attachments"
        guard let list = raw[key], !list.isNull else { return [] }
        guard let items = list.arrayValue else { throw .decodingFailure("\"\(key)\" must be an array") }
        var out: [CNIAttachment] = []
        for (i, item) in items.enumerated() {
            guard let id = item["containerID"]?.stringValue, let ifName = item["ifname"]?.stringValue else {
                throw .decodingFailure("\"\(key)\"[\(i)] needs string \"containerID\" and \"ifname\"", details: item.compactText)
            }
            out.append(CNIAttachment(containerID: id, ifName: ifName))
        }
        return out
    }
}

/// One attachment named in a GC request.
public struct CNIAttachment: Sendable, Hashable {
    public var containerID: String
    public var ifName: String

    public init(containerID: String, ifName: String) {
        self.containerID = containerID
        self.ifName = ifName
    }
}

/// Mesos' `NetworkInfo` as it appears in the config's args (protobuf JSON, snake case).
public struct MesosNetworkInfo: Sendable, Hashable {
    /// One `{"key":..,"value":..}` label.
    public struct Label: Sendable, Hashable {
        public var key: String
        public var value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The whole `network_info` object.
    public var raw: JSON

    public init(raw: JSON) { self.raw = raw }

    /// The network name (`network_info.name`).
    public var name: String? { raw["name"]?.stringValue }

    /// `labels.labels`, in order; `labels` may be `{}` with no inner list. A label without
    /// a value has the empty value.
    public var labels: [Label] {
        guard let list = raw["labels"]?["labels"]?.arrayValue else { return [] }
        return list.compactMap { l in
            guard let k = l["key"]?.stringValue else { return nil }
            return Label(key: k, value: l["value"]?.stringValue ?? "")
        }
    }

    /// The requested protocols of `ip_addresses` ("IPv4", "IPv6"); IPv4 when one leaves it out.
    public var requestedProtocols: [String] {
        guard let list = raw["ip_addresses"]?.arrayValue else { return [] }
        return list.map { $0["protocol"]?.stringValue ?? "IPv4" }
    }

    /// `port_mappings`, present only when the task asked for host ports.
    public var portMappings: [JSON] { raw["port_mappings"]?.arrayValue ?? [] }
}
