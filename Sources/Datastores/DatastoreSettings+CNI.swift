import Datastore
import JSON

extension DatastoreSettings {
    /// The datastore a plugin uses, read from its CNI network config (Mesos gives plugins no
    /// environment, so the config is the only source).
    ///
    /// Keys: `datastore_type` (`"sqlite"` or `"etcdv3"`; when absent, `"etcdv3"` if
    /// `etcd_endpoints` is set, as in DC/OS's calico.conf, else `"sqlite"`), `sqlite_path`
    /// (default `/var/lib/calico/calico.db`), `etcd_endpoints` (comma-separated
    /// `http(s)://host:port`, or an array of them), `etcd_ca_cert_file`, `etcd_cert_file`,
    /// `etcd_key_file`, and `datastore_timeout` (seconds per call, default 5).
    /// An unusable value throws `.invalidValue` naming its key.
    public init(cniConfig config: JSON) throws(DatastoreSettingsError) {
        func string(_ key: String) throws(DatastoreSettingsError) -> RawSettings.Field {
            switch config[key] {
            case nil, .null?: return .init(name: key, value: nil)
            case .string(let s)?: return .init(name: key, value: s)
            case let other?: throw .invalidValue(key: key, reason: "expected a string, got \(other.typeName)")
            }
        }
        var endpoints = RawSettings.Field(name: "etcd_endpoints", value: nil)
        switch config["etcd_endpoints"] {
        case .array(let items)?:
            var parts: [String] = []
            for item in items {
                guard let s = item.stringValue else {
                    throw .invalidValue(key: "etcd_endpoints", reason: "expected strings in the array, got \(item.typeName)")
                }
                parts.append(s)
            }
            endpoints.value = parts.joined(separator: ",")
        default:
            endpoints = try string("etcd_endpoints")
        }
        var raw = RawSettings(datastoreType: try string("datastore_type"), sqlitePath: try string("sqlite_path"),
                              etcdEndpoints: endpoints, etcdCACertFile: try string("etcd_ca_cert_file"),
                              etcdCertFile: try string("etcd_cert_file"), etcdKeyFile: try string("etcd_key_file"))
        switch config["datastore_timeout"] {
        case nil, .null?:
            break
        case let value?:
            guard let seconds = value.doubleValue, seconds > 0, seconds.isFinite else {
                throw .invalidValue(key: "datastore_timeout", reason: "expected a positive number of seconds, got \(value.compactText)")
            }
            raw.timeout = seconds
        }
        self = try raw.resolve()
    }
}
