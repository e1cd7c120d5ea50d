import Datastore
import DatastoreConformance
import Testing

@Suite struct InMemoryConformanceTests {
    @Test(arguments: DatastoreConformance.cases)
    func inMemory(_ c: ConformanceCase) throws {
        try c.run(InMemoryDatastore())
    }

    /// History overflow compacts whole transactions: an old watch fails, a recent one works.
    @Test func boundedHistoryCompacts() throws {
        let s = InMemoryDatastore(historyLimit: 10)
        for i in 0..<30 { try s.put("/k/\(i % 3)", "\(i)") }
        let old = try s.watch(prefix: "/k/", after: 5)
        #expect(throws: DatastoreError.compacted(20)) { try old.next(timeout: 0) }
        let recent = try s.watch(prefix: "/k/", after: 25)
        #expect(try recent.next(timeout: 0).map(\.kv.modRevision) == [26, 27, 28, 29, 30])
    }
}
