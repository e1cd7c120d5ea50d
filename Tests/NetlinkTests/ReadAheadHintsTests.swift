import CalicoCNI
import Datastore
import Foundation
import Testing

/// The read-ahead hint file: the blocks the last ADD read, prefetched by the next one.
@Suite struct ReadAheadHintsTests {
    static let etcd = DatastoreSettings.etcdv3(EtcdSettings(endpoints: ["https://10.0.0.1:2379"]))

    func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hints-\(UUID().uuidString)").path
    }

    @Test func oneFilePerNodeAndStore() {
        let sqlite = ReadAheadHints(node: "n1", datastore: .sqlite(SQLiteSettings(path: "/srv/agent/calico.db")))
        #expect(sqlite.path.hasPrefix("/srv/agent/ipam-read-ahead-"), "beside the database")
        let a = ReadAheadHints(node: "n1", datastore: Self.etcd)
        let b = ReadAheadHints(node: "n2", datastore: Self.etcd)
        #expect(a.path.hasPrefix("/var/lib/calico/ipam-read-ahead-"), "in Calico's state directory")
        #expect(a.path != b.path, "one file per node")
    }

    @Test func savedBlocksComeBackAsKeysAndTheFileIsPrivate() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hints = ReadAheadHints(node: "n1", datastore: Self.etcd, directory: dir)
        #expect(hints.blocks().isEmpty, "no file, no hint")
        let keys = [CalicoKeys.block(cidr: "10.1.0.0/26"), CalicoKeys.block(cidr: "fd00::/122")]
        hints.save(blockKeys: keys, previous: [])
        #expect(hints.blocks().map(\.description) == ["10.1.0.0/26", "fd00::/122"])
        #expect(ReadAheadHints.keys(of: hints.blocks()) == keys)
        #expect(try String(contentsOfFile: hints.path, encoding: .utf8) == "10.1.0.0/26\nfd00::/122\n")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: hints.path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let dirMode = try #require(try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int)
        #expect(dirMode == 0o700)
    }

    @Test func aDamagedFileIsOnlyAWeakerHint() throws {
        let dir = directory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hints = ReadAheadHints(node: "n1", datastore: Self.etcd, directory: dir)
        let lines = ["junk", "10.2.0.0/26", "", "10.3.0.0/33"] + (0..<20).map { "10.4.\($0).0/26" }
        try lines.joined(separator: "\n").write(toFile: hints.path, atomically: true, encoding: .utf8)
        // The first 8 lines count (empty ones are no lines); the damaged among them are skipped.
        #expect(hints.blocks().map(\.description) == ["10.2.0.0/26"] + (0..<5).map { "10.4.\($0).0/26" })
    }

    @Test func anUnchangedHintIsNotRewritten() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hints = ReadAheadHints(node: "n1", datastore: Self.etcd, directory: dir)
        let keys = [CalicoKeys.block(cidr: "10.1.0.0/26")]
        hints.save(blockKeys: keys, previous: [])
        try "10.9.0.0/26\n".write(toFile: hints.path, atomically: true, encoding: .utf8)
        hints.save(blockKeys: keys, previous: keys)
        #expect(hints.blocks().map(\.description) == ["10.9.0.0/26"], "same blocks as before: no write")
    }
}
