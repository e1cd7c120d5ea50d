import CalicoAPI
import Datastore
import Foundation
@testable import IPAM
import IPAddress
import JSON
import Testing

/// The assign path skips full blocks of ours by scanning their text (`BlockSummary`): the
/// scan must agree with the full decode whenever it answers, and the assignments must be
/// the same as with a full decode of every block.
@Suite struct BlockSummaryTests {
    /// A /29 block of node1 with `used` ordinals taken.
    func blockText(used: Int, affinity: String? = "host:node1") -> String {
        var b = AllocationBlock(cidr: IPNetwork("10.1.2.0/29")!, affinity: affinity)
        _ = b.assign(count: used, handleID: "calico.h", secondary: ["node": "node1"])
        return b.json.compactText
    }

    @Test func agreesWithTheFullDecode() throws {
        var texts = [blockText(used: 8), blockText(used: 7), blockText(used: 0), blockText(used: 8, affinity: nil),
                     blockText(used: 8, affinity: "host:node2")]
        texts += texts.map { try! JSON(parsing: $0).prettyText }
        texts.append(#"  { "unallocated" : [ ] , "cidr":"10.1.2.0/29", "affinity" : "host:node1" }  "#)
        texts.append(#"{"cidr":"10.1.2.0/29","affinity":"host:node1","unallocated":[ 3 ]}"#)
        for text in texts {
            let s = try #require(BlockSummary(jsonText: text), "\(text)")
            let b = try AllocationBlock(jsonText: text)
            #expect(s.affinity == b.affinity, "\(text)")
            #expect(s.hasFreeOrdinal == !b.unallocated.isEmpty, "\(text)")
        }
        #expect(BlockSummary(jsonText: blockText(used: 8)) == BlockSummary(affinity: "host:node1", hasFreeOrdinal: false))
        #expect(BlockSummary(jsonText: blockText(used: 3)) == BlockSummary(affinity: "host:node1", hasFreeOrdinal: true))
        #expect(BlockSummary(jsonText: blockText(used: 8, affinity: nil)) == BlockSummary(affinity: nil, hasFreeOrdinal: false))
    }

    @Test func declinesWhatItCannotReadExactly() {
        let undecided = [
            // An escape in the affinity, a key or the fields it reads.
            #"{"affinity":"host:n\u0031","unallocated":[]}"#,
            #"{"affin\u0069ty":"host:node1","unallocated":[]}"#,
            // The old `hostAffinity` field, a repeated field, a missing one.
            #"{"affinity":null,"hostAffinity":"node1","unallocated":[]}"#,
            #"{"affinity":"host:node1","unallocated":[],"unallocated":[1]}"#,
            #"{"affinity":"host:node1","affinity":"host:node2","unallocated":[]}"#,
            #"{"affinity":"host:node1"}"#,
            #"{"unallocated":[]}"#,
            #"{"affinity":"host:node1","unallocated":null}"#,
            // Malformed: missing comma, trailing text, unterminated values, not an object.
            #"{"affinity":"host:node1" "unallocated":[]}"#,
            #"{"affinity":"host:node1","unallocated":[]}x"#,
            #"{"affinity":"host:node1","unallocated":[1,2"#,
            #"{"affinity":"host:node1","attributes":[{"handle_id":"a}"}],"unallocated":[]"#,
            #"["affinity","host:node1"]"#,
            "",
        ]
        for text in undecided { #expect(BlockSummary(jsonText: text) == nil, "\(text)") }
        // Brackets and quotes inside strings of other fields do not confuse the scan.
        let tricky = #"{"attributes":[{"handle_id":"a]}\"[{","secondary":{"k":"\"unallocated\":[1]"}}],"affinity":"host:node1","unallocated":[]}"#
        #expect(BlockSummary(jsonText: tricky) == BlockSummary(affinity: "host:node1", hasFreeOrdinal: false))
    }

    /// Several full /30 blocks of ours before one with room: the next address is the first
    /// free ordinal of the first affine block with room, with no new block claimed.
    @Test(arguments: Backend.allCases)
    func fullBlocksAreSkippedInOrder(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.44.0.0/24", blockSize: 30)
        let ipam = IPAMClient(store: t.store)
        var got: [IPAddress] = []
        for i in 0..<12 { got.append(try #require(try ipam.assign("calico.c\(i)").ipv4.first).address) }
        let blocks = try t.keys("/calico/ipam/v2/assignment/ipv4/block/")
        #expect(blocks.count == 3)
        // Free the second address of the block whose affinity is read last: the two read
        // before it are full and skipped.
        let lastKey = try #require(try t.keys("/calico/ipam/v2/host/node1/ipv4/block/").last)
        let last = try #require(IPNetwork(String(lastKey.split(separator: "/").last!).replacingOccurrences(of: "-", with: "/")))
        let index = try #require(got.indices.filter { last.contains(got[$0]) }.dropFirst().first)
        let freed = got[index]
        #expect(try ipam.release(handleID: "calico.c\(index)") == [freed])
        let next = try #require(try ipam.assign("calico.next").ipv4.first)
        #expect(next.address == freed && next.isNew)
        #expect(try t.keys("/calico/ipam/v2/assignment/ipv4/block/") == blocks)
        // Now all full: a fourth block is claimed.
        let more = try #require(try ipam.assign("calico.more").ipv4.first)
        #expect(!Set(got).contains(more.address))
        #expect(try t.keys("/calico/ipam/v2/assignment/ipv4/block/").count == 4)
    }

    /// A pending affinity to a full block of ours is still confirmed; our stale affinity to a
    /// full block another host owns is still removed.
    @Test func fullBlocksStillHealAffinities() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.45.0.0/24", blockSize: 30)
        let ipam = IPAMClient(store: t.store)
        var full: Set<IPNetwork> = []
        for i in 0..<4 { full.insert(try #require(try ipam.assign("calico.c\(i)").ipv4.first).block) }
        #expect(full.count == 1)
        let seg = try #require(full.first).description.replacingOccurrences(of: "/", with: "-")
        let mine = "/calico/ipam/v2/host/node1/ipv4/block/\(seg)"
        try t.store.put(mine, #"{"state":"pending","deleted":false}"#)
        let stale = "/calico/ipam/v2/host/node2/ipv4/block/\(seg)"
        try t.store.put(stale, #"{"state":"confirmed","deleted":false}"#)
        let a = try #require(try ipam.assign("calico.a").ipv4.first)
        #expect(!full.contains(a.block))
        #expect(try t.value(mine)?["state"] == "confirmed")
        let b = try #require(try ipam.assign("calico.b", node: "node2").ipv4.first)
        #expect(b.block != a.block && !full.contains(b.block))
        #expect(try t.store.get(stale) == nil)
    }
}
