import CalicoAPI
import Datastore
import Foundation
import IPAM
import IPAddress
import JSON
import Testing

/// Datastore failures and races that must neither hang a plugin nor double-allocate.
@Suite struct FaultTests {
    static let failures: [DatastoreError] = [.timeout("injected: answer lost"), .unavailable("injected: refused")]

    /// A write that times out (or finds the store unavailable) without happening is not a
    /// lost race: assign and both releases give up at once with the datastore's error.
    @Test(arguments: failures)
    func unappliedWritesFailFastWithTheDatastoreError(_ failure: DatastoreError) throws {
        let inner = InMemoryDatastore()
        let setup = IPAMClient(store: inner)
        let live = try #require(try setup.assign("n.live").ipv4.first).address

        func expectFastFailure(_ what: String, _ body: (IPAMClient) throws -> Void) {
            let flaky = FlakyStore(inner: inner, failures: 1_000, applyBeforeFailing: false, error: failure)
            let start = Date()
            #expect(throws: IPAMError.datastore(failure), "\(what)") { try body(IPAMClient(store: flaky)) }
            let took = Date().timeIntervalSince(start)
            #expect(took < 0.5, "\(what) gave up after \(took) s")
            #expect((1...2).contains(flaky.failed), "\(what) tried \(flaky.failed) writes")
        }
        expectFastFailure("assign") { _ = try $0.assign("n.new") }
        expectFastFailure("release by handle") { try $0.release(handleID: "n.live") }
        expectFastFailure("release by address") { try $0.release(addresses: [live]) }

        // Nothing changed.
        #expect(try setup.addresses(handleID: "n.new").isEmpty)
        #expect(try inner.get(CalicoKeys.handle("n.new")) == nil)
        #expect(try setup.addresses(handleID: "n.live") == [live])
        #expect(try setup.blocks().map(\.usedCount) == [1])
    }

    /// Every write is applied but its answer lost: each is settled by re-reading, so the
    /// operations succeed and the handle holds exactly one address.
    @Test func everyAnswerLostStillAssignsOneAddress() throws {
        let inner = InMemoryDatastore()
        let flaky = FlakyStore(inner: inner, failures: 1_000, applyBeforeFailing: true)
        let ipam = IPAMClient(store: flaky)
        let r = try ipam.assign("n.lost")
        let a = try #require(r.ipv4.first)
        #expect(r.ipv4.count == 1 && a.isNew)
        #expect(flaky.failed >= 5, "pool, config, node, claim and allocation all lost their answers")
        let check = IPAMClient(store: inner)
        #expect(try check.addresses(handleID: "n.lost") == [a.address])
        #expect(try check.blocks().map(\.usedCount) == [1])
        #expect(try inner.get(CalicoKeys.handle("n.lost"))?.value == #"{"block":{"\#(a.block)":1},"deleted":false}"#)
        #expect(try inner.list(prefix: "/calico/ipam/v2/host/").kvs.map(\.value) == [#"{"deleted":false,"state":"confirmed"}"#])

        // A repeat finds it; the release goes through the same way.
        #expect(try ipam.assign("n.lost").ipv4 == [Assignment(address: a.address, block: a.block, isNew: false)])
        #expect(try ipam.release(handleID: "n.lost") == [a.address])
        #expect(try inner.get(CalicoKeys.handle("n.lost")) == nil)
        #expect(try check.blocks().map(\.usedCount) == [0])
    }

    /// Lost races are retried, but not past `timeLimit`, however many attempts are left.
    @Test func endlessConflictsStopAtTheTimeLimit() throws {
        let inner = InMemoryDatastore()
        _ = try IPAMClient(store: inner).assign("warm.up")
        let losing = LosingStore(inner: inner)
        let ipam = IPAMClient(store: losing, options: .init(maxAttempts: 1_000_000, timeLimit: 0.3))
        let start = Date()
        #expect(throws: IPAMError.tooManyRetries("assigning an address to n.x")) { try ipam.assign("n.x") }
        let took = Date().timeIntervalSince(start)
        #expect(took >= 0.3 && took < 1.5, "gave up after \(took) s")
        #expect(losing.lost > 2, "lost races were retried")
        #expect(try IPAMClient(store: inner).addresses(handleID: "n.x").isEmpty)
    }
}

/// A store on which every conditional write loses to a (pretend) other writer.
final class LosingStore: Datastore, @unchecked Sendable {
    let inner: InMemoryDatastore
    private let lock = NSLock()
    private var count = 0
    var lost: Int { lock.withLock { count } }

    init(inner: InMemoryDatastore) { self.inner = inner }

    func get(_ key: String) throws(DatastoreError) -> KeyValue? { try inner.get(key) }
    func list(prefix: String) throws(DatastoreError) -> ListResult { try inner.list(prefix: prefix) }
    func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch { try inner.watch(prefix: prefix, after: revision) }
    func currentRevision() throws(DatastoreError) -> Int64 { try inner.currentRevision() }
    func close() { inner.close() }

    func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        guard !txn.comparisons.isEmpty else { return try inner.transact(txn) }
        lock.withLock { count += 1 }
        return TransactionResult(succeeded: false, revision: try inner.currentRevision())
    }
}
