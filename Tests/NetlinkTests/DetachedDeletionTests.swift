import CNetlinkShims
import Foundation
import NetNS
@testable import Netlink
import TestSupport
import Testing

/// `NetlinkSocket.deleteLinkDetached`: the deletion returns once the kernel has unregistered
/// the link and its peer, and the helper that waits for the kernel's answer holds nothing
/// of its caller.
@Suite("Detached link deletion", .enabled(if: namespaceTests, "needs root and the ip tool"))
struct DetachedDeletionTests {
    /// A veth between `host` and `container` with an address and a route at each end, as a
    /// workload has them.
    func workloadVeth(_ host: TestNamespace, _ container: TestNamespace) throws -> Link {
        let socket = try openSocket(in: host)
        let handle = try NetworkNamespace(path: container.path)
        let link = try withExtendedLifetime(handle) {
            try socket.addVethPair(
                VethPair(name: "dd0", peerName: "dd1", peerNamespaceDescriptor: handle.descriptor, isUp: true))
        }
        try container.check(["ip", "link", "set", "dd1", "up"])
        try container.check(["ip", "addr", "add", "10.77.0.2/32", "dev", "dd1"])
        try container.check(["ip", "route", "add", "169.254.1.1", "dev", "dd1", "scope", "link"])
        try container.check(["ip", "route", "add", "default", "via", "169.254.1.1", "dev", "dd1"])
        try host.check(["ip", "route", "add", "10.77.0.2/32", "dev", "dd0"])
        return link
    }

    @Test func returnsWithBothEndsUnregisteredAndTheirNamesFree() throws {
        let host = try TestNamespace("dd-h"), container = try TestNamespace("dd-c")
        let link = try workloadVeth(host, container)
        let peer = try #require(link.linkIndex)
        #expect(link.linkNamespaceID != nil, "the peer is in another namespace")
        try NetworkNamespace(path: host.path).run {
            try NetlinkSocket.deleteLinkDetached(
                index: link.index,
                awaiting: [LinkRemovalWatch(index: link.index),
                           LinkRemovalWatch(namespaceID: link.linkNamespaceID, index: peer)],
                on: try LinkEventListener(), helperName: "test-veth-del")
        }

        // What a runtime checks right after DEL: no link, no address, no route at either end.
        #expect(try ipLink(host, "dd0") == nil)
        #expect(try ipLink(container, "dd1") == nil)
        #expect(try container.check(["ip", "-4", "addr"]).contains("10.77.0.2") == false)
        #expect(try ipRoutes(container).isEmpty)
        #expect(try ipRoutes(host).isEmpty)
        // The names are free at once, though the kernel may still be freeing the old pair.
        let again = try workloadVeth(host, container)
        #expect(again.index != link.index)
        #expect(try ipLink(container, "dd1") != nil)
    }

    /// Without a listener the helper's answer ends the call (see `AwaitRemovalTests`): the
    /// kernel has then finished its teardown too.
    @Test func withoutAListenerTheKernelsAnswerEndsIt() throws {
        let host = try TestNamespace("dd-h"), container = try TestNamespace("dd-c")
        let link = try workloadVeth(host, container)
        try NetworkNamespace(path: host.path).run {
            try NetlinkSocket.deleteLinkDetached(
                index: link.index, awaiting: [LinkRemovalWatch(index: link.index)], on: nil, helperName: "test-veth-del")
        }
        #expect(try ipLink(host, "dd0") == nil)
        #expect(try ipLink(container, "dd1") == nil)
    }

    @Test func aMissingLinkIsNotFound() throws {
        let host = try TestNamespace("dd-h")
        let error = #expect(throws: NetlinkError.self) {
            try NetworkNamespace(path: host.path).run {
                try NetlinkSocket.deleteLinkDetached(
                    index: 999_999, awaiting: [LinkRemovalWatch(index: 999_999)], on: try LinkEventListener(),
                    helperName: "test-veth-del")
            }
        }
        #expect(error?.isNotFound == true, "\(String(describing: error))")
        #expect(error?.operation == "ip link del index 999999")
    }
}

/// The wait itself (`awaitRemoval`): what ends it, driven by hand. The helper's report pipe
/// is a pipe the test writes to; the notifications come from a link the test deletes.
@Suite("Waiting for a link's removal")
struct AwaitRemovalTests {
    /// Runs `awaitRemoval` on its own thread; `finished` tells whether it has returned.
    final class Waiter: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var result: Result<Void, NetlinkError>?
        var outcome: Result<Void, NetlinkError>? { lock.withLock { result } }

        init(_ watches: [LinkRemovalWatch], on listener: LinkEventListener? = nil, reader: CInt, timeout: Double = 10) {
            Thread.detachNewThread { [self] in
                let r = Result { () throws(NetlinkError) in
                    try NetlinkSocket.awaitRemoval(
                        of: watches, on: listener, orAnswerOn: reader, operation: "ip link del index 7", timeout: timeout)
                }
                lock.withLock { result = r }
                done.signal()
            }
        }

        func finished(within seconds: Double) -> Bool { done.wait(timeout: .now() + seconds) == .success }
    }

    func reportPipe() -> (reader: CInt, writer: CInt) {
        var ends: [CInt] = [-1, -1]
        _ = pipe(&ends)
        return (ends[0], ends[1])
    }

    func report(_ code: Int32, to writer: CInt) {
        var code = code
        _ = withUnsafeBytes(of: &code) { write(writer, $0.baseAddress, $0.count) }
    }

    @Test func withoutAListenerOnlyTheAnswerEndsIt() throws {
        let (reader, writer) = reportPipe()
        defer { close(reader); close(writer) }
        let waiter = Waiter([LinkRemovalWatch(index: 7)], reader: reader)
        #expect(!waiter.finished(within: 0.2), "returned before the helper answered")
        report(0, to: writer)
        #expect(waiter.finished(within: 10))
        #expect(throws: Never.self) { try waiter.outcome?.get() }
    }

    @Test func theKernelsRefusalIsThrownAndAMissingAnswerIsAnError() throws {
        let (reader, writer) = reportPipe()
        defer { close(reader) }
        let refused = Waiter([LinkRemovalWatch(index: 7)], reader: reader)
        report(EPERM, to: writer)
        #expect(refused.finished(within: 10))
        guard case .failure(let error) = refused.outcome else { Issue.record("no error"); return }
        #expect(error.code == EPERM && error.operation == "ip link del index 7")

        let silent = Waiter([LinkRemovalWatch(index: 7)], reader: reader)
        close(writer)  // the helper died without answering
        #expect(silent.finished(within: 10))
        guard case .failure(let lost) = silent.outcome else { Issue.record("no error"); return }
        #expect(lost.code == EPIPE)
    }

    @Test func nothingAtAllTimesOut() throws {
        let (reader, writer) = reportPipe()
        defer { close(reader); close(writer) }
        let waiter = Waiter([LinkRemovalWatch(index: 7)], reader: reader, timeout: 0.3)
        #expect(waiter.finished(within: 10))
        guard case .failure(let error) = waiter.outcome else { Issue.record("no error"); return }
        #expect(error.code == ETIMEDOUT)
    }

    /// A link in another namespace is heard through that namespace's id (a veth peer's
    /// `linkNamespaceID`), on the one listener of the host's namespace; the answer never
    /// comes here.
    @Test(.enabled(if: namespaceTests, "needs root and the ip tool"))
    func aPeerInAnotherNamespaceIsHeardThroughItsID() throws {
        let host = try TestNamespace("ar-h"), container = try TestNamespace("ar-c")
        let (reader, writer) = reportPipe()
        defer { close(reader); close(writer) }
        try host.check(["ip", "link", "add", "ar0", "type", "veth", "peer", "name", "ar0p", "netns", container.name])
        let link = try openSocket(in: host).link(named: "ar0")
        let namespaceID: Int32 = try #require(link.linkNamespaceID)
        let peer = LinkRemovalWatch(namespaceID: namespaceID, index: try #require(link.linkIndex))
        let listener = try NetworkNamespace(path: host.path).run { try LinkEventListener() }
        #expect(listener.hearsOtherNamespaces)
        let waiter = Waiter([peer], on: listener, reader: reader)
        #expect(!waiter.finished(within: 0.2))
        try container.check(["ip", "link", "del", "ar0p"])
        #expect(waiter.finished(within: 10))
        #expect(throws: Never.self) { try waiter.outcome?.get() }
    }

    /// Watched links end the wait with their notifications alone, both of them needed: the
    /// answer never comes here.
    @Test(.enabled(if: namespaceTests, "needs root and the ip tool"))
    func watchedLinksEndItWithTheirNotifications() throws {
        let host = try TestNamespace("ar-h")
        let (reader, writer) = reportPipe()
        defer { close(reader); close(writer) }
        try host.check(["ip", "link", "add", "ar0", "type", "veth", "peer", "name", "ar0p"])
        try host.check(["ip", "link", "add", "ar1", "type", "veth", "peer", "name", "ar1p"])
        let first = try openSocket(in: host).link(named: "ar0").index
        let second = try openSocket(in: host).link(named: "ar1").index
        let listener = try NetworkNamespace(path: host.path).run { try LinkEventListener() }
        let waiter = Waiter([LinkRemovalWatch(index: first), LinkRemovalWatch(index: second)], on: listener, reader: reader)
        try host.check(["ip", "link", "del", "ar0"])
        #expect(!waiter.finished(within: 0.2), "returned with one of two links still there")
        try host.check(["ip", "link", "del", "ar1"])
        #expect(waiter.finished(within: 10))
        #expect(throws: Never.self) { try waiter.outcome?.get() }
    }
}

/// The helper process itself (`cnl_detached_request`), driven through a socket pair that
/// plays the kernel: the test reads the request and writes the answer when it chooses, so
/// the helper can be inspected while it waits.
@Suite("Detached request helper")
struct DetachedRequestHelperTests {
    /// An NLMSG_ERROR answering sequence `sequence` with `-code`.
    func answer(sequence: UInt32, code: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        put(UInt32(16 + 4 + 16)); put(UInt16(NLMSG_ERROR)); put(UInt16(0)); put(sequence); put(UInt32(0))
        put(Int32(-code))
        put(UInt32(16)); put(UInt16(RTM_DELLINK)); put(UInt16(0)); put(sequence); put(UInt32(0))
        return bytes
    }

    @Test func holdsNoDescriptorOfItsCallerIsNotItsChildAndReportsTheAnswer() throws {
        var pair: [CInt] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let request: [UInt8] = [16, 0, 0, 0, UInt8(RTM_DELLINK), 0, 5, 0, 42, 0, 0, 0, 0, 0, 0, 0]
        let name = "dd-\(UInt32.random(in: 0...0xFFFFFF))"
        let reader = request.withUnsafeBytes { cnl_detached_request(pair[1], $0.baseAddress, $0.count, name) }
        try #require(reader >= 0, "spawned: \(String(cString: strerror(errno)))")
        defer { close(reader) }

        // The request arrives on the kernel's side of the pair.
        var received = [UInt8](repeating: 0, count: 64)
        var ready = pollfd(fd: pair[0], events: Int16(POLLIN), revents: 0)
        #expect(poll(&ready, 1, 10_000) == 1)
        let got = received.withUnsafeMutableBytes { recv(pair[0], $0.baseAddress, $0.count, 0) }
        #expect(Array(received.prefix(max(0, got))) == request)

        // While it waits: named, reparented away from us, standard streams on /dev/null and
        // nothing else open but its socket and its report pipe.
        let pid = try #require(Self.process(named: name), "a process named \(name)")
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let parent = status.split(separator: "\n").first { $0.hasPrefix("PPid:") }
        #expect(parent != nil && parent != "PPid:\t\(getpid())", "\(parent ?? "no PPid")")
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        var targets: [String: String] = [:]
        for fd in descriptors {
            targets[fd] = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
        }
        #expect(targets.count == 5, "\(targets)")
        for fd in ["0", "1", "2"] { #expect(targets[fd] == "/dev/null", "fd \(fd): \(targets)") }
        #expect(targets.values.filter { $0.hasPrefix("socket:") }.count == 1, "\(targets)")
        #expect(targets.values.filter { $0.hasPrefix("pipe:") }.count == 1, "\(targets)")

        // An answer to another sequence number is not the answer; then EPERM is reported.
        _ = answer(sequence: 41, code: EEXIST).withUnsafeBytes { send(pair[0], $0.baseAddress, $0.count, 0) }
        _ = answer(sequence: 42, code: EPERM).withUnsafeBytes { send(pair[0], $0.baseAddress, $0.count, 0) }
        var code: Int32 = -1
        var report = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
        #expect(poll(&report, 1, 10_000) == 1)
        #expect(withUnsafeMutableBytes(of: &code) { read(reader, $0.baseAddress, $0.count) } == 4)
        #expect(code == EPERM)
    }

    /// The pid of the process whose comm is `name`.
    static func process(named name: String) -> pid_t? {
        for _ in 0..<200 {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            for entry in entries {
                guard let pid = pid_t(entry),
                      let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8)
                else { continue }
                if comm.trimmingCharacters(in: .newlines) == name { return pid }
            }
            usleep(10_000)
        }
        return nil
    }
}
