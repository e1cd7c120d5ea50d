import CalicoAPI
import Testing

@Suite struct NamesTests {
    @Test func workloadEndpointNames() {
        let cases: [(String, String, String, String)] = [
            ("agent1", "5baff64c-d028", "eth0", "agent1-cni-5baff64c--d028-eth0"),
            ("agent-1", "5baff64c-d028-4d1e-9c2b-6f0e1a2b3c4d", "eth0",
             "agent--1-cni-5baff64c--d028--4d1e--9c2b--6f0e1a2b3c4d-eth0"),
            // A nested Mesos container: `<parent>.<child>`.
            ("ip-10-0-0-11.ec2.internal", "a1b2.c3-d4", "eth1", "ip--10--0--0--11.ec2.internal-cni-a1b2.c3--d4-eth1"),
            ("n", "abc", "net-a", "n-cni-abc-net--a"),
        ]
        for (node, cid, ifname, expected) in cases {
            let name = WorkloadEndpointName(node: node, containerID: cid, endpoint: ifname)
            #expect(name.description == expected)
            #expect(WorkloadEndpointName(parsing: expected) == name)
        }
        #expect(WorkloadEndpointName(parsing: "a-b-c") == nil)
    }

    @Test func labelSanitising() {
        let cases: [(String, String)] = [
            ("bookstore", "bookstore"),
            ("biz_type", "biz_type"),
            ("a/b", "a.b"),
            ("marathon/app id", "marathon.app-id"),
            ("hello   world!!", "hello-world"),
            ("a--b", "a--b"),
            ("a-.-b", "a.b"),
            ("a/-/b", "a.b"),
            ("x..y", "x.y"),
            ("--lead.and.trail--", "lead.and.trail"),
            ("..dots..", "dots"),
            ("_under_", "under"),
            ("é café", "caf"),
            ("a:b=c", "a-b-c"),
            ("", ""),
            ("///", ""),
        ]
        for (input, expected) in cases { #expect(MesosLabels.sanitize(input) == expected, "\(input)") }
    }

    @Test func longValuesAreShortenedStably() {
        let value = String(repeating: "abcdefghij", count: 8)  // 80 characters
        let s = MesosLabels.sanitize(value)
        #expect(s.count == 63)
        #expect(s.hasPrefix(String(SHA256.hexDigest(value).prefix(7)) + "..."))
        #expect(s.hasSuffix(String(value.suffix(53))))
        #expect(MesosLabels.sanitize(value) == s)
        // Two values differing only early keep distinct results.
        let other = "X" + value.dropFirst()
        #expect(MesosLabels.sanitize(other) != s)
        // 63 characters exactly are kept.
        let exact = String(repeating: "a", count: 63)
        #expect(MesosLabels.sanitize(exact) == exact)
    }

    @Test func labelMapsDropEmptyKeys() {
        let out = MesosLabels.sanitize(["biz type": "book store", "//": "x", "role": "server"])
        #expect(out == ["biz-type": "book-store", "role": "server"])
    }

    @Test func sha256KnownAnswers() {
        #expect(SHA256.hexDigest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hexDigest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hexDigest(String(repeating: "a", count: 1000))
            == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
