import Datastore
import JSON

/// The JSON shapes of etcd's v3 gateway (the grpc-gateway view of `etcdserverpb`):
/// `bytes` fields are base64, 64-bit integers are strings, and fields at their default
/// value (false, 0, empty) are left out of answers.
enum EtcdWire {
    static func bytes(_ s: String) -> JSON { .string(Base64.encode(s.utf8)) }
    static func bytes(_ b: [UInt8]) -> JSON { .string(Base64.encode(b)) }
    static func int64(_ v: Int64) -> JSON { .string(String(v)) }

    /// The key range `[key, rangeEnd)` holding every key that starts with `prefix`: the
    /// prefix with its last byte incremented (trailing 0xFF bytes dropped first). An
    /// empty prefix, or one of only 0xFF bytes, has no upper bound: etcd writes that as
    /// `range_end = "\0"`, and the empty key as `key = "\0"`.
    static func prefixRange(_ prefix: String) -> (key: [UInt8], end: [UInt8]) {
        let key = Array(prefix.utf8)
        var end = key
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return (key, end)
            }
            end.removeLast()
        }
        return (key.isEmpty ? [0] : key, [0])
    }

    /// A `RangeRequest` for one key.
    static func range(key: String) -> JSON { ["key": bytes(key)] }

    /// A `RangeRequest` for every key under `prefix`.
    static func range(prefix: String) -> JSON {
        let r = prefixRange(prefix)
        return ["key": bytes(r.key), "range_end": bytes(r.end)]
    }

    static func compare(_ c: Comparison) -> JSON {
        switch c {
        case .createRevision(let key, let rev):
            return ["target": "CREATE", "result": "EQUAL", "key": bytes(key), "create_revision": int64(rev)]
        case .modRevision(let key, let rev):
            return ["target": "MOD", "result": "EQUAL", "key": bytes(key), "mod_revision": int64(rev)]
        case .value(let key, let value):
            return ["target": "VALUE", "result": "EQUAL", "key": bytes(key), "value": bytes(value)]
        }
    }

    static func requestOp(_ op: Operation) -> JSON {
        switch op {
        case .put(let key, let value):
            return ["request_put": ["key": bytes(key), "value": bytes(value)]]
        case .delete(let key):
            return ["request_delete_range": ["key": bytes(key)]]
        case .deletePrefix(let prefix):
            let r = prefixRange(prefix)
            return ["request_delete_range": ["key": bytes(r.key), "range_end": bytes(r.end)]]
        }
    }

    static func txn(_ t: Transaction) -> JSON {
        [
            "compare": .array(t.comparisons.map(compare)),
            "success": .array(t.success.map(requestOp)),
            "failure": .array(t.failure.map(requestOp)),
        ]
    }

    // MARK: - Answers

    /// A 64-bit field: a decimal string (or, leniently, a number); absent means 0.
    static func int64(_ j: JSON?, _ what: String) throws(DatastoreError) -> Int64 {
        switch j {
        case nil, .null?: return 0
        case .string(let s)?:
            guard let v = Int64(s) else { throw .failed("etcd: \(what) is not a number: \(s)") }
            return v
        case .int(let i)?: return Int64(i)
        default: throw .failed("etcd: \(what) is not a number")
        }
    }

    /// A `bytes` field as text; absent means empty.
    static func text(_ j: JSON?, _ what: String) throws(DatastoreError) -> String {
        guard let j, !j.isNull else { return "" }
        guard let s = j.stringValue, let b = Base64.decode(s) else { throw .failed("etcd: \(what) is not base64") }
        return String(decoding: b, as: UTF8.self)
    }

    /// `mvccpb.KeyValue`.
    static func keyValue(_ j: JSON) throws(DatastoreError) -> KeyValue {
        guard j.objectValue != nil else { throw .failed("etcd: a key-value is not an object") }
        return KeyValue(
            key: try text(j["key"], "key"),
            value: try text(j["value"], "value"),
            createRevision: try int64(j["create_revision"], "create_revision"),
            modRevision: try int64(j["mod_revision"], "mod_revision"),
            version: try int64(j["version"], "version"))
    }

    /// `kvs` of a range answer.
    static func keyValues(_ answer: JSON) throws(DatastoreError) -> [KeyValue] {
        guard let kvs = answer["kvs"] else { return [] }
        guard let array = kvs.arrayValue else { throw .failed("etcd: kvs is not an array") }
        var out: [KeyValue] = []
        out.reserveCapacity(array.count)
        for kv in array { out.append(try keyValue(kv)) }
        return out
    }

    /// `header.revision` of an answer.
    static func revision(_ answer: JSON) throws(DatastoreError) -> Int64 {
        try int64(answer["header"]?["revision"], "header.revision")
    }

    /// The text of a gateway error body: `{"error": ..., "message": ..., "code": <gRPC code>}`.
    static func errorText(_ body: [UInt8]) -> (message: String, grpcCode: Int?) {
        if let j = try? JSON(parsing: body) {
            let m = j["message"]?.stringValue ?? j["error"]?.stringValue ?? j.compactText
            return (m, j["code"]?.intValue)
        }
        return (String(decoding: body.prefix(200), as: UTF8.self), nil)
    }
}
