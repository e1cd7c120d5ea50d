import Foundation
import NetNS
import Netlink
import TestSupport
import Testing

@Suite("Network namespace handles")
struct NetworkNamespaceTests {
    @Test func missingPathIsNotFound() {
        let error = #expect(throws: NetNSError.self) { try NetworkNamespace(path: "/var/run/netns/does-not-exist-\(getpid())") }
        #expect(error == .notFound(path: "/var/run/netns/does-not-exist-\(getpid())"))
        let inMissingDirectory = #expect(throws: NetNSError.self) {
            try NetworkNamespace(path: "/nonexistent-dir-\(getpid())/ns")
        }
        #expect(inMissingDirectory == .notFound(path: "/nonexistent-dir-\(getpid())/ns"))
    }

    @Test func plainFileIsNotANamespace() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-netns-\(getpid())").path
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: NetNSError.self) { try NetworkNamespace(path: path) }
        #expect(error == .notANamespace(path: path))
    }

    @Test(.enabled(if: namespaceTests, "needs root and the ip tool"))
    func runEntersOnlyADedicatedThread() throws {
        let a = try TestNamespace("ns-a")
        let handle = try NetworkNamespace(path: a.path)
        let before = try NetworkNamespace.current().identity
        #expect(before != handle.identity)
        let inside = try handle.run { try NetworkNamespace.current().identity }
        #expect(inside == handle.identity)
        #expect(try NetworkNamespace.current().identity == before)
        // Two handles on one namespace compare equal; the process's own by pid too.
        #expect(try NetworkNamespace(named: a.name).identity == handle.identity)
        #expect(try NetworkNamespace(processID: getpid()).identity == before)
    }

    @Test(.enabled(if: namespaceTests, "needs root and the ip tool"))
    func runPropagatesTheBodysErrorAndResult() throws {
        struct Boom: Error, Equatable {}
        let a = try TestNamespace("ns-a")
        let handle = try NetworkNamespace(path: a.path)
        #expect(throws: Boom()) { try handle.run { throw Boom() } }
        #expect(try handle.run { 42 } == 42)
    }
}
