import Datastore
import Testing

@Suite struct InMemoryDatastoreTests {
    @Test func createUpdateDeleteAndWatch() throws {
        let store = InMemoryDatastore()
        let r1 = try #require(try store.create("/a", "1"))
        #expect(r1 == 1)
        #expect(try store.create("/a", "2") == nil)
        let kv = try #require(try store.get("/a"))
        #expect(kv == KeyValue(key: "/a", value: "1", createRevision: 1, modRevision: 1, version: 1))
        #expect(try store.update("/a", "2", modRevision: 1) == 2)
        #expect(try store.update("/a", "3", modRevision: 1) == nil)
        #expect(try store.delete("/a", modRevision: 2))
        #expect(try store.currentRevision() == 3)

        let w = try store.watch(prefix: "/", after: 0)
        let events = try w.next(timeout: 1)
        #expect(events.map(\.kind) == [.put, .put, .delete])
        #expect(events.map(\.kv.modRevision) == [1, 2, 3])
        #expect(events[2].previous?.value == "2")
        #expect(try w.next(timeout: 0.05).isEmpty)
    }
}
