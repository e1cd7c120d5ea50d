import Foundation
import JSON
import Testing
import TestSupport

/// The TLS session cache (HTTPClient `TLSSessionCache`): the first plugin process saves
/// its session beside the client key, later ones resume it (etcd's ServerHello accepts the
/// pre-shared key, seen by the relay), and a file that is not private, a symlink, stale
/// after an etcd restart or made with other certificate files is never used.
@Suite(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
struct EtcdTLSSessionTests {
    static func sessionFiles(_ etcd: EtcdServer) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: etcd.directory, includingPropertiesForKeys: nil, options: [])
            .filter { $0.lastPathComponent.hasPrefix(".calico-tls-session-") }
    }

    @Test func laterProcessesResumeTheSavedSession() throws {
        let store = try EtcdTestStore(.etcdTLS)
        let etcd = try #require(store.etcd)
        let agent = try EtcdAgent(node: "agent-a", store: store)
        let relay = try #require(agent.relay)
        var containers: [EtcdWorkload] = []
        /// ADD of a new container; the relay's handshake counts after it.
        func add() throws -> (full: Int, resumed: Int) {
            let c = try EtcdWorkload()
            containers.append(c)
            _ = try agent.attach(c)
            return relay.tlsHandshakes
        }
        #expect(try Self.sessionFiles(etcd).isEmpty)

        // The first process: a full handshake, and its session saved privately.
        let first = try add()
        #expect(first.full >= 1 && first.resumed == 0, "\(first)")
        let files = try Self.sessionFiles(etcd)
        try #require(files.count == 1, "\(files)")
        let file = files[0]
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        #expect(attributes[.ownerAccountID] as? Int == Int(geteuid()))
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)

        // Later processes resume it: no new full handshake.
        let second = try add()
        #expect(second.full == first.full && second.resumed > first.resumed, "\(second)")
        #expect(try agent.invoke("DEL", containers[0]).status == 0)
        let afterDel = relay.tlsHandshakes
        #expect(afterDel.full == first.full && afterDel.resumed > second.resumed, "\(afterDel)")

        // A file others can read is not used (and the next full handshake replaces it).
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        let readable = try add()
        #expect(readable.full == afterDel.full + 1, "\(readable)")
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600)
        let resumedAgain = try add()
        #expect(resumedAgain.full == readable.full && resumedAgain.resumed > readable.resumed, "\(resumedAgain)")

        // A symlink to a good copy is not followed.
        let copy = etcd.directory.appendingPathComponent("session-copy")
        try FileManager.default.copyItem(at: file, to: copy)
        try FileManager.default.removeItem(at: file)
        try FileManager.default.createSymbolicLink(at: file, withDestinationURL: copy)
        let linked = try add()
        #expect(linked.full == resumedAgain.full + 1, "\(linked)")
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.type] as? FileAttributeType == .typeRegular)

        // A certificate file changed since the session was made: not offered.
        let caURL = URL(fileURLWithPath: try #require(etcd.certificates).caCert)
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: caURL.path)
        let touched = try add()
        #expect(touched.full == linked.full + 1, "\(touched)")

        // etcd restarted: its ticket keys are new, the saved ticket is refused, the full
        // handshake works and saves a new session, which the next process resumes.
        etcd.stop()
        agent.relay?.suspend()
        try etcd.start()
        try agent.relay?.resume()
        let restarted = try add()
        #expect(restarted.full == touched.full + 1, "\(restarted)")
        let resumedAfterRestart = try add()
        #expect(resumedAfterRestart.full == restarted.full && resumedAfterRestart.resumed > restarted.resumed,
                "\(resumedAfterRestart)")

        for c in containers.dropFirst() { #expect(try agent.invoke("DEL", c).status == 0) }
        let records = try store.records()
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) || $0.hasPrefix(EtcdE2E.endpointPrefix) }.isEmpty)
        #expect(try Self.sessionFiles(etcd).count == 1)
    }
}
