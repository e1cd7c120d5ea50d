/// Where a process finds the datastore. The plugins read it from the CNI config JSON
/// (Mesos strips the environment); calicoctl and calico-felix from env or
/// `/etc/calico/calicoctl.cfg`. The `Datastores` target turns it into a live store.
public enum DatastoreSettings: Sendable, Hashable {
    /// The embedded store: one SQLite file (default `/var/lib/calico/calico.db`).
    case sqlite(SQLiteSettings)
    /// An etcd v3 cluster.
    case etcdv3(EtcdSettings)

    /// The bound on one datastore call, whichever the backend.
    public var timeout: Double {
        switch self {
        case .sqlite(let s): return s.timeout
        case .etcdv3(let e): return e.timeout
        }
    }

    public static let defaultSQLitePath = "/var/lib/calico/calico.db"
    /// Default bound on one datastore call, in seconds.
    public static let defaultTimeout: Double = 5
}

public struct SQLiteSettings: Sendable, Hashable {
    public var path: String
    /// How long one call may wait for the file's lock and work before `.timeout`.
    public var timeout: Double

    public init(path: String = DatastoreSettings.defaultSQLitePath, timeout: Double = DatastoreSettings.defaultTimeout) {
        self.path = path
        self.timeout = timeout
    }
}

public struct EtcdSettings: Sendable, Hashable {
    /// `http://host:port` or `https://host:port`, tried in order (failover).
    public var endpoints: [String]
    public var caCertFile: String?
    public var certFile: String?
    public var keyFile: String?
    /// Bound on one call (connect + request + answer), in seconds.
    public var timeout: Double

    public init(endpoints: [String], caCertFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
                timeout: Double = DatastoreSettings.defaultTimeout) {
        self.endpoints = endpoints
        self.caCertFile = caCertFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.timeout = timeout
    }
}
