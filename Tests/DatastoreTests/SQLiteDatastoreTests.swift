import Datastore
import DatastoreConformance
import Foundation
import SQLiteDatastore
import Testing
import TestSupport

/// A database path in a fresh temporary directory.
private func temporaryDatabase(_ name: String = "calico.db") -> String {
    TestEnvironment.temporaryDirectory("sqlite-store").appendingPathComponent(name).path
}

private func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as! NSNumber).intValue
}

private struct ShellDied: Error { var output: String }

/// A `sqlite3` CLI child fed SQL on stdin, for holding locks and dying mid-transaction.
private final class SQLiteShell {
    let process = ChildProcess()
    let input = Pipe()
    let output = Pipe()

    init(_ path: String) throws {
        process.executableURL = URL(fileURLWithPath: TestEnvironment.which("sqlite3")!)
        process.arguments = [path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Sends `sql` followed by `.print <marker>` and waits until the marker comes back.
    func run(_ sql: String) throws {
        let marker = "done-\(UUID().uuidString.prefix(6))"
        input.fileHandleForWriting.write(Data((sql + "\n.print \(marker)\n").utf8))
        var seen = ""
        while !seen.contains(marker) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw ShellDied(output: seen) }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        if seen.contains("Error") || seen.contains("error") { Issue.record("sqlite3 said: \(seen)") }
    }

    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func quit() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

@Suite struct SQLiteDatastoreTests {
    @Test(arguments: DatastoreConformance.cases)
    func conformance(_ c: ConformanceCase) throws {
        try c.run(SQLiteDatastore(path: temporaryDatabase()))
    }

    @Test func fileIsPrivateAndDirectoryIsCreated() throws {
        let root = TestEnvironment.temporaryDirectory("sqlite-mode")
        let path = root.appendingPathComponent("a/b/calico.db").path
        let store = try SQLiteDatastore(path: path)
        try store.put("/calico/x", "{}")
        #expect(try fileMode(path) == 0o600)
        #expect(try fileMode(path + "-wal") == 0o600)
        #expect(try fileMode(root.appendingPathComponent("a/b").path) == 0o700)
        #expect(try fileMode(root.appendingPathComponent("a").path) == 0o700)
        store.close()
    }

    @Test(.enabled(if: TestEnvironment.has("sqlite3"), "needs the sqlite3 CLI"))
    func sqlite3CLIReadsKeysAndValues() throws {
        let path = temporaryDatabase()
        let store = try SQLiteDatastore(path: path)
        let pool = #"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool"},"spec":{"cidr":"172.29.0.0/16","vxlanMode":"Always"}}"#
        try store.put(CalicoKeys.resource(plural: "ippools", name: "default-ipv4-ippool"), pool)
        try store.put(CalicoKeys.ipamConfig, #"{"strict_affinity":false,"auto_allocate_blocks":true}"#)
        let out = try Command.check(["sqlite3", path, "select key, value from kv order by key"])
        #expect(out == """
            /calico/ipam/v2/config|{"strict_affinity":false,"auto_allocate_blocks":true}
            /calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool|\(pool)

            """)
        store.close()
    }

    /// 24 connections (one per thread, each its own `SQLiteDatastore`, as 24 plugin
    /// processes would have) increment one counter by compare-and-swap.
    @Test func manyConnectionsLoseNoIncrement() throws {
        let path = temporaryDatabase()
        let setup = try SQLiteDatastore(path: path)
        try setup.put("/counter", "0")
        let workers = 24, each = 20
        let errors = Mutex24()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            do {
                let store = try SQLiteDatastore(path: path, timeout: 30)
                defer { store.close() }
                for _ in 0..<each {
                    while true {
                        let kv = try #require(try store.get("/counter"))
                        if try store.update("/counter", String(Int(kv.value)! + 1), modRevision: kv.modRevision) != nil { break }
                    }
                }
            } catch {
                errors.add("\(error)")
            }
        }
        #expect(errors.all.isEmpty)
        let final = try #require(try setup.get("/counter"))
        #expect(final.value == "\(workers * each)")
        #expect(final.version == Int64(workers * each + 1))
        #expect(try setup.currentRevision() == Int64(workers * each + 1))
    }

    /// A writer killed with SIGKILL halfway through a large transaction (its pages already
    /// spilled into the WAL) leaves the store as it was: it opens, reads the old values,
    /// and compare-and-swap works (the dead process's lock is gone).
    @Test(.enabled(if: TestEnvironment.has("sqlite3"), "needs the sqlite3 CLI"))
    func killedWriterLeavesStoreConsistent() throws {
        let path = temporaryDatabase()
        let store = try SQLiteDatastore(path: path)
        let r1 = try store.put("/calico/ipam/v2/handle/h1", #"{"block":{"10.0.0.0/26":1}}"#)
        store.close()
        let walBefore = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0

        let shell = try SQLiteShell(path)
        try shell.run("""
            PRAGMA cache_size=2;
            BEGIN IMMEDIATE;
            UPDATE kv SET value='torn', mod_revision=99 WHERE key='/calico/ipam/v2/handle/h1';
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000)
              INSERT INTO kv SELECT '/calico/bulk/' || i, hex(randomblob(400)), 99, 99, 1 FROM n;
            INSERT INTO meta(name, value) VALUES('revision', 99) ON CONFLICT(name) DO UPDATE SET value=99;
            """)
        let walDuring = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as! Int
        #expect(walDuring > walBefore + 1_000_000, "the uncommitted pages should be in the WAL")
        shell.kill()

        let reopened = try SQLiteDatastore(path: path, timeout: 2)
        let kv = try #require(try reopened.get("/calico/ipam/v2/handle/h1"))
        #expect(kv.value == #"{"block":{"10.0.0.0/26":1}}"#)
        #expect(kv.modRevision == r1)
        #expect(try reopened.currentRevision() == r1)
        #expect(try reopened.list(prefix: "/calico/bulk/").kvs.isEmpty)
        #expect(try reopened.update("/calico/ipam/v2/handle/h1", "{}", modRevision: r1) == r1 + 1)
        #expect(try Command.check(["sqlite3", path, "PRAGMA integrity_check"]) == "ok\n")
        reopened.close()
    }

    /// A writer holding the lock past our deadline gives `.timeout`, promptly; reads go on.
    @Test(.enabled(if: TestEnvironment.has("sqlite3"), "needs the sqlite3 CLI"))
    func lockedFileTimesOut() throws {
        let path = temporaryDatabase()
        let store = try SQLiteDatastore(path: path, timeout: 0.5)
        try store.put("/a", "1")
        let shell = try SQLiteShell(path)
        try shell.run("BEGIN IMMEDIATE; UPDATE kv SET value='2' WHERE key='/a';")
        let start = Date()
        #expect(throws: DatastoreError.self) { try store.put("/a", "3") }
        do { try store.put("/a", "3") } catch { #expect(error.isTransient, "\(error)") }
        let elapsed = Date().timeIntervalSince(start) / 2
        #expect(elapsed >= 0.4 && elapsed < 2, "each put waited \(elapsed) s")
        #expect(try store.get("/a")?.value == "1")  // WAL: readers are not blocked.
        shell.kill()
        #expect(try store.put("/a", "4") == 2)
        store.close()
    }

    /// A watch on one connection wakes (through inotify) for a write made on another.
    @Test func watchSeesWritesFromAnotherConnection() throws {
        let path = temporaryDatabase()
        let watcherStore = try SQLiteDatastore(path: path)
        let writerStore = try SQLiteDatastore(path: path)
        let watch = try watcherStore.watch(prefix: "/w/", after: 0)
        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.3)
            _ = try? writerStore.put("/w/x", "1")
            _ = try? writerStore.delete("/w/x")
        }
        writer.start()
        let start = Date()
        var events: [WatchEvent] = []
        while events.count < 2, Date().timeIntervalSince(start) < 10 {
            events += try watch.next(timeout: 10)
        }
        #expect(events.map(\.kind) == [.put, .delete])
        #expect(events.map(\.kv.modRevision) == [1, 2])
        #expect(events.last?.previous?.value == "1")
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test func eventLogIsPruned() throws {
        let path = temporaryDatabase()
        let store = try SQLiteDatastore(settings: SQLiteSettings(path: path), historyLimit: 50)
        for i in 1...200 { try store.put("/p/\(i % 7)", "\(i)") }
        let rows = try Command.check(["sqlite3", path, "select count(*), min(revision) from events"])
        let fields = rows.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").map { Int($0)! }
        #expect(fields[0] >= 50 && fields[0] < 50 + 64, "events kept: \(fields[0])")
        let oldest = Int64(fields[1])
        let old = try store.watch(prefix: "/p/", after: 1)
        #expect(throws: DatastoreError.compacted(oldest - 1)) { try old.next(timeout: 0) }
        let recent = try store.watch(prefix: "/p/", after: oldest - 1)
        #expect(try recent.next(timeout: 0).count == 200 - Int(oldest) + 1)
    }

    @Test func notADatabaseIsATypedError() throws {
        let path = temporaryDatabase()
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect(throws: DatastoreError.self) { try SQLiteDatastore(path: path) }
    }

    @Test func unwritableLocationIsUnavailable() throws {
        #expect(throws: DatastoreError.self) { try SQLiteDatastore(path: "/proc/calico-test/calico.db") }
    }

    /// What a plugin pays per container launch to open the store and read one key.
    @Test func openAndGetIsCheap() throws {
        let path = temporaryDatabase()
        let setup = try SQLiteDatastore(path: path)
        for i in 0..<500 { try setup.put("/calico/ipam/v2/handle/h\(i)", #"{"block":{}}"#) }
        let rounds = 200
        let start = Date()
        for _ in 0..<rounds {
            let s = try SQLiteDatastore(path: path)
            #expect(try s.get("/calico/ipam/v2/handle/h42")?.value == #"{"block":{}}"#)
            s.close()
        }
        // A figure for the log, not a bound: timings belong to the benchmarks.
        let perOpen = Date().timeIntervalSince(start) / Double(rounds)
        print("SQLiteDatastore open+get+close: \(String(format: "%.3f", perOpen * 1000)) ms")
    }

    /// `closeForExit`, what a plugin process does last: while the WAL is short it only
    /// leaves the connection to the exit (the database file alone, without its WAL, does
    /// not have the last writes yet); once the WAL is long it checkpoints as `close` does
    /// (the database file alone has every write). Either way another connection sees all.
    @Test func closeForExitCheckpointsOnlyALongWAL() throws {
        func databaseAlone(_ path: String) throws -> [String] {
            let copy = temporaryDatabase("copy.db")
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let r = try Command.run(["sqlite3", copy, "SELECT key FROM kv ORDER BY key"])
            if r.status != 0 && r.stderrText.contains("no such table") { return [] }  // not even the schema
            #expect(r.status == 0, "\(r.stderrText)")
            return r.stdoutText.split(separator: "\n").map(String.init)
        }
        let short = temporaryDatabase()
        let s1 = try SQLiteDatastore(path: short)
        try s1.put("/k/a", "1")
        s1.closeForExit()
        #expect(try databaseAlone(short).isEmpty, "a short WAL is not checkpointed")
        #expect(try SQLiteDatastore(path: short).get("/k/a")?.value == "1")

        let long = temporaryDatabase()
        let s2 = try SQLiteDatastore(path: long)
        let value = String(repeating: "x", count: 3000)
        for i in 0..<80 { try s2.put("/k/\(1000 + i)", value) }
        s2.closeForExit()
        #expect(try databaseAlone(long).count == 80, "a long WAL is checkpointed into the database file")
    }
}

/// A tiny locked list of messages from worker threads.
private final class Mutex24: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ m: String) { lock.withLock { messages.append(m) } }
    var all: [String] { lock.withLock { messages } }
}
