#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error number from a failed system call, with the call's name.
///
/// Every syscall in the project goes through `syscallRetrying` (or a wrapper built on it),
/// which turns −1 into this type and retries `EINTR`.
public struct Errno: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int32
    /// The system call or operation that failed ("socket", "open /proc/sys/...").
    public var call: String

    public init(_ code: Int32, call: String) {
        self.code = code
        self.call = call
    }

    /// The current `errno` of the calling thread.
    public static func current(_ call: String) -> Errno { Errno(errno, call: call) }

    public var description: String { "\(call): \(String(cString: strerror(code)))" }

    public static let ENOENT: Int32 = Glibc.ENOENT
    public static let EEXIST: Int32 = Glibc.EEXIST
    public static let EINTR: Int32 = Glibc.EINTR
    public static let EAGAIN: Int32 = Glibc.EAGAIN
    public static let ENODEV: Int32 = Glibc.ENODEV
    public static let ESRCH: Int32 = Glibc.ESRCH
    public static let EBUSY: Int32 = Glibc.EBUSY
    public static let EINVAL: Int32 = Glibc.EINVAL
    public static let EPERM: Int32 = Glibc.EPERM
    public static let ENOTDIR: Int32 = Glibc.ENOTDIR
}

/// Runs a system call, retrying on `EINTR`; −1 becomes a thrown `Errno` naming `call`.
@inlinable
public func syscallRetrying<T: FixedWidthInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(Errno) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw Errno(e, call: call())
    }
}
