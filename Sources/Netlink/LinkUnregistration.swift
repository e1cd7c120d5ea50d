import CNetlinkShims
import Glibc
import POSIX

/// The link notifications (`RTNLGRP_LINK`) of one network namespace: the namespace of the
/// thread that opened the listener, for the listener's whole life. `ip monitor link`.
public final class LinkEventListener: Sendable {
    let descriptor: CInt

    /// Subscribes, in the calling thread's network namespace. Notifications sent before
    /// this returns are not seen.
    public init() throws(NetlinkError) {
        let fd: CInt
        do {
            fd = try syscallRetrying("socket(AF_NETLINK)") {
                socket(
                    AF_NETLINK,
                    Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                    NETLINK_ROUTE)
            }
        } catch { throw NetlinkError(error) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = UInt32(RTMGRP_LINK)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        if bound != 0 {
            let error = NetlinkError(Errno.current("bind(RTNLGRP_LINK)"))
            close(fd)
            throw error
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// What reading the queued notifications found.
    enum Drained {
        /// The indexes of the links deleted (`RTM_DELLINK`), in order.
        case deleted([Int32])
        /// The socket overflowed (`ENOBUFS`): notifications were lost, so none can be
        /// relied on any more.
        case overflowed
    }

    /// Reads every notification queued now, without blocking.
    func drain() -> Drained {
        var deleted: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                switch errno {
                case EINTR: continue
                case ENOBUFS: return .overflowed
                default: return .deleted(deleted)  // EAGAIN: nothing more queued
                }
            }
            for message in ReceivedMessage.split(buffer[0..<received])
            where message.type == UInt16(RTM_DELLINK) {
                if let header = InterfaceInfoHeader(decoding: message.payload) { deleted.append(header.index) }
            }
        }
    }
}

/// A link whose removal `NetlinkSocket.deleteLinkDetached` waits for: `index` in the
/// namespace of `listener`. Without a listener (its namespace could not be watched) only
/// the kernel's answer to the deletion can tell.
public struct LinkRemovalWatch: Sendable {
    public var listener: LinkEventListener?
    public var index: Int32

    public init(listener: LinkEventListener?, index: Int32) {
        self.listener = listener
        self.index = index
    }
}

extension NetlinkSocket {
    /// `ip link del index INDEX`, returning as soon as the kernel has *unregistered* the
    /// link, without waiting for it to be freed.
    ///
    /// The kernel acknowledges `RTM_DELLINK` only after `netdev_run_todo`: an `rcu_barrier`
    /// and a wait for every reference to the device to drop, outside `rtnl_lock`. That is
    /// 15-30 ms for a veth on a 2-vCPU VM, most of a DEL, and forever when something leaks
    /// a reference ("unregister_netdevice: waiting for cali… to become free"). Everything a
    /// user can observe is settled before it: under `rtnl_lock` the link and its veth peer
    /// are unlisted (their names free again), their addresses and routes removed, and an
    /// `RTM_DELLINK` notification is sent for each.
    ///
    /// So the request is sent by a helper process (`cnl_detached_request`), which waits for
    /// the kernel's answer and reports it; this call returns when every watched link's
    /// `RTM_DELLINK` notification has arrived, or when the helper reports, whichever comes
    /// first. The helper outlives the call (and the calling process) by the kernel's
    /// teardown and holds none of its caller's descriptors. Where no helper can be started
    /// (a pid limit), the request is sent from here and waited for.
    ///
    /// Watch the link itself and its peer (a veth's `linkIndex`), each through a listener
    /// in its namespace opened before this call. The request goes out on a new socket of
    /// the calling thread's namespace, which must be the link's.
    ///
    /// Throws the kernel's refusal (`ENODEV`, `isNotFound`, when the link is already
    /// gone), or `ETIMEDOUT` when neither happened within `timeout` seconds.
    public static func deleteLinkDetached(
        index: Int32, awaiting watches: [LinkRemovalWatch], timeout: Double = 30, helperName: String
    ) throws(NetlinkError) {
        let request = NetlinkRequest.deleteLink(index: index)
        let socket = try NetlinkSocket()
        var message = request.message.finished()
        message.storeInteger(UInt32(1), at: MessageHeader.sequenceOffset)

        let reader = message.withUnsafeBytes { bytes in
            helperName.withCString { name in
                cnl_detached_request(socket.descriptor, bytes.baseAddress, bytes.count, name)
            }
        }
        if reader < 0 {
            // No helper: the request is ours to send and to wait for.
            try socket.perform(request)
            return
        }
        defer { close(reader) }
        // The helper owns `socket` now; its descriptor here is closed when it goes.
        try awaitRemoval(of: watches, orAnswerOn: reader, operation: request.operation, timeout: timeout)
    }

    /// Waits until every watched link's `RTM_DELLINK` notification has arrived or the
    /// helper's answer (an `Int32` error number) can be read from `reader`, whichever comes
    /// first. A watch without a listener, or on a listener that overflowed, needs the answer.
    static func awaitRemoval(
        of watches: [LinkRemovalWatch], orAnswerOn reader: CInt, operation: String, timeout: Double
    ) throws(NetlinkError) {
        // Pending watches per listener; a watch without one waits for the answer.
        var listeners: [LinkEventListener] = []
        var pending: [[Int32]] = []
        var answerNeeded = watches.isEmpty
        for watch in watches {
            guard let listener = watch.listener else {
                answerNeeded = true
                continue
            }
            if let at = listeners.firstIndex(where: { $0 === listener }) {
                pending[at].append(watch.index)
            } else {
                listeners.append(listener)
                pending.append([watch.index])
            }
        }
        var overflowed = [Bool](repeating: false, count: listeners.count)
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            if !answerNeeded && pending.allSatisfy(\.isEmpty) { return }
            var fds = [pollfd(fd: reader, events: Int16(POLLIN), revents: 0)]
            var polled: [Int] = []
            for (i, listener) in listeners.enumerated() where !pending[i].isEmpty && !overflowed[i] {
                fds.append(pollfd(fd: listener.descriptor, events: Int16(POLLIN), revents: 0))
                polled.append(i)
            }
            let remaining = deadline.remaining
            if remaining <= 0 {
                throw NetlinkError(
                    code: ETIMEDOUT, operation: operation,
                    kernelMessage: "the kernel neither unregistered the link nor answered within \(timeout) s")
            }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(Errno.current("poll"))
            }
            if fds[0].revents != 0 {
                var code: Int32 = 0
                let got = withUnsafeMutableBytes(of: &code) { read(reader, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                if got == MemoryLayout<Int32>.size {
                    if code == 0 { return }
                    throw NetlinkError(code: code, operation: operation)
                }
                throw NetlinkError(
                    code: EPIPE, operation: operation, kernelMessage: "the helper sending it ended without an answer")
            }
            for (slot, i) in polled.enumerated() where fds[slot + 1].revents != 0 {
                switch listeners[i].drain() {
                case .deleted(let indexes):
                    pending[i].removeAll { indexes.contains($0) }
                case .overflowed:
                    // Lost notifications: this listener's links wait for the answer instead.
                    overflowed[i] = true
                    answerNeeded = true
                }
            }
        }
    }
}
