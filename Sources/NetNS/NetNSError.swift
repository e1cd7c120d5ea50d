import Glibc
import POSIX

/// Why a network namespace could not be opened or entered.
public enum NetNSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing at the path: the namespace is gone (or never was). CNI DEL treats this as
    /// "already cleaned up".
    case notFound(path: String)
    /// The path exists but is not a namespace handle (not on nsfs), e.g. a plain file
    /// left where a bind mount used to be.
    case notANamespace(path: String)
    /// A system call failed (`open`, `setns`, `pthread_create`).
    case system(Errno)

    public var description: String {
        switch self {
        case .notFound(let path): return "network namespace \(path) does not exist"
        case .notANamespace(let path): return "\(path) is not a network namespace"
        case .system(let errno): return errno.description
        }
    }
}
