import CNetlinkShims
import Glibc
import POSIX
import Synchronization

/// A routing netlink socket (`AF_NETLINK`, `NETLINK_ROUTE`) that owns its descriptor.
///
/// The socket belongs to the network namespace of the thread that created it, for its
/// whole life, whichever thread later uses it. So to work inside a container, open the
/// socket once inside the namespace (`NetworkNamespace.run { try NetlinkSocket() }`) and
/// use it from anywhere: no thread ever has to stay switched. One request runs at a time
/// per socket (an internal lock), so a socket may be shared between threads.
///
/// Every command asks for an ACK, so a kernel refusal surfaces as a `NetlinkError` naming
/// the operation, with the kernel's extended-ACK text when it has one.
public final class NetlinkSocket: Sendable {
    let descriptor: CInt
    private let port: UInt32
    private let state: Mutex<State>

    private struct State {
        var nextSequence: UInt32
        var buffer: [UInt8]
    }

    /// The receive buffer: the kernel sizes dump datagrams to at most 32 KiB
    /// (`netlink_dump`), so 64 KiB never truncates.
    private static let bufferSize = 65536

    /// Opens and binds a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    ///
    /// The corresponding C calls are `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)` and `bind`.
    public init() throws(NetlinkError) {
        let (fd, port) = try Self.open()
        // Extended ACKs give readable kernel messages; capped ACKs keep error replies small;
        // strict checking makes the kernel filter dumps by the header's index/table. All
        // three are optional: older kernels refuse them and we filter on our side anyway.
        for option in [NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK] { Self.enable(option, on: fd) }
        descriptor = fd
        self.port = port
        state = Mutex(State(nextSequence: 1, buffer: [UInt8](repeating: 0, count: NetlinkSocket.bufferSize)))
    }

    deinit { close(descriptor) }

    /// A bound `NETLINK_ROUTE` socket of the calling thread's namespace, subscribed to
    /// `groups`: its descriptor and port. `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`, `bind`.
    static func open(groups: UInt32 = 0, nonBlocking: Bool = false) throws(NetlinkError) -> (descriptor: CInt, port: UInt32) {
        let flags = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd: CInt
        do {
            fd = try syscallRetrying("socket(AF_NETLINK)") { socket(AF_NETLINK, flags, NETLINK_ROUTE) }
        } catch { throw NetlinkError(error) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = groups
        var length = socklen_t(MemoryLayout<sockaddr_nl>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic -> CInt in
                if bind(fd, generic, length) != 0 { return -1 }
                return getsockname(fd, generic, &length)
            }
        }
        if bound != 0 {
            let error = NetlinkError(Errno.current("bind(AF_NETLINK)"))
            close(fd)
            throw error
        }
        return (fd, address.nl_pid)
    }

    /// Sets a `SOL_NETLINK` option to 1; whether the kernel took it.
    @discardableResult
    static func enable(_ option: Int32, on fd: CInt) -> Bool {
        var on: CInt = 1
        return setsockopt(fd, cnl_sol_netlink(), option, &on, socklen_t(MemoryLayout<CInt>.size)) == 0
    }

    /// Sends one command and waits for its ACK.
    public func perform(_ request: NetlinkRequest) throws(NetlinkError) {
        try perform([request])
    }

    /// Sends several commands in one datagram and waits for every ACK.
    ///
    /// The kernel executes all of them in order even when one fails (it does not stop at
    /// the first error), so a later request may fail as a consequence of an earlier one;
    /// the first failure in request order is thrown.
    public func perform(_ requests: [NetlinkRequest]) throws(NetlinkError) {
        if requests.isEmpty { return }
        for result in try exchange(requests) {
            if case .failure(let error) = result { throw error }
        }
    }

    /// Sends several commands in one datagram and returns each one's outcome in order:
    /// nil for success, the kernel's error otherwise. Throws only for socket failures.
    ///
    /// For batches where some failures are expected and handled (a route that may already
    /// exist), without a round trip per request.
    public func performEach(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [NetlinkError?] {
        if requests.isEmpty { return [] }
        return try exchange(requests).map { result in
            if case .failure(let error) = result { return error }
            return nil
        }
    }

    /// Sends `requests` in one datagram and collects, per request, its reply messages or
    /// its error. Throws only for socket failures.
    func exchange(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [Result<[ReceivedMessage], NetlinkError>] {
        let fd = descriptor
        let port = self.port
        return try state.withLock { (state) throws(NetlinkError) -> [Result<[ReceivedMessage], NetlinkError>] in
            var first = state.nextSequence
            if first > UInt32.max - UInt32(requests.count) { first = 1 }  // wrap, skipping 0
            state.nextSequence = first + UInt32(requests.count)
            return try Self.exchange(requests, first: first, fd: fd, port: port, state: &state)
        }
    }

    private static func exchange(
        _ requests: [NetlinkRequest], first: UInt32, fd: CInt, port: UInt32, state: inout State
    ) throws(NetlinkError) -> [Result<[ReceivedMessage], NetlinkError>] {
        var datagram: [UInt8] = []
        for (i, request) in requests.enumerated() {
            var bytes = request.message.finished()
            bytes.storeInteger(first &+ UInt32(i), at: MessageHeader.sequenceOffset)
            datagram.append(contentsOf: bytes)
        }
        do throws(Errno) {
            let sent = try syscallRetrying("sendmsg(NETLINK_ROUTE)") {
                datagram.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            }
            if sent != datagram.count { throw Errno(EMSGSIZE, call: "sendmsg(NETLINK_ROUTE)") }
        } catch { throw NetlinkError(error) }

        var replies = [[ReceivedMessage]](repeating: [], count: requests.count)
        var results = [Result<[ReceivedMessage], NetlinkError>?](repeating: nil, count: requests.count)
        var interrupted = [Bool](repeating: false, count: requests.count)
        var pending = requests.count
        while pending > 0 {
            let received: Int
            do throws(Errno) {
                received = try syscallRetrying("recvmsg(NETLINK_ROUTE)") {
                    state.buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_TRUNC)) }
                }
            } catch { throw NetlinkError(error) }
            if received > state.buffer.count {
                throw NetlinkError(code: EMSGSIZE, operation: "recvmsg(NETLINK_ROUTE): reply of \(received) bytes truncated")
            }
            let datagram = Array(state.buffer[0..<received])
            for message in ReceivedMessage.split(datagram[...]) {
                let index = Int(message.sequence &- first)
                guard message.port == port || message.port == 0, index >= 0, index < requests.count,
                    results[index] == nil
                else { continue }  // a stale reply to an abandoned request; not ours
                switch Int32(message.type) {
                case NLMSG_NOOP:
                    continue
                case NLMSG_ERROR:
                    let code = -(message.payload.integer(at: 0, as: Int32.self) ?? -EPROTO)
                    if code == 0 {
                        results[index] = .success(replies[index])
                    } else {
                        results[index] = .failure(
                            NetlinkError(
                                code: code, operation: requests[index].operation,
                                kernelMessage: extendedAckMessage(message)))
                    }
                    pending -= 1
                case NLMSG_DONE:
                    // A dump's end; its payload is an int, negative when the dump failed.
                    let code = -(message.payload.integer(at: 0, as: Int32.self) ?? 0)
                    if code > 0 {
                        results[index] = .failure(
                            NetlinkError(
                                code: code, operation: requests[index].operation,
                                kernelMessage: extendedAckMessage(message)))
                    } else if interrupted[index] {
                        results[index] = .failure(
                            NetlinkError(
                                code: EINTR, operation: requests[index].operation,
                                kernelMessage: "dump interrupted by a concurrent change"))
                    } else {
                        results[index] = .success(replies[index])
                    }
                    pending -= 1
                default:
                    if Int32(message.flags) & NLM_F_DUMP_INTR != 0 { interrupted[index] = true }
                    replies[index].append(message)
                }
            }
        }
        return results.map { $0! }
    }

    // struct nlmsgerr {
    //     int error;              /* -errno, or 0 for an ACK */
    //     struct nlmsghdr msg;    /* the request's header (and payload unless NLM_F_CAPPED) */
    //     /* followed, with NLM_F_ACK_TLVS, by attributes: NLMSGERR_ATTR_MSG, ... */
    // };
    private static func extendedAckMessage(_ message: ReceivedMessage) -> String? {
        let flags = Int32(message.flags)
        guard flags & NLM_F_ACK_TLVS != 0 else { return nil }
        let payload = message.payload
        var offset = 4 + MessageHeader.size
        if message.type == UInt16(NLMSG_DONE) {
            offset = 4
        } else if flags & NLM_F_CAPPED == 0 {
            guard let originalLength = payload.integer(at: 4, as: UInt32.self) else { return nil }
            offset = 4 + Int(originalLength)
        }
        offset = netlinkAligned(offset)
        guard offset < payload.count else { return nil }
        let tlvs = Attributes(payload[(payload.startIndex + offset)...])
        return tlvs.string(Int(NLMSGERR_ATTR_MSG.rawValue))
    }

    /// Runs one `get` request and returns its single reply.
    func get(_ request: NetlinkRequest) throws(NetlinkError) -> ReceivedMessage {
        let result = try exchange([request])[0]
        switch result {
        case .success(let messages):
            guard let reply = messages.first else {
                throw NetlinkError(code: EPROTO, operation: request.operation, kernelMessage: "no reply")
            }
            return reply
        case .failure(let error):
            throw error
        }
    }

    /// Runs one dump request, retrying when a concurrent change interrupted it.
    func dump(_ request: NetlinkRequest) throws(NetlinkError) -> [ReceivedMessage] {
        var attempt = 0
        while true {
            switch try exchange([request])[0] {
            case .success(let messages):
                return messages
            case .failure(let error) where error.code == EINTR && attempt < 5:
                attempt += 1
            case .failure(let error):
                throw error
            }
        }
    }
}
