import CalicoAPI
import Datastore
import Datastores
import Felix
import Foundation
import Testing
import TestSupport

/// Thread-safe recording backend for a felix loop running on its own thread.
final class LockedRecordingNFT: NFTablesBackend, @unchecked Sendable {
    private let lock = NSLock()
    private var _scripts: [String] = []
    private var gen: UInt32 = 1

    var scripts: [String] { lock.withLock { _scripts } }
    func apply(_ script: String) throws(FelixError) { lock.withLock { _scripts.append(script); gen &+= 1 } }
    func listTable() throws(FelixError) -> String? { lock.withLock { _scripts.isEmpty ? nil : #"{"nftables": []}"# } }
    func generation() -> UInt32? { lock.withLock { gen } }
}

/// Runs `Felix.run` on a thread until stopped.
final class FelixThread: @unchecked Sendable {
    let felix: Felix
    private let lock = NSLock()
    private var stopRequested = false
    private var finished = false
    private(set) var error: (any Error)?

    init(_ felix: Felix) {
        self.felix = felix
        Thread {
            do { try self.felix.run(shouldStop: { self.lock.withLock { self.stopRequested } }) } catch {
                self.lock.withLock { self.error = error }
            }
            self.lock.withLock { self.finished = true }
        }.start()
    }

    /// Asks the loop to stop and waits for it (it checks at least twice a second).
    func stop() -> Bool {
        lock.withLock { stopRequested = true }
        return eventually(5) { lock.withLock { finished } }
    }
}

@Suite(.enabled(if: EtcdServer.isAvailable, "needs etcd"))
struct DatastoreOutageTests {
    @Test func survivesTheDatastoreGoingAwayAndComingBack() throws {
        let etcd = try EtcdServer()
        defer { etcd.destroy() }
        let store = try openDatastore(.etcdv3(EtcdSettings(endpoints: [etcd.endpoint], timeout: 1)))
        defer { store.close() }
        _ = try seededStore(store)
        let nft = LockedRecordingNFT()
        var options = Felix.Options(nodeName: "hostA")
        options.driftCheckInterval = 0.5
        let loop = FelixThread(Felix(options: options, store: store, nft: nft, log: FelixLog(level: .error)))
        #expect(eventually(10) { nft.scripts.contains { $0.contains("cali-tw-\(Workload.bookstoreServer.interfaceName)") } })

        // etcd goes away: felix keeps the kernel as it is (no script at all) and retries.
        etcd.stop()
        let during = nft.scripts.count
        Thread.sleep(forTimeInterval: 3)
        #expect(nft.scripts.count == during, "felix changed the kernel while the datastore was gone")

        // etcd comes back, and a change made now reaches the kernel.
        try etcd.start()
        let writer = try openDatastore(.etcdv3(EtcdSettings(endpoints: [etcd.endpoint], timeout: 2)))
        defer { writer.close() }
        try writer.put(seedPolicyKey, seedPolicyJSON)
        #expect(eventually(20) { nft.scripts.contains { $0.contains("cali-pi-default/allow-bookstore-cliient-to-server") } },
                "policy written after etcd came back never programmed")
        #expect(loop.stop())
        #expect(loop.error == nil)
    }
}
