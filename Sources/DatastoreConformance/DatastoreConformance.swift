import Datastore

/// The `Datastore` contract as a list of checks every backend must pass (SQLite, etcd, the
/// in-memory fake). The semantics are etcd v3's, since Calico's data model relies on them.
public enum DatastoreConformance {
    public static let cases: [ConformanceCase] = [
        revisions, keyRevisions, createIfAbsent, compareAndSwap, deleteWithRevision, deletePrefix,
        listSortedAtOneRevision, prefixWithinSegment, batchReads, prefetchServesOnce, valuesByteExact, transactionElse,
        multipleComparisons, watchHistory, watchLive, watchPrefixFilter, watchTimeout,
        watchCompacted, concurrentIncrements, closedStore,
    ]

    // MARK: Revisions

    static let revisions = ConformanceCase("revision increases by one per write transaction, not on reads or failed transactions") { s in
        let p = uniquePrefix()
        let r0 = try s.currentRevision()
        let r1 = try s.put(p + "a", "1")
        try checkEqual(r1, r0 + 1, "revision after a put")
        try checkEqual(try s.currentRevision(), r1, "currentRevision after a put")

        _ = try s.get(p + "a")
        _ = try s.get(p + "missing")
        let listed = try s.list(prefix: p)
        try checkEqual(listed.revision, r1, "list revision")
        try checkEqual(try s.currentRevision(), r1, "revision after reads")

        let failed = try s.transact(Transaction(if: [.createRevision(key: p + "a", equals: 0)], then: [.put(key: p + "a", value: "2")]))
        try check(!failed.succeeded, "a create of an existing key must fail")
        try checkEqual(failed.revision, r1, "revision reported by a failed transaction with no else branch")
        try checkEqual(try s.currentRevision(), r1, "revision after a failed transaction")

        let many = try s.transact(Transaction(if: [], then: [.put(key: p + "b", value: "1"), .put(key: p + "c", value: "1"), .delete(key: p + "a")]))
        try checkEqual(many.revision, r1 + 1, "revision after one transaction of three writes")
        for k in ["b", "c"] {
            let kv = try required(try s.get(p + k), "\(p + k) after the transaction")
            try checkEqual(kv.modRevision, r1 + 1, "mod revision of \(k) written in one transaction")
        }

        // Deleting nothing changes nothing (etcd does not bump the revision for it).
        let noop = try s.transact(Transaction(if: [], then: [.delete(key: p + "never")]))
        try check(noop.succeeded, "delete of an absent key must succeed")
        try checkEqual(noop.revision, r1 + 1, "revision after deleting an absent key")
        _ = try s.transact(Transaction(if: [], then: [.deletePrefix(p + "none/")]))
        try checkEqual(try s.currentRevision(), r1 + 1, "revision after deleting an empty prefix")
    }

    static let keyRevisions = ConformanceCase("create revision, mod revision and version") { s in
        let k = uniquePrefix() + "k"
        let r1 = try s.put(k, "v1")
        try checkEqual(try s.get(k), KeyValue(key: k, value: "v1", createRevision: r1, modRevision: r1, version: 1), "after create")
        let r2 = try s.put(k, "v2")
        try checkEqual(try s.get(k), KeyValue(key: k, value: "v2", createRevision: r1, modRevision: r2, version: 2), "after second put")
        let r3 = try required(try s.update(k, "v3", modRevision: r2), "update at the current mod revision")
        try checkEqual(try s.get(k), KeyValue(key: k, value: "v3", createRevision: r1, modRevision: r3, version: 3), "after update")
        try check(try s.delete(k), "delete")
        try checkEqual(try s.get(k), nil, "get after delete")
        let r5 = try s.put(k, "again")
        try checkEqual(try s.get(k), KeyValue(key: k, value: "again", createRevision: r5, modRevision: r5, version: 1),
                       "a re-created key starts over")
    }

    // MARK: Compare-and-swap

    static let createIfAbsent = ConformanceCase("create if absent") { s in
        let k = uniquePrefix() + "k"
        let r = try required(try s.create(k, "first"), "create of a new key")
        try checkEqual(try s.create(k, "second"), nil, "create of an existing key")
        let kv = try required(try s.get(k), "key after the creates")
        try checkEqual(kv.value, "first", "value after a losing create")
        try checkEqual(kv.modRevision, r, "mod revision after a losing create")
        try checkEqual(try s.currentRevision(), r, "revision after a losing create")
    }

    static let compareAndSwap = ConformanceCase("compare-and-swap update conflicts") { s in
        let k = uniquePrefix() + "k"
        try checkEqual(try s.update(k, "x", modRevision: 1), nil, "update of an absent key")
        try checkEqual(try s.get(k), nil, "absent key after a failed update")
        let r1 = try required(try s.create(k, "a"), "create")
        let r2 = try required(try s.update(k, "b", modRevision: r1), "update at the current revision")
        try checkEqual(try s.update(k, "stale", modRevision: r1), nil, "update at a stale revision")
        try checkEqual(try s.get(k)?.value, "b", "value after a stale update")
        try checkEqual(try s.get(k)?.modRevision, r2, "mod revision after a stale update")
        // modRevision == 0 means "absent", as createRevision == 0.
        let absent = try s.transact(Transaction(if: [.modRevision(key: k + "/none", equals: 0)], then: [.put(key: k + "/none", value: "n")]))
        try check(absent.succeeded, "modRevision == 0 must hold for an absent key")
        let present = try s.transact(Transaction(if: [.modRevision(key: k, equals: 0)], then: [.put(key: k, value: "bad")]))
        try check(!present.succeeded, "modRevision == 0 must not hold for an existing key")
        try checkEqual(try s.get(k)?.value, "b", "value after a failed modRevision == 0 transaction")
    }

    static let deleteWithRevision = ConformanceCase("delete with revision") { s in
        let k = uniquePrefix() + "k"
        let r1 = try s.put(k, "a")
        let r2 = try s.put(k, "b")
        try check(!(try s.delete(k, modRevision: r1)), "delete at a stale revision must fail")
        try checkEqual(try s.get(k)?.value, "b", "value after a failed delete")
        try checkEqual(try s.currentRevision(), r2, "revision after a failed delete")
        try check(try s.delete(k, modRevision: r2), "delete at the current revision must succeed")
        try checkEqual(try s.get(k), nil, "get after delete")
        try checkEqual(try s.currentRevision(), r2 + 1, "revision after a delete")
        try check(try s.delete(k), "delete of an absent key without revision must succeed")
        try check(!(try s.delete(k, modRevision: r2)), "delete of an absent key at a revision must fail")
    }

    static let deletePrefix = ConformanceCase("delete prefix") { s in
        let p = uniquePrefix()
        for k in ["d/a", "d/b", "d/c/e", "dx", "e"] { try s.put(p + k, k) }
        let r = try s.currentRevision()
        let t = try s.transact(Transaction(if: [], then: [.deletePrefix(p + "d/")]))
        try check(t.succeeded, "deletePrefix transaction must succeed")
        try checkEqual(t.revision, r + 1, "revision after deleting three keys at once")
        try checkEqual(try s.list(prefix: p).kvs.map(\.key), [p + "dx", p + "e"], "keys left after deletePrefix")
    }

    // MARK: Lists

    static let listSortedAtOneRevision = ConformanceCase("list sorted by key bytes, at one revision") { s in
        let p = uniquePrefix()
        // Inserted out of order; byte order puts "B" before "a", "a/b" before "ab", and
        // non-ASCII after ASCII.
        let keys = ["z", "ab", "a/b", "é", "B", "a", "a0"]
        var revs: [String: Int64] = [:]
        for k in keys { revs[k] = try s.put(p + k, "v-" + k) }
        let result = try s.list(prefix: p)
        try checkEqual(result.kvs.map(\.key), ["B", "a", "a/b", "a0", "ab", "z", "é"].map { p + $0 }, "list order")
        try checkEqual(result.revision, try s.currentRevision(), "list revision")
        for kv in result.kvs {
            let k = String(kv.key.dropFirst(p.count))
            try checkEqual(kv.value, "v-" + k, "value of \(k) in list")
            try checkEqual(kv.modRevision, revs[k]!, "mod revision of \(k) in list")
            try checkEqual(kv.createRevision, revs[k]!, "create revision of \(k) in list")
            try checkEqual(kv.version, 1, "version of \(k) in list")
        }
        try checkEqual(try s.list(prefix: p + "nothing/").kvs, [], "list of an empty prefix")
    }

    static let batchReads = ConformanceCase("a batch of reads answers each read as alone, in order, at one revision") { s in
        let p = uniquePrefix()
        try s.put(p + "h/x", "handle")
        try s.put(p + "pools/a", "A")
        try s.put(p + "pools/b", "B")
        try s.put(p + "poolsx", "not under pools/")
        let revision = try s.put(p + "k", "k")
        let reads: [BatchRead] = [.get(p + "h/x"), .list(prefix: p + "pools/"), .get(p + "missing"),
                                  .list(prefix: p + "none/"), .get(p + "k"), .get(p + "h/x")]
        let results = try s.read(reads)
        try checkEqual(results.count, reads.count, "answers to a batch of \(reads.count) reads")
        for (read, result) in zip(reads, results) {
            switch (read, result) {
            case (.get(let key), .value(let kv)):
                try checkEqual(kv, try s.get(key), "batch answer for get \(key)")
            case (.list(let prefix), .list(let page)):
                let alone = try s.list(prefix: prefix)
                try checkEqual(page.kvs, alone.kvs, "batch answer for list \(prefix)")
                try checkEqual(page.revision, revision, "revision of the batch's list \(prefix)")
            default:
                throw ConformanceFailure("batch answer of the wrong kind for \(read): \(result)")
            }
        }
        try checkEqual(try s.currentRevision(), revision, "revision after a batch of reads")
        try checkEqual(try s.read([]), [], "an empty batch")
    }

    static let prefetchServesOnce = ConformanceCase("a prefetched read is served once, and never after the caller's own write") { s in
        let p = uniquePrefix()
        try s.put(p + "a", "1")
        try s.put(p + "l/x", "1")
        let pre = try PrefetchingDatastore(s, prefetching: [.get(p + "a"), .list(prefix: p + "l/"), .get(p + "b")])
        // Another writer changes the keys after the batch: the first reads still see the
        // batch (as if read then), later ones the store.
        try s.put(p + "a", "2")
        try s.put(p + "l/y", "2")
        try checkEqual(try pre.get(p + "a")?.value, "1", "first get of a prefetched key")
        try checkEqual(try pre.get(p + "a")?.value, "2", "second get of a prefetched key")
        try checkEqual(try pre.list(prefix: p + "l/").kvs.map(\.key), [p + "l/x"], "first list of a prefetched prefix")
        try checkEqual(try pre.list(prefix: p + "l/").kvs.map(\.key), [p + "l/x", p + "l/y"], "second list of a prefetched prefix")
        // A write through the store drops the prefetched answer it changes.
        try check(pre.isPending(.get(p + "b")), "prefetched get of b waits to be served")
        _ = try pre.create(p + "b", "mine")
        try check(!pre.isPending(.get(p + "b")), "a prefetched answer the caller's write changed is dropped")
        try checkEqual(try pre.get(p + "b")?.value, "mine", "get after the caller's own write")
        try checkEqual(pre.keysUsed(under: p), [p + "b", p + "a"], "keys written, then keys only read, through the store")
    }

    static let prefixWithinSegment = ConformanceCase("a prefix that is a prefix of another key segment") { s in
        let p = uniquePrefix() + "ipam/v2/host/"
        try s.put(p + "node1/ipv4/block/10.0.0.0-26", "{}")
        try s.put(p + "node10/ipv4/block/10.0.1.0-26", "{}")
        try s.put(p + "node1", "{}")
        try checkEqual(try s.list(prefix: p + "node1/").kvs.map(\.key), [p + "node1/ipv4/block/10.0.0.0-26"],
                       "list of node1/ must not include node10/")
        try checkEqual(try s.list(prefix: p + "node1").kvs.count, 3, "list of node1 (no slash) is a plain byte prefix")
        _ = try s.transact(Transaction(if: [], then: [.deletePrefix(p + "node1/")]))
        try checkEqual(try s.list(prefix: p).kvs.map(\.key), [p + "node1", p + "node10/ipv4/block/10.0.1.0-26"],
                       "deletePrefix of node1/ must spare node1 and node10/")
    }

    static let valuesByteExact = ConformanceCase("values and keys are byte-exact") { s in
        let p = uniquePrefix()
        var big = "{\"items\":["
        for i in 0..<4000 { big += (i == 0 ? "" : ",") + "{\"n\":\(i),\"s\":\"\\\"quoted\\\" \\u00e9 \\\\ \(i)\"}" }
        big += "]}"
        let values: [String: String] = [
            "unicode": "{\"name\":\"café ☕ 𝄞 日本語\",\"combining\":\"e\u{301}\"}",
            "quotes": "{\"a\":\"it's \\\"quoted\\\"\",\"b\":'single'}",
            "escapes": "line1\nline2\r\n\ttab \\ backslash \\u0000 %s %d ?1 :name $1",
            "sql": "'); DROP TABLE kv; --",
            "empty": "",
            "spaces": "  leading and trailing  ",
            "big": big,
        ]
        for (name, value) in values { try s.put(p + name, value) }
        for (name, value) in values {
            let got = try required(try s.get(p + name), "get \(name)")
            try check(sameBytes(got.value, value), "value \(name) changed: \(got.value.utf8.count) bytes back for \(value.utf8.count)")
        }
        for kv in try s.list(prefix: p).kvs {
            let name = String(kv.key.dropFirst(p.count))
            try check(sameBytes(kv.value, values[name]!), "listed value \(name) changed")
        }
        // Canonically equivalent but different bytes: two keys, and a value comparison that fails.
        let precomposed = p + "k/\u{e9}", decomposed = p + "k/e\u{301}"
        try s.put(precomposed, "\u{e9}")
        try s.put(decomposed, "e\u{301}")
        try checkEqual(try s.list(prefix: p + "k/").kvs.count, 2, "keys that differ only in Unicode normalisation")
        try check(sameBytes(try required(try s.get(decomposed), "decomposed key").value, "e\u{301}"), "decomposed value")
        let t = try s.transact(Transaction(if: [.value(key: precomposed, equals: "e\u{301}")], then: [.put(key: precomposed, value: "bad")]))
        try check(!t.succeeded, "a value comparison must compare bytes, not Unicode equivalence")
        let unicodeKey = p + "ключ/💡 space"
        try s.put(unicodeKey, "x")
        try checkEqual(try s.list(prefix: p + "ключ/").kvs.map(\.key), [unicodeKey], "non-ASCII key round trip")
    }

    // MARK: Transactions

    static let transactionElse = ConformanceCase("transaction else branch") { s in
        let p = uniquePrefix()
        try s.put(p + "a", "1")
        let r = try s.currentRevision()
        let t = try s.transact(Transaction(if: [.value(key: p + "a", equals: "2")],
                                           then: [.put(key: p + "then", value: "x")],
                                           else: [.put(key: p + "else", value: "y"), .delete(key: p + "a")]))
        try check(!t.succeeded, "comparison a == 2 must fail")
        try checkEqual(t.revision, r + 1, "revision after an else branch that writes")
        try checkEqual(try s.get(p + "then"), nil, "then-branch key")
        try checkEqual(try s.get(p + "else")?.value, "y", "else-branch key")
        try checkEqual(try s.get(p + "a"), nil, "key deleted by the else branch")
    }

    static let multipleComparisons = ConformanceCase("multiple comparisons must all hold") { s in
        let p = uniquePrefix()
        let ra = try s.put(p + "a", "A")
        let rb = try s.put(p + "b", "B")
        let all: [Comparison] = [.modRevision(key: p + "a", equals: ra), .createRevision(key: p + "b", equals: rb),
                                 .value(key: p + "b", equals: "B"), .createRevision(key: p + "c", equals: 0)]
        let ok = try s.transact(Transaction(if: all, then: [.put(key: p + "c", value: "C")], else: [.put(key: p + "x", value: "X")]))
        try check(ok.succeeded, "all four comparisons hold")
        try checkEqual(try s.get(p + "c")?.value, "C", "then-branch write")
        for i in all.indices {
            var broken = all
            switch all[i] {
            case .modRevision(let k, let r): broken[i] = .modRevision(key: k, equals: r + 100)
            case .createRevision(let k, _): broken[i] = .createRevision(key: k, equals: 12345)
            case .value(let k, _): broken[i] = .value(key: k, equals: "not B")
            }
            let t = try s.transact(Transaction(if: broken, then: [.put(key: p + "then\(i)", value: "")]))
            try check(!t.succeeded, "comparison \(i) broken: transaction must fail")
            try checkEqual(try s.get(p + "then\(i)"), nil, "then-branch write with comparison \(i) broken")
        }
        let missing = try s.transact(Transaction(if: [.value(key: p + "nothing", equals: "")], then: [.put(key: p + "y", value: "")]))
        try check(!missing.succeeded, "a value comparison on an absent key must fail, even against \"\"")
    }

    // MARK: Watches

    static let watchHistory = ConformanceCase("watch from a revision replays puts and deletes in order with previous values") { s in
        let p = uniquePrefix()
        let r0 = try s.currentRevision()
        let r1 = try s.put(p + "a", "1")
        let r2 = try s.put(p + "a", "2")
        let r3 = try s.put(p + "b", "B")
        let r4 = try s.transact(Transaction(if: [], then: [.delete(key: p + "a")])).revision
        let r5 = try s.transact(Transaction(if: [], then: [.deletePrefix(p)])).revision

        let w = try s.watch(prefix: p, after: r0)
        defer { w.cancel() }
        let events = try collect(w, count: 5, within: 5)
        try checkEqual(events.count, 5, "number of events")
        try checkEqual(events.map(\.kind), [.put, .put, .put, .delete, .delete], "event kinds")
        try checkEqual(events.map(\.kv.key), [p + "a", p + "a", p + "b", p + "a", p + "b"], "event keys")
        try checkEqual(events.map(\.kv.modRevision), [r1, r2, r3, r4, r5], "event revisions")
        try checkEqual(events[0].kv, KeyValue(key: p + "a", value: "1", createRevision: r1, modRevision: r1, version: 1), "first put")
        try checkEqual(events[1].kv, KeyValue(key: p + "a", value: "2", createRevision: r1, modRevision: r2, version: 2), "second put")
        try checkEqual(events[0].previous, nil, "previous value of a create")
        try checkEqual(events[1].previous?.value, "1", "previous value of an update")
        try checkEqual(events[3].previous?.value, "2", "previous value of a delete")
        try checkEqual(events[3].previous?.modRevision, r2, "previous mod revision of a delete")
        try checkEqual(events[4].previous?.value, "B", "previous value of a prefix delete")

        // A watch from the middle starts after its revision.
        let mid = try s.watch(prefix: p, after: r3)
        defer { mid.cancel() }
        let later = try collect(mid, count: 2, within: 5)
        try checkEqual(later.map(\.kv.modRevision), [r4, r5], "events after r3")
        try checkEqual(try mid.next(timeout: 0.2), [], "no further events")
    }

    static let watchLive = ConformanceCase("watch wakes for changes made after it started") { s in
        let p = uniquePrefix()
        let r0 = try s.currentRevision()
        let w = try s.watch(prefix: p, after: r0)
        defer { w.cancel() }
        let writer = onThreads(1) { _ in
            // Give the watcher time to block first.
            sleep(seconds: 0.2)
            try s.put(p + "late", "v")
        }
        let start = now()
        let events = try collect(w, count: 1, within: 10)
        let waited = now() - start
        if let e = writer[0] { throw e }
        try checkEqual(events.map(\.kv.key), [p + "late"], "event from the writer thread")
        try checkEqual(events.first?.kv.modRevision, r0 + 1, "revision of the live event")
        try check(waited < 5, "watch took \(waited) s to notice a change")
    }

    static let watchPrefixFilter = ConformanceCase("watch sees only its prefix") { s in
        let p = uniquePrefix()
        let r0 = try s.currentRevision()
        try s.put(p + "other/x", "no")
        try s.put(p + "watchedX", "no: a sibling, not under watched/")
        try s.put(p + "watched/a", "yes")
        let w = try s.watch(prefix: p + "watched/", after: r0)
        defer { w.cancel() }
        let events = try collect(w, count: 1, within: 5)
        try checkEqual(events.map(\.kv.key), [p + "watched/a"], "events under the prefix")
        try checkEqual(try w.next(timeout: 0.2), [], "nothing more under the prefix")
        try s.put(p + "other/y", "no")
        try checkEqual(try w.next(timeout: 0.2), [], "a write elsewhere")
    }

    static let watchTimeout = ConformanceCase("watch next(timeout:) returns no events after the timeout") { s in
        let w = try s.watch(prefix: uniquePrefix(), after: try s.currentRevision())
        defer { w.cancel() }
        let start = now()
        let events = try w.next(timeout: 0.3)
        let waited = now() - start
        try checkEqual(events, [], "events on a quiet prefix")
        try check(waited >= 0.25, "next(timeout: 0.3) returned after only \(waited) s")
        try check(waited < 3, "next(timeout: 0.3) took \(waited) s")
    }

    static let watchCompacted = ConformanceCase("watch from a compacted revision throws .compacted") { s in
        guard let c = s as? any CompactableDatastore else { return }  // Only where the backend compacts.
        let p = uniquePrefix()
        let r0 = try s.currentRevision()
        try s.put(p + "a", "1")
        try s.put(p + "a", "2")
        let r2 = try s.put(p + "a", "3")
        try c.compact(through: r2)
        var thrown: DatastoreError?
        do {
            let w = try s.watch(prefix: p, after: r0)
            defer { w.cancel() }
            let events = try w.next(timeout: 1)
            throw ConformanceFailure("watch after a compacted revision returned \(events.count) events instead of throwing")
        } catch let e as DatastoreError {
            thrown = e
        }
        guard case .compacted = thrown else {
            throw ConformanceFailure("expected .compacted, got \(String(describing: thrown))")
        }
        // Watching from the compaction point still works.
        let w = try s.watch(prefix: p, after: r2)
        defer { w.cancel() }
        try s.put(p + "a", "4")
        try checkEqual(try collect(w, count: 1, within: 5).map(\.kv.value), ["4"], "watch after the compaction point")
    }

    // MARK: Concurrency and lifecycle

    static let concurrentIncrements = ConformanceCase("concurrent compare-and-swap increments lose no update") { s in
        let k = uniquePrefix() + "counter"
        try s.put(k, "0")
        let threads = 8, each = 25
        let errors = onThreads(threads) { _ in
            for _ in 0..<each {
                while true {
                    let kv = try required(try s.get(k), "counter")
                    let n = try required(Int(kv.value), "counter value \(kv.value)")
                    if try s.update(k, String(n + 1), modRevision: kv.modRevision) != nil { break }
                }
            }
        }
        if let e = errors.compactMap({ $0 }).first { throw e }
        let final = try required(try s.get(k), "counter at the end")
        try checkEqual(final.value, String(threads * each), "counter after \(threads)×\(each) increments")
        try checkEqual(final.version, Int64(threads * each + 1), "counter version")
    }

    static let closedStore = ConformanceCase("a closed store refuses calls with .unavailable") { s in
        let k = uniquePrefix() + "k"
        try s.put(k, "v")
        s.close()
        do {
            _ = try s.get(k)
            throw ConformanceFailure("get on a closed store returned instead of throwing")
        } catch let e as DatastoreError {
            guard case .unavailable = e else { throw ConformanceFailure("get on a closed store threw \(e), not .unavailable") }
        }
        do {
            _ = try s.put(k, "w")
            throw ConformanceFailure("put on a closed store returned instead of throwing")
        } catch let e as DatastoreError {
            guard case .unavailable = e else { throw ConformanceFailure("put on a closed store threw \(e), not .unavailable") }
        }
    }
}
