import Datastore
import POSIX

extension DatastoreSettings {
    /// calicoctl's config file.
    public static let defaultConfigFile = "/etc/calico/calicoctl.cfg"

    /// The environment variables read by `init(environment:configFile:)`.
    public static let environmentVariables = [
        "DATASTORE_TYPE", "SQLITE_PATH", "ETCD_ENDPOINTS", "ETCD_CA_CERT_FILE", "ETCD_CERT_FILE", "ETCD_KEY_FILE",
    ]

    /// The datastore calicoctl and calico-felix use, in upstream calicoctl's order: the
    /// config file when it exists (upstream's `CalicoAPIConfig`: `spec.datastoreType`,
    /// `spec.etcdEndpoints`, `spec.etcdCACertFile`, `spec.etcdCertFile`, `spec.etcdKeyFile`,
    /// and our `spec.sqlitePath`); else the environment (`DATASTORE_TYPE`, `SQLITE_PATH`,
    /// `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`); else the
    /// default SQLite file. The backend is chosen as for a CNI config: etcd v3 when only
    /// endpoints are given.
    ///
    /// - Parameter environment: the process environment, injected so tests need no `setenv`.
    public init(environment: [String: String], configFile: String = DatastoreSettings.defaultConfigFile)
        throws(DatastoreSettingsError) {
        let text: String?
        do {
            text = try Files.readText(configFile)
        } catch where error.code == Errno.ENOENT {
            text = nil
        } catch {
            throw .unreadableFile(path: configFile, reason: "\(error)")
        }
        if let text {
            self = try Self(configFileText: text, path: configFile)
            return
        }
        func field(_ name: String) -> RawSettings.Field { .init(name: name, value: environment[name]) }
        let raw = RawSettings(datastoreType: field("DATASTORE_TYPE"), sqlitePath: field("SQLITE_PATH"),
                              etcdEndpoints: field("ETCD_ENDPOINTS"), etcdCACertFile: field("ETCD_CA_CERT_FILE"),
                              etcdCertFile: field("ETCD_CERT_FILE"), etcdKeyFile: field("ETCD_KEY_FILE"))
        self = try raw.resolve()
    }

    /// Settings from the text of a calicoctl config file (`path` names it in errors).
    public init(configFileText text: String, path: String = DatastoreSettings.defaultConfigFile) throws(DatastoreSettingsError) {
        let file = try CalicoAPIConfigFile(parsing: text, path: path)
        if let kind = file.scalars["kind"], kind.lowercased() != "calicoapiconfig" {
            throw .invalidValue(key: "kind", reason: "\"\(kind)\" in \(path) is not CalicoAPIConfig")
        }
        let spec = file.sections["spec"] ?? [:]
        func field(_ name: String) -> RawSettings.Field { .init(name: "spec." + name, value: spec[name]) }
        let raw = RawSettings(datastoreType: field("datastoreType"), sqlitePath: field("sqlitePath"),
                              etcdEndpoints: field("etcdEndpoints"), etcdCACertFile: field("etcdCACertFile"),
                              etcdCertFile: field("etcdCertFile"), etcdKeyFile: field("etcdKeyFile"))
        self = try raw.resolve()
    }
}
