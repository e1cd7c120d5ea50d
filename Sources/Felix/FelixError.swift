import Datastore
import Datastores

/// Why felix could not do something. Each case says what to look at.
public enum FelixError: Error, Sendable, CustomStringConvertible {
    /// `nft` is not installed (felix programs the kernel through it).
    case nftNotFound
    /// `nft` refused a script or could not run.
    case nft(command: String, status: String, stderr: String)
    /// The datastore failed.
    case datastore(DatastoreError)
    /// The datastore settings (env or calicoctl.cfg) are unusable.
    case settings(DatastoreSettingsError)
    /// A command-line argument is wrong.
    case usage(String)

    public var description: String {
        switch self {
        case .nftNotFound: return "nft not found (install nftables); looked in /usr/sbin, /sbin, /usr/bin, /bin"
        case .nft(let command, let status, let stderr): return "nft \(command) failed (\(status)): \(stderr)"
        case .datastore(let e): return e.description
        case .settings(let e): return "datastore settings: \(e)"
        case .usage(let m): return m
        }
    }
}
