import Foundation
import Testing
@testable import JSON

@Suite struct JSONTests {
    @Test func roundTripsMesosStdin() throws {
        let text = #"{"args":{"org.apache.mesos":{"network_info":{"ip_addresses":[{"protocol":"IPv4"}],"labels":{"labels":[{"key":"biz_type","value":"bookstore"}]},"name":"calico"}}},"cniVersion":"0.2.0","etcd_endpoints":"http:\/\/127.0.0.1:2379","ipam":{"type":"calico-ipam"},"mtu":1450,"name":"calico","type":"calico"}"#
        let v = try JSON(parsing: text)
        #expect(v["etcd_endpoints"]?.stringValue == "http://127.0.0.1:2379")
        #expect(v["mtu"] == .int(1450))
        #expect(v.compactText == text.replacingOccurrences(of: "\\/", with: "/"))
    }

    @Test func escapesAndUnicode() throws {
        let v = try JSON(parsing: #"["a\"b\\c\n\u00e9\ud83d\ude00", -1.5e3, 0, true, null]"#)
        #expect(v[0]?.stringValue == "a\"b\\c\né😀")
        #expect(v[1] == .double(-1500))
        #expect(v[2] == .int(0))
        #expect(v.compactText == #"["a\"b\\c\né😀",-1500,0,true,null]"#)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "tru", "{} x", "\"\u{01}\""])
    func rejectsInvalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON(parsing: text) }
    }

    @Test func prettyPrintsSorted() {
        let v: JSON = ["b": [1, 2], "a": ["c": nil]]
        #expect(v.prettyText == "{\n  \"a\": {\n    \"c\": null\n  },\n  \"b\": [\n    1,\n    2\n  ]\n}")
    }
}
