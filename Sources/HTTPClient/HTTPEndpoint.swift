/// One server address, parsed from `http://host:port` or `https://host:port`.
///
/// etcd endpoints are written like this in Calico's `etcd_endpoints` (a path, if any, is
/// ignored: the gateway lives at the root). IPv6 hosts are bracketed: `http://[::1]:2379`.
public struct HTTPEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Whether the connection uses TLS.
    public var isSecure: Bool
    /// Host name or address literal, without brackets.
    public var host: String
    public var port: UInt16

    public init(isSecure: Bool, host: String, port: UInt16) {
        self.isSecure = isSecure
        self.host = host
        self.port = port
    }

    /// Parses `scheme://host[:port][/path]`; a missing scheme means `http`, a missing port
    /// the scheme's default (80, 443). Returns nil for anything else.
    public init?(parsing text: String) {
        var rest = Substring(text.trimmingSpaces)
        var secure = false
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            switch rest[..<colon].lowercased() {
            case "http": secure = false
            case "https": secure = true
            default: return nil
            }
            rest = rest[rest.index(colon, offsetBy: 3)...]
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty, !host.contains(" ") else { return nil }
        var port: UInt16 = secure ? 443 : 80
        if let portText {
            guard let p = UInt16(portText), p != 0 else { return nil }
            port = p
        }
        self.init(isSecure: secure, host: String(host), port: port)
    }

    /// The `Host` header value: `host:port`, IPv6 bracketed.
    public var authority: String {
        (host.contains(":") ? "[" + host + "]" : host) + ":" + String(port)
    }

    public var description: String { (isSecure ? "https://" : "http://") + authority }
}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s = s.dropLast() }
        return s
    }
}
