import Foundation
import JSON
import SQLiteDatastore
import Testing
import TestSupport

/// End-to-end tests of the built `calico-ipam` executable: the environment is replaced (as
/// Mesos does), the config arrives on stdin, and what a user would check is checked: stdout,
/// the exit status, and the records in the SQLite file.
@Suite(.enabled(if: TestEnvironment.hasProduct("calico-ipam"), "needs the built calico-ipam"))
struct CalicoIPAMBinaryTests {
    static let binary = TestEnvironment.product("calico-ipam")

    /// A temporary SQLite datastore and a config pointing at it.
    struct Setup {
        let dir: URL
        let db: String

        init() {
            dir = TestEnvironment.temporaryDirectory("calico-ipam")
            db = dir.appendingPathComponent("calico.db").path
        }

        func config(version: String? = "0.2.0", name: String = "calico", ipam: JSON = ["type": "calico-ipam"], extra: [String: JSON] = [:]) -> String {
            var o: [String: JSON] = ["name": .string(name), "type": "calico", "nodename": "agent1",
                                     "datastore_type": "sqlite", "sqlite_path": .string(db), "ipam": ipam]
            if let version { o["cniVersion"] = .string(version) }
            for (k, v) in extra { o[k] = v }
            return JSON.object(o).compactText
        }

        func sqlite(_ sql: String) throws -> [String] {
            let out = try Command.check(["sqlite3", db, sql])
            return out.split(separator: "\n").map(String.init)
        }
    }

    static func env(_ command: String, _ containerID: String = "", ifname: String = "eth0", netns: Bool = true) -> [String: String] {
        var e = ["CNI_COMMAND": command, "CNI_PATH": "/nonexistent", "PATH": "/usr/bin:/bin"]
        if !containerID.isEmpty {
            e["CNI_CONTAINERID"] = containerID
            e["CNI_IFNAME"] = ifname
            if netns { e["CNI_NETNS"] = "/var/run/mesos/isolators/network/cni/\(containerID)/ns" }
        }
        return e
    }

    @discardableResult
    static func run(_ command: String, _ containerID: String, _ config: String, netns: Bool = true) throws -> CommandResult {
        try Command.run([binary], environment: env(command, containerID, netns: netns), stdin: Data(config.utf8))
    }

    static func json(_ r: CommandResult) throws -> JSON { try JSON(parsing: r.stdoutText) }

    @Test func resultShapeOfEveryVersion() throws {
        let s = Setup()
        for (i, version) in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].enumerated() {
            let cid = "shape-\(i)"
            let r = try Self.run("ADD", cid, s.config(version: version))
            #expect(r.status == 0, "\(version): \(r.stdoutText) \(r.stderrText)")
            let out = try Self.json(r)
            #expect(out["cniVersion"]?.stringValue == version)
            #expect(r.stdoutText.filter { $0 == "\n" }.count <= 1)
            if version < "0.3.0" {
                let ip = try #require(out["ip4"]?["ip"]?.stringValue, "\(version): \(out)")
                #expect(ip.hasPrefix("192.168.") && ip.hasSuffix("/32"))
                #expect(out["ips"] == nil && out["interfaces"] == nil)
            } else {
                let ips = try #require(out["ips"]?.arrayValue)
                #expect(ips.count == 1)
                #expect(ips[0]["address"]?.stringValue?.hasSuffix("/32") == true)
                #expect(ips[0]["interface"] == nil)
                #expect(out["interfaces"]?.arrayValue?.isEmpty ?? true)
                #expect(out["ip4"] == nil)
                if version < "1.0.0" { #expect(ips[0]["version"] == "4") } else { #expect(ips[0]["version"] == nil) }
            }
        }
        // A config without cniVersion gets the 0.1.0 (ip4) shape.
        let bare = try Self.run("ADD", "shape-bare", s.config(version: nil))
        #expect(try Self.json(bare)["ip4"]?["ip"] != nil)
        let version = try Command.run([Self.binary], environment: Self.env("VERSION"), stdin: Data(s.config(version: "1.1.0").utf8))
        #expect(try Self.json(version)["supportedVersions"]
            == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    }

    @Test(.enabled(if: TestEnvironment.has("sqlite3"), "needs the sqlite3 tool"))
    func concurrentAddsThenDels() throws {
        let s = Setup()
        let config = s.config()
        let ids = (0..<24).map { "c0ffee00-0000-4000-8000-\(String(1000_0000_0000 + $0))" }
        // Start all 24 processes before waiting for any.
        let results = try Self.runAtOnce(ids.map { ("ADD", $0) }, config: config)
        var addresses: [String] = []
        for (id, r) in zip(ids, results) {
            #expect(r.status == 0, "\(id): \(r.stdoutText) \(r.stderrText)")
            if let ip = try? Self.json(r)["ip4"]?["ip"]?.stringValue { addresses.append(ip) }
        }
        #expect(addresses.count == 24)
        #expect(Set(addresses).count == 24)
        // All from one /26 block affine to this node.
        let blocks = Set(addresses.map { a -> String in
            let parts = a.split(separator: "/")[0].split(separator: ".").map { Int($0)! }
            return "\(parts[0]).\(parts[1]).\(parts[2]).\(parts[3] / 64 * 64)-26"
        })
        #expect(blocks.count == 1)
        let block = try #require(blocks.first)

        // What `sqlite3` shows under Calico's keys.
        let handles = try s.sqlite("SELECT key FROM kv WHERE key LIKE '/calico/ipam/v2/handle/%' ORDER BY key")
        #expect(handles == ids.sorted().map { "/calico/ipam/v2/handle/calico.\($0)" })
        let handleValue = try s.sqlite("SELECT value FROM kv WHERE key = '/calico/ipam/v2/handle/calico.\(ids[0])'")
        #expect(handleValue == [#"{"block":{"\#(block.replacingOccurrences(of: "-", with: "/"))":1},"deleted":false}"#])
        let affinity = try s.sqlite("SELECT key, value FROM kv WHERE key LIKE '/calico/ipam/v2/host/%'")
        #expect(affinity == [#"/calico/ipam/v2/host/agent1/ipv4/block/\#(block)|{"deleted":false,"state":"confirmed"}"#])
        let blockValue = try #require(try s.sqlite("SELECT value FROM kv WHERE key = '/calico/ipam/v2/assignment/ipv4/block/\(block)'").first)
        let parsed = try JSON(parsing: blockValue)
        #expect(parsed["affinity"] == "host:agent1")
        #expect(parsed["unallocated"]?.arrayValue?.count == 40)
        #expect(parsed["attributes"]?.arrayValue?.count == 24)

        // DEL of all (Mesos leaves CNI_NETNS out after a reboot): no handle is left; a second
        // DEL of each succeeds too.
        let dels = try Self.runAtOnce(ids.map { ("DEL", $0) }, config: config, netns: false)
        #expect(dels.allSatisfy { $0.status == 0 && $0.stdout.isEmpty })
        #expect(try s.sqlite("SELECT count(*) FROM kv WHERE key LIKE '/calico/ipam/v2/handle/%'") == ["0"])
        for id in ids.prefix(4) {
            let again = try Self.run("DEL", id, config, netns: false)
            #expect(again.status == 0 && again.stdout.isEmpty)
        }
        let after = try JSON(parsing: try #require(try s.sqlite("SELECT value FROM kv WHERE key = '/calico/ipam/v2/assignment/ipv4/block/\(block)'").first))
        #expect(after["unallocated"]?.arrayValue?.count == 64)
        #expect(after["attributes"] == [])
        #expect(after["affinity"] == "host:agent1")
    }

    @Test func duplicateAddIsRefusedAndKeepsTheAddress() throws {
        let s = Setup()
        let first = try Self.run("ADD", "dup", s.config(version: "1.0.0"))
        let address = try #require(try Self.json(first)["ips"]?[0]?["address"]?.stringValue)
        let again = try Self.run("ADD", "dup", s.config(version: "1.0.0"))
        #expect(again.status != 0)
        let err = try Self.json(again)
        #expect(err["code"] == 100)
        #expect(err["msg"]?.stringValue?.contains(String(address.split(separator: "/")[0])) == true)
        // CHECK still confirms the reservation.
        let check = try Self.run("CHECK", "dup", s.config(version: "1.0.0", extra: ["prevResult": try Self.json(first)]))
        #expect(check.status == 0, "\(check.stdoutText)")
    }

    @Test func checkGCAndStatus() throws {
        let s = Setup()
        var prev: [String: JSON] = [:]
        for id in ["keep", "gone1", "gone2"] {
            let r = try Self.run("ADD", id, s.config(version: "1.1.0"))
            #expect(r.status == 0)
            prev[id] = try Self.json(r)
        }
        // CHECK: the reservation matches; a foreign address does not.
        #expect(try Self.run("CHECK", "keep", s.config(version: "1.1.0", extra: ["prevResult": prev["keep"]!])).status == 0)
        var wrong = prev["keep"]!
        wrong["ips"] = [["address": "10.9.9.9/32"]]
        let bad = try Self.run("CHECK", "keep", s.config(version: "1.1.0", extra: ["prevResult": wrong]))
        #expect(bad.status != 0)
        #expect(try Self.json(bad)["code"] == 104)
        // CHECK needs 0.4.0 or later.
        let old = try Self.run("CHECK", "keep", s.config(version: "0.3.1", extra: ["prevResult": prev["keep"]!]))
        #expect((try Self.json(old)["code"]) == 1)

        // GC keeps the valid attachment, releases the others of this network only.
        let other = try Self.run("ADD", "x1", s.config(version: "1.1.0", name: "other"))
        #expect(other.status == 0)
        let gcConfig = s.config(version: "1.1.0", extra: ["cni.dev/valid-attachments": [["containerID": "keep", "ifname": "eth0"]]])
        let gc = try Command.run([Self.binary], environment: Self.env("GC"), stdin: Data(gcConfig.utf8))
        #expect(gc.status == 0, "\(gc.stdoutText)")
        #expect(try Self.run("CHECK", "keep", s.config(version: "1.1.0", extra: ["prevResult": prev["keep"]!])).status == 0)
        let gone = try Self.run("CHECK", "gone1", s.config(version: "1.1.0", extra: ["prevResult": prev["gone1"]!]))
        #expect((try Self.json(gone)["code"]) == 104)
        #expect(try Self.run("CHECK", "x1", s.config(version: "1.1.0", name: "other",
                                                      extra: ["prevResult": try Self.json(other)])).status == 0)

        // STATUS: usable datastore with room.
        let status = try Command.run([Self.binary], environment: Self.env("STATUS"), stdin: Data(s.config(version: "1.1.0").utf8))
        #expect(status.status == 0 && status.stdout.isEmpty, "\(status.stdoutText)")
    }

    @Test func statusAndAddWhenTheDatastoreIsUnusable() throws {
        let s = Setup()
        // A database path under a regular file cannot be created.
        let blocker = s.dir.appendingPathComponent("file").path
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data()))
        var o = try JSON(parsing: s.config(version: "1.1.0"))
        o["sqlite_path"] = .string(blocker + "/calico.db")
        o["datastore_timeout"] = 1
        let config = o.compactText
        let status = try Command.run([Self.binary], environment: Self.env("STATUS"), stdin: Data(config.utf8))
        #expect(status.status != 0)
        #expect(try Self.json(status)["code"] == 50)
        let add = try Self.run("ADD", "nostore", config)
        #expect(add.status != 0)
        let code = try Self.json(add)["code"]?.intValue
        #expect(code == 11 || code == 103, "\(add.stdoutText)")
    }

    @Test func ipv6AndPoolsFromTheConfig() throws {
        let s = Setup()
        // Create the pools the config names, through the store the plugin will use.
        let seed = try Self.run("ADD", "seed", s.config(version: "1.0.0"))
        #expect(seed.status == 0)
        _ = try s.sqlite("SELECT 1")
        let v6Pool = #"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"v6"},"spec":{"cidr":"fd00:ab::/64","blockSize":122,"nodeSelector":"all()"}}"#
        let v4Pool = #"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"second"},"spec":{"cidr":"10.77.0.0/16","blockSize":26,"nodeSelector":"all()"}}"#
        try Self.insert(s, "/calico/resources/v3/projectcalico.org/ippools/v6", v6Pool)
        try Self.insert(s, "/calico/resources/v3/projectcalico.org/ippools/second", v4Pool)
        let ipam: JSON = ["type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true", "ipv4_pools": ["second"], "ipv6_pools": ["fd00:ab::/64"]]
        let r = try Self.run("ADD", "dual", s.config(version: "0.4.0", ipam: ipam))
        #expect(r.status == 0, "\(r.stdoutText)")
        let ips = try #require(try Self.json(r)["ips"]?.arrayValue)
        #expect(ips.map { $0["version"]?.stringValue ?? "" } == ["4", "6"])
        #expect(ips[0]["address"]?.stringValue?.hasPrefix("10.77.") == true)
        #expect(ips[1]["address"]?.stringValue?.hasPrefix("fd00:ab::") == true)
        #expect(ips[1]["address"]?.stringValue?.hasSuffix("/128") == true)
        // The 0.2.0 shape carries both families.
        let legacy = try Self.run("ADD", "dual2", s.config(version: "0.2.0", ipam: ipam))
        #expect(try Self.json(legacy)["ip6"]?["ip"]?.stringValue?.hasSuffix("/128") == true)
        // A pool that does not exist is refused with calico-ipam's code.
        let missing: JSON = ["type": "calico-ipam", "ipv4_pools": ["nope"]]
        let refused = try Self.run("ADD", "nope", s.config(version: "1.0.0", ipam: missing))
        #expect((try Self.json(refused)["code"]) == 102)
        // Bad flags are a config error.
        let badFlag: JSON = ["type": "calico-ipam", "assign_ipv4": "yes"]
        #expect((try Self.json(try Self.run("ADD", "flag", s.config(version: "1.0.0", ipam: badFlag)))["code"]) == 7)
    }

    static func insert(_ s: Setup, _ key: String, _ value: String) throws {
        // Writes through a separate process, as calicoctl would (the store's own CLI is
        // another helper's; plain SQL on the kv table is enough for a fixture).
        let store = try SQLiteDatastore(path: s.db)
        defer { store.close() }
        try store.put(key, value)
    }

    /// Starts every invocation before waiting for any of them.
    static func runAtOnce(_ calls: [(String, String)], config: String, netns: Bool = true) throws -> [Finished] {
        var running: [(ChildProcess, Pipe, Pipe)] = []
        for (command, id) in calls {
            let p = ChildProcess()
            p.executableURL = URL(fileURLWithPath: binary)
            p.environment = env(command, id, netns: netns)
            let input = Pipe(), output = Pipe(), errors = Pipe()
            p.standardInput = input
            p.standardOutput = output
            p.standardError = errors
            try p.run()
            input.fileHandleForWriting.write(Data(config.utf8))
            try input.fileHandleForWriting.close()
            running.append((p, output, errors))
        }
        return running.map { p, output, errors in
            let out = output.fileHandleForReading.readDataToEndOfFile()
            let err = errors.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return Finished(status: p.terminationStatus, stdout: out, stderr: err)
        }
    }

    /// One finished process of `runAtOnce`.
    struct Finished {
        var status: Int32
        var stdout: Data
        var stderr: Data
        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    static func json(_ r: Finished) throws -> JSON { try JSON(parsing: r.stdoutText) }
}
