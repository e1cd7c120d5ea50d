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

    /// Simultaneous first assignments to one handle (two ADDs of one attachment at once):
    /// one address is allocated, every caller gets it, and only one call calls it new. Each
    /// caller has its own connection and thread; a gate holds every caller's first
    /// allocation write until all have read the (absent) handle, so they really race.
    @Test(arguments: Backend.allCases)
    func simultaneousAssignsOfOneHandleShareOneAddress(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.90.0.0/16")
        let threads = 6
        let connections = try (0..<threads).map { _ in try t.connection() }
        for round in 0..<4 {
            let handle = "calico.same\(round)"
            let barrier = Barrier(parties: threads)
            let clients = connections.map { IPAMClient(store: GatedStore(inner: $0, barrier: barrier)) }
            let results = Results()
            let start = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            for i in 0..<threads {
                group.enter()
                Thread.detachNewThread {
                    start.wait()
                    results.record(i, Result { try clients[i].assign(handle) })
                    group.leave()
                }
            }
            for _ in 0..<threads { start.signal() }
            group.wait()
            let all = try results.all()
            let addresses = try all.map { r in
                #expect(r.ipv4.count == 1, "\(r)")
                return try #require(r.ipv4.first)
            }
            #expect(Set(addresses.map(\.address)).count == 1, "round \(round): \(addresses)")
            #expect(addresses.filter(\.isNew).count == 1, "round \(round): \(addresses.map(\.isNew))")
            let check = IPAMClient(store: t.store)
            #expect(try check.addresses(handleID: handle) == [addresses[0].address])
            #expect(try check.blocks().map(\.usedCount).reduce(0, +) == round + 1, "one address per handle in the store")
            #expect(try t.value(CalicoKeys.handle(handle))?["block"]?[addresses[0].block.description] == 1)
            #expect(barrier.arrived == threads, "every caller reached the allocation write")
        }
    }
}

/// Lets `parties` threads wait for each other (at most two seconds).
final class Barrier: @unchecked Sendable {
    private let condition = NSCondition()
    private let parties: Int
    private var count = 0
    var arrived: Int { condition.withLock { count } }

    init(parties: Int) { self.parties = parties }

    func arriveAndWait() {
        condition.lock()
        defer { condition.unlock() }
        count += 1
        condition.broadcast()
        let limit = Date().addingTimeInterval(2)
        while count < parties && condition.wait(until: limit) {}
    }
}

/// Holds this connection's first write of an IPAM handle at `barrier`.
final class GatedStore: Datastore, @unchecked Sendable {
    let inner: any Datastore
    let barrier: Barrier
    private let lock = NSLock()
    private var passed = false

    init(inner: any Datastore, barrier: Barrier) {
        self.inner = inner
        self.barrier = barrier
    }

    func get(_ key: String) throws(DatastoreError) -> KeyValue? { try inner.get(key) }
    func list(prefix: String) throws(DatastoreError) -> ListResult { try inner.list(prefix: prefix) }
    func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch { try inner.watch(prefix: prefix, after: revision) }
    func currentRevision() throws(DatastoreError) -> Int64 { try inner.currentRevision() }
    func close() {}

    func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        let writesHandle = txn.success.contains { if case .put(let k, _) = $0 { k.hasPrefix(CalicoKeys.handlePrefix) } else { false } }
        let first = writesHandle && lock.withLock { () -> Bool in
            defer { passed = true }
            return !passed
        }
        if first { barrier.arriveAndWait() }
        return try inner.transact(txn)
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
