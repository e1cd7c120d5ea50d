import CNetlinkShims
import Glibc
import POSIX

/// Link notifications (`RTNLGRP_LINK`): those of the namespace the listener was opened in
/// (the calling thread's, for the listener's whole life) and, where the kernel allows
/// (`NETLINK_LISTEN_ALL_NSID`, root), those of every namespace that has an id there, such
/// as a veth peer's. `ip monitor link all-nsid`.
public final class LinkEventListener: Sendable {
    let descriptor: CInt
    /// Whether notifications of other namespaces come too.
    let hearsOtherNamespaces: Bool

    /// Subscribes, in the calling thread's network namespace. Notifications sent before
    /// this returns are not seen.
    public init() throws(NetlinkError) {
        let (fd, _) = try NetlinkSocket.open(groups: UInt32(RTMGRP_LINK), nonBlocking: true)
        descriptor = fd
        hearsOtherNamespaces = NetlinkSocket.enable(NETLINK_LISTEN_ALL_NSID, on: fd)
    }

    deinit { close(descriptor) }

    /// What reading the queued notifications found.
    enum Drained {
        /// The links deleted (`RTM_DELLINK`), in order.
        case deleted([LinkRemovalWatch])
        /// The socket overflowed (`ENOBUFS`): notifications were lost, so none can be
        /// relied on any more.
        case overflowed
    }

    /// Reads every notification queued now, without blocking.
    func drain() -> Drained {
        var deleted: [LinkRemovalWatch] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var namespaceID: CInt = -1
            let received = buffer.withUnsafeMutableBytes { cnl_recv_with_nsid(descriptor, $0.baseAddress, $0.count, &namespaceID) }
            if received < 0 {
                switch errno {
                case EINTR: continue
                case ENOBUFS: return .overflowed
                default: return .deleted(deleted)  // EAGAIN: nothing more queued
                }
            }
            for message in ReceivedMessage.split(buffer[0..<received])
            where message.type == UInt16(RTM_DELLINK) {
                if let header = InterfaceInfoHeader(decoding: message.payload) {
                    deleted.append(LinkRemovalWatch(namespaceID: namespaceID < 0 ? nil : namespaceID, index: header.index))
                }
            }
        }
    }
}

/// A link whose removal `NetlinkSocket.deleteLinkDetached` waits for: `index` in the
/// namespace the listener's namespace knows by `namespaceID` (a link's `linkNamespaceID`;
/// nil for its own).
public struct LinkRemovalWatch: Sendable, Hashable {
    public var namespaceID: Int32?
    public var index: Int32

    public init(namespaceID: Int32? = nil, index: Int32) {
        self.namespaceID = namespaceID
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
    /// Watch the link itself and its peer (a veth's `linkIndex` in `linkNamespaceID`),
    /// through a listener opened in the link's namespace before this call; without one, or
    /// for a peer elsewhere when the listener hears only its own namespace, the call waits
    /// for the answer. The request goes out on a new socket of the calling thread's
    /// namespace, which must be the link's.
    ///
    /// Throws the kernel's refusal (`ENODEV`, `isNotFound`, when the link is already
    /// gone), or `ETIMEDOUT` when neither happened within `timeout` seconds.
    public static func deleteLinkDetached(
        index: Int32, awaiting watches: [LinkRemovalWatch], on listener: LinkEventListener?, timeout: Double = 30,
        helperName: String
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
        try awaitRemoval(of: watches, on: listener, orAnswerOn: reader, operation: request.operation, timeout: timeout)
    }

    /// Waits until every watched link's `RTM_DELLINK` notification has arrived on
    /// `listener` or the helper's answer (an `Int32` error number) can be read from
    /// `reader`, whichever comes first. Without a listener, with watches it cannot hear, or
    /// once it overflowed, only the answer ends the wait.
    static func awaitRemoval(
        of watches: [LinkRemovalWatch], on listener: LinkEventListener?, orAnswerOn reader: CInt, operation: String,
        timeout: Double
    ) throws(NetlinkError) {
        var pending = Set(watches)
        var hearing = listener.map { listener in
            listener.hearsOtherNamespaces || watches.allSatisfy { $0.namespaceID == nil }
        } ?? false
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            if hearing && pending.isEmpty { return }
            var fds = [pollfd(fd: reader, events: Int16(POLLIN), revents: 0)]
            if hearing, let listener { fds.append(pollfd(fd: listener.descriptor, events: Int16(POLLIN), revents: 0)) }
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
            if fds.count > 1, fds[1].revents != 0, let listener {
                switch listener.drain() {
                case .deleted(let links): pending.subtract(links)
                case .overflowed: hearing = false  // lost notifications: only the answer can tell
                }
            }
        }
    }
}
