import Datastore
import Foundation
import SQLiteDatastore
import Testing
import TestSupport

/// A plugin process opens the store, writes once and closes, usually as the last
/// connection. Its close does not checkpoint the WAL (that cost four disk syncs per
/// invocation); the writers' automatic checkpoints must keep the WAL small instead, since
/// the next process reads all of it again when it opens the store.
@Suite struct SQLiteWALTests {
    @Test func theWALStaysBoundedAcrossShortLivedWriters() throws {
        let path = TestEnvironment.temporaryDirectory("sqlite-wal").appendingPathComponent("calico.db").path
        let value = String(repeating: "x", count: 3000)
        var largest = 0
        for i in 0..<300 {
            let store = try SQLiteDatastore(path: path)
            _ = try store.put("/calico/resources/v3/projectcalico.org/workloadendpoints/ns/wep-\(i)", value + "\(i)")
            store.close()
            let size = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as! Int
            largest = max(largest, size)
        }
        // 300 writes of 3 KB each put well over a megabyte through the WAL.
        #expect(largest < 512 * 1024, "largest WAL \(largest) bytes")
        let store = try SQLiteDatastore(path: path)
        let kvs = try store.list(prefix: "/calico/resources/v3/projectcalico.org/workloadendpoints/").kvs
        #expect(kvs.count == 300)
        #expect(try store.get("/calico/resources/v3/projectcalico.org/workloadendpoints/ns/wep-299")?.value == value + "299")
        store.close()
    }
}
