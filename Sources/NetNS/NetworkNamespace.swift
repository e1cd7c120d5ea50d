import CNetlinkShims
import Glibc
import POSIX

/// A handle on a network namespace that owns an open descriptor to it.
///
/// A namespace is named by a file on nsfs: `/var/run/netns/<name>` (`ip netns add`),
/// `/proc/<pid>/ns/net`, or a bind mount of one (Mesos keeps
/// `/var/run/mesos/isolators/network/cni/<cid>/ns`). Holding the descriptor keeps the
/// namespace alive even if the file is unmounted meanwhile.
///
/// Two ways to work inside it without ever switching a thread you did not create:
/// - open a socket inside it with `run` (a netlink socket stays bound to the namespace it
///   was created in and can then be used from any thread);
/// - `run` a short synchronous body (e.g. `/proc/sys` writes) on a dedicated thread.
public final class NetworkNamespace: Sendable {
    /// The path it was opened from.
    public let path: String
    /// The open descriptor (`O_RDONLY | O_CLOEXEC`), valid for the handle's lifetime; pass it
    /// to `IFLA_NET_NS_FD` (`VethPair.peerNamespaceDescriptor`) to create links inside.
    public let descriptor: CInt

    /// Opens the namespace at `path`.
    ///
    /// Throws `.notFound` when nothing is there, `.notANamespace` when the file is not an
    /// nsfs (or, on old kernels, procfs) handle. The corresponding C call is `open`.
    public init(path: String) throws(NetNSError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw .notFound(path: path) }
            throw .system(Errno(code, call: "open \(path)"))
        }
        var info = statfs()
        let isNamespace =
            fstatfs(fd, &info) == 0
            && (Int(info.f_type) == cnl_nsfs_magic() || Int(info.f_type) == cnl_procfs_magic())
        if !isNamespace {
            close(fd)
            throw .notANamespace(path: path)
        }
        self.path = path
        self.descriptor = fd
    }

    /// The namespace `ip netns add NAME` created: `/var/run/netns/NAME`.
    public convenience init(named name: String) throws(NetNSError) {
        try self.init(path: "/var/run/netns/\(name)")
    }

    /// The namespace of a process: `/proc/PID/ns/net`.
    public convenience init(processID: pid_t) throws(NetNSError) {
        try self.init(path: "/proc/\(processID)/ns/net")
    }

    /// The namespace of the calling thread (`/proc/thread-self/ns/net`).
    public static func current() throws(NetNSError) -> NetworkNamespace {
        try NetworkNamespace(path: "/proc/thread-self/ns/net")
    }

    deinit { close(descriptor) }

    /// The namespace's identity (device and inode of its nsfs file), equal for two handles
    /// on the same namespace; what `ip netns identify` compares.
    public var identity: NamespaceIdentity {
        var info = stat()
        fstat(descriptor, &info)
        return NamespaceIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Runs `body` synchronously on a new thread that has entered this namespace, and
    /// returns its result. The calling thread never changes namespace.
    ///
    /// Everything the body opens that is namespace-bound stays bound to this namespace:
    /// sockets (`NetlinkSocket()`), `/proc/sys/net` files. The body must not suspend
    /// (it is not async) and should be short: it holds up the caller, who waits for it.
    /// The thread ends with the body, so no thread is left in the namespace.
    ///
    /// Throws `NetNSError` when the thread cannot be started or cannot enter the
    /// namespace (`setns`), otherwise whatever the body throws.
    public func run<Result>(_ body: () throws -> Result) throws -> Result {
        try withoutActuallyEscaping(body) { escapable throws -> Result in
            let job = NamespaceJob<Result>(descriptor: descriptor, body: escapable)
            try job.runOnNewThread()
            switch job.outcome! {
            case .success(let value): return value
            case .failure(let error): throw error
            }
        }
    }
}

/// Identifies a namespace (device and inode of its nsfs file).
public struct NamespaceIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
}

/// One `run` call: the body, the namespace to enter, and the result, shared between the
/// caller and the thread. The caller waits in `pthread_join`, which orders the thread's
/// writes before the caller's reads, so no lock is needed.
private final class NamespaceJob<Result>: ThreadEntry {
    let descriptor: CInt
    let body: () throws -> Result
    var outcome: Swift.Result<Result, any Error>?

    init(descriptor: CInt, body: @escaping () throws -> Result) {
        self.descriptor = descriptor
        self.body = body
        super.init()
    }

    func runOnNewThread() throws(NetNSError) {
        // A class method as the entry point: no dynamic cast (see `ThreadEntry`).
        let context = Unmanaged<ThreadEntry>.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<ThreadEntry>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, context)
        if created != 0 {
            Unmanaged<ThreadEntry>.fromOpaque(context).release()
            throw .system(Errno(created, call: "pthread_create"))
        }
        pthread_join(thread, nil)
    }

    override func run() {
        // setns(CLONE_NEWNET) moves only this thread; it ends right after the body, so it
        // never has to switch back.
        if cnl_setns(descriptor, cnl_clone_newnet()) != 0 {
            outcome = .failure(NetNSError.system(Errno.current("setns")))
            return
        }
        do {
            outcome = .success(try body())
        } catch {
            outcome = .failure(error)
        }
    }
}
