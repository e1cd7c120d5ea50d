import Datastore

/// The datastore fields common to every source (CNI config, environment, calicoctl.cfg),
/// before validation, with the name each field has in that source for error messages.
struct RawSettings {
    /// A field's value and the name the user knows it by.
    struct Field {
        var name: String
        var value: String?
    }

    var datastoreType: Field
    var sqlitePath: Field
    var etcdEndpoints: Field
    var etcdCACertFile: Field
    var etcdCertFile: Field
    var etcdKeyFile: Field
    var timeout: Double = DatastoreSettings.defaultTimeout

    /// Validates the fields and picks the backend: `datastoreType` when given, else etcd v3
    /// when endpoints are given (DC/OS's calico.conf has only `etcd_endpoints`), else SQLite.
    func resolve() throws(DatastoreSettingsError) -> DatastoreSettings {
        let type = datastoreType.value.flatMap(nonEmpty)?.lowercased()
        let endpoints = etcdEndpoints.value.flatMap(nonEmpty)
        switch type ?? (endpoints != nil ? "etcdv3" : "sqlite") {
        case "sqlite":
            var path = DatastoreSettings.defaultSQLitePath
            if let given = sqlitePath.value.flatMap(nonEmpty) {
                guard given.hasPrefix("/") else {
                    throw .invalidValue(key: sqlitePath.name, reason: "\"\(given)\" is not an absolute path")
                }
                path = given
            }
            return .sqlite(SQLiteSettings(path: path, timeout: timeout))
        case "etcdv3":
            guard let endpoints else {
                throw .invalidValue(key: etcdEndpoints.name, reason: "required when the datastore type is etcdv3")
            }
            let list = try Self.endpoints(endpoints, key: etcdEndpoints.name)
            let ca = try file(etcdCACertFile), cert = try file(etcdCertFile), key = try file(etcdKeyFile)
            if (cert == nil) != (key == nil) {
                let missing = cert == nil ? etcdCertFile.name : etcdKeyFile.name
                let present = cert == nil ? etcdKeyFile.name : etcdCertFile.name
                throw .invalidValue(key: missing, reason: "required when \(present) is set (a client certificate needs its key)")
            }
            return .etcdv3(EtcdSettings(endpoints: list, caCertFile: ca, certFile: cert, keyFile: key, timeout: timeout))
        case let other:
            throw .invalidValue(key: datastoreType.name, reason: "\"\(other)\" is not a supported datastore type (use \"sqlite\" or \"etcdv3\")")
        }
    }

    /// Splits `http://a:2379,https://b:2379` and checks each endpoint's scheme and host.
    static func endpoints(_ text: String, key: String) throws(DatastoreSettingsError) -> [String] {
        var out: [String] = []
        for part in text.split(separator: ",") {
            var endpoint = String(part.filter { !$0.isWhitespace })
            if endpoint.isEmpty { continue }
            while endpoint.hasSuffix("/") { endpoint.removeLast() }
            let rest: Substring
            if endpoint.hasPrefix("http://") {
                rest = endpoint.dropFirst(7)
            } else if endpoint.hasPrefix("https://") {
                rest = endpoint.dropFirst(8)
            } else {
                throw .invalidValue(key: key, reason: "\"\(endpoint)\" must start with http:// or https://")
            }
            if rest.isEmpty || rest.hasPrefix(":") || rest.contains("/") {
                throw .invalidValue(key: key, reason: "\"\(endpoint)\" is not of the form scheme://host[:port]")
            }
            out.append(endpoint)
        }
        if out.isEmpty { throw .invalidValue(key: key, reason: "no endpoint given") }
        return out
    }

    private func file(_ field: Field) throws(DatastoreSettingsError) -> String? {
        guard let path = field.value.flatMap(nonEmpty) else { return nil }
        guard path.hasPrefix("/") else {
            throw .invalidValue(key: field.name, reason: "\"\(path)\" is not an absolute path")
        }
        return path
    }
}

/// `s` trimmed of surrounding whitespace, or nil when nothing is left.
func nonEmpty(_ s: String) -> String? {
    let t = trimmed(s)
    return t.isEmpty ? nil : t
}

/// `s` without leading and trailing spaces, tabs and line breaks.
func trimmed<S: StringProtocol>(_ s: S) -> String {
    guard let first = s.firstIndex(where: { !$0.isWhitespace }), let last = s.lastIndex(where: { !$0.isWhitespace }) else { return "" }
    return String(s[first...last])
}
