import Foundation
import TestSupport

/// Runs the BUILT calicoctl against a fresh SQLite file, with the environment replaced
/// (only `DATASTORE_TYPE`, `SQLITE_PATH` and what a test adds), as an operator's shell would.
struct Calicoctl {
    let directory: URL
    var database: String { directory.appendingPathComponent("calico.db").path }
    var extraEnvironment: [String: String] = [:]

    init() {
        directory = TestEnvironment.temporaryDirectory("calicoctl")
    }

    static var isBuilt: Bool { TestEnvironment.hasProduct("calicoctl") }

    var environment: [String: String] {
        var env = ["DATASTORE_TYPE": "sqlite", "SQLITE_PATH": database, "PATH": "/usr/bin:/bin"]
        for (k, v) in extraEnvironment { env[k] = v }
        return env
    }

    @discardableResult
    func run(_ args: [String], stdin: String = "") throws -> CommandResult {
        try Command.run([TestEnvironment.product("calicoctl")] + args, environment: environment, stdin: Data(stdin.utf8))
    }

    /// A fixture's path: `Fixtures/resources/<name>`.
    static func fixture(_ name: String) -> String {
        TestEnvironment.repositoryRoot.appendingPathComponent("Fixtures/resources/\(name)").path
    }

    /// Writes `text` to a file in the test's directory and returns its path.
    func file(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// The keys stored under `prefix`, read with the `sqlite3` tool (what an operator
    /// would check), or [] when the file does not exist yet.
    func storedKeys(_ prefix: String = "/calico/") throws -> [String] {
        guard FileManager.default.fileExists(atPath: database) else { return [] }
        let out = try Command.check(["sqlite3", database, "SELECT key FROM kv WHERE key LIKE '\(prefix)%' ORDER BY key"])
        return out.split(separator: "\n").map(String.init)
    }

    /// The stored value of `key`, read with `sqlite3`.
    func storedValue(_ key: String) throws -> String {
        try Command.check(["sqlite3", database, "SELECT value FROM kv WHERE key = '\(key)'"])
            .trimmingCharacters(in: .newlines)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

let hasSQLite3 = TestEnvironment.has("sqlite3")
