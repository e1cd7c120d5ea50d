import Glibc
import POSIX

/// A failed netlink operation: the kernel's error number, what we asked for, and the
/// kernel's own explanation when it gave one (extended ACK, e.g. "Nexthop device is not up").
///
/// Socket-level failures (`socket`, `sendmsg`, `recvmsg`) use the same type with the
/// system call as the operation, so callers handle one error type.
public struct NetlinkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error number (`ENODEV`, `EEXIST`, ...), positive.
    public var code: Int32
    /// What was being done, in `ip` terms: "ip link add cali0123456789a type veth peer name eth0".
    public var operation: String
    /// The kernel's extended-ACK message, when it sent one.
    public var kernelMessage: String?

    public init(code: Int32, operation: String, kernelMessage: String? = nil) {
        self.code = code
        self.operation = operation
        self.kernelMessage = kernelMessage
    }

    /// Wraps a failed system call on the socket.
    public init(_ errno: Errno) {
        self.init(code: errno.code, operation: errno.call)
    }

    /// The object does not exist: no such device (`ENODEV`), no such entry (`ENOENT`,
    /// `ESRCH`, the route/neighbour/address answers). DEL treats this as "already gone".
    public var isNotFound: Bool {
        code == Errno.ENODEV || code == Errno.ENOENT || code == Errno.ESRCH || code == EADDRNOTAVAIL
    }

    /// The object already exists (`EEXIST`).
    public var isAlreadyExists: Bool { code == Errno.EEXIST }

    public var description: String {
        var text = "\(operation): \(String(cString: strerror(code)))"
        if let kernelMessage, !kernelMessage.isEmpty { text += " (\(kernelMessage))" }
        return text
    }
}
