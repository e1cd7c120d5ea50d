/// Why datastore settings could not be read. Each case names what the user must fix: the
/// config key, environment variable or file line.
public enum DatastoreSettingsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A setting has a value we cannot use. `key` is spelled as the user wrote it
    /// (`etcd_endpoints` in a CNI config, `ETCD_ENDPOINTS` in the environment,
    /// `spec.etcdEndpoints` in calicoctl.cfg).
    case invalidValue(key: String, reason: String)
    /// The config file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// The config file is not the flat `CalicoAPIConfig` YAML (or JSON) we read.
    case malformedFile(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .invalidValue(let key, let reason):
            return "invalid datastore setting \(key): \(reason)"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .malformedFile(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        }
    }
}
