import NetNS
import Netlink
import POSIX

/// Why the workload dataplane could not be set up, torn down or checked.
public enum DataplaneError: Error, Sendable, CustomStringConvertible {
    /// The kernel refused a netlink request (the operation and errno are inside).
    case netlink(NetlinkError)
    /// A namespace could not be opened or entered (`.notFound` when it is gone).
    case namespace(NetNSError)
    /// A `/proc/sys` setting could not be read or written.
    case sysctl(Errno)
    /// The container already has an interface with this name that is not the peer of our
    /// host veth (another plugin's, or a leftover whose host end has another name).
    case containerInterfaceExists(name: String, namespacePath: String)
    /// A host veth of this name exists and was not to be replaced (`prepareVeth` before
    /// IPAM has said whether the attachment is live).
    case hostVethExists(name: String)

    public var description: String {
        switch self {
        case .netlink(let error): return error.description
        case .namespace(let error): return error.description
        case .sysctl(let error): return error.description
        case .containerInterfaceExists(let name, let path):
            return "interface \(name) already exists in container namespace \(path)"
        case .hostVethExists(let name):
            return "host interface \(name) already exists"
        }
    }

    /// Maps whatever a namespace-bound body threw to this type.
    static func wrapping(_ error: any Error) -> DataplaneError {
        switch error {
        case let error as DataplaneError: return error
        case let error as NetlinkError: return .netlink(error)
        case let error as NetNSError: return .namespace(error)
        case let error as Errno: return .sysctl(error)
        default: preconditionFailure("dataplane bodies throw only netlink, namespace and errno errors: \(error)")
        }
    }
}
