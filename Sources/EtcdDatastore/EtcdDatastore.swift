import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Datastore
import HTTPClient
import JSON
import POSIX

/// The etcd v3 backend of `Datastore`, spoken over etcd's JSON gateway (`/v3/kv/range`,
/// `/v3/kv/txn`, `/v3/watch`, ...) with our own HTTP/1.1 client, so a plugin process pays
/// for no gRPC or Foundation start-up.
///
/// Keys and values are stored exactly as given (Calico's layout, read by `etcdctl` and
/// upstream Calico alike). Endpoints fail over in order; every call is bounded by
/// `settings.timeout` in total, failover and retries included. etcd 3.3, which serves the
/// gateway only under `/v3beta/`, is detected by the 404 on `/v3/` and used from then on.
///
/// ## What an error from `transact` says about the write
///
/// - `DatastoreError.unavailable`: **not applied.** No endpoint took the request (refused,
///   unreachable, no connection within the deadline, client closed).
/// - `DatastoreError.failed`: **not applied.** etcd refused the request (invalid, too
///   large, certificate rejected, ...).
/// - `DatastoreError.timeout`: **outcome unknown, it may have been applied.** The request
///   was sent but its answer was lost (deadline passed, connection dropped, etcd said
///   "request timed out" or "leader changed"). Re-read the keys and reconcile before
///   retrying or undoing; IPAM relies on this to avoid leaking or double-assigning.
///
/// Reads (`get`, `list`, `currentRevision`, `watch`) are resent on another connection
/// when an answer is lost, within the same deadline.
public final class EtcdDatastore: Datastore {
    public let settings: EtcdSettings
    let client: HTTPClient
    /// Seconds one call may take.
    let timeout: Double
    /// `/v3/`, or `/v3beta/` once etcd answered 404 on `/v3/`.
    private let apiPrefix = Mutex("/v3/")

    /// Prepares a store for `settings` without contacting etcd (the first call connects).
    /// Throws `.failed` for an unusable configuration: no endpoints, an unparsable one,
    /// or TLS files that cannot be loaded.
    public init(settings: EtcdSettings) throws(DatastoreError) {
        self.settings = settings
        self.timeout = settings.timeout > 0 ? settings.timeout : DatastoreSettings.defaultTimeout
        // Calico writes `etcd_endpoints` as one comma-separated string; accept it either way.
        let endpoints = settings.endpoints.flatMap { $0.split(separator: ",") }
            .map { String($0.filter { $0 != " " && $0 != "\t" && $0 != "\n" }) }
            .filter { !$0.isEmpty }
        do {
            client = try HTTPClient(endpoints: endpoints,
                                    tls: TLSFiles(caCertFile: settings.caCertFile, certFile: settings.certFile, keyFile: settings.keyFile))
        } catch {
            throw .failed("etcd: \(error)")
        }
    }

    deinit { client.close() }

    public func get(_ key: String) throws(DatastoreError) -> KeyValue? {
        let answer = try call("kv/range", EtcdWire.range(key: key), isWrite: false)
        return try EtcdWire.keyValues(answer).first
    }

    public func list(prefix: String) throws(DatastoreError) -> ListResult {
        let answer = try call("kv/range", EtcdWire.range(prefix: prefix), isWrite: false)
        // etcd returns a range in key order (its index is a B-tree over the key bytes).
        return ListResult(kvs: try EtcdWire.keyValues(answer), revision: try EtcdWire.revision(answer))
    }

    /// Every read in one round trip: a `Txn` with no comparison whose operations are all
    /// ranges, which etcd serves at one revision without a write (no raft proposal, no
    /// revision bump), so it is resent like any read when its answer is lost.
    public func read(_ reads: [BatchRead]) throws(DatastoreError) -> [BatchReadResult] {
        if reads.isEmpty { return [] }
        let operations: [JSON] = reads.map { read in
            switch read {
            case .get(let key): return ["request_range": EtcdWire.range(key: key)]
            case .list(let prefix): return ["request_range": EtcdWire.range(prefix: prefix)]
            }
        }
        let answer = try call("kv/txn", ["success": .array(operations)], isWrite: false)
        let revision = try EtcdWire.revision(answer)
        guard let responses = answer["responses"]?.arrayValue, responses.count == reads.count else {
            throw .failed("etcd: a transaction of \(reads.count) reads was answered with \(answer["responses"]?.arrayValue?.count ?? 0)")
        }
        var results: [BatchReadResult] = []
        results.reserveCapacity(reads.count)
        for (read, response) in zip(reads, responses) {
            guard let range = response["response_range"] else { throw .failed("etcd: a read of a transaction has no range answer") }
            let kvs = try EtcdWire.keyValues(range)
            switch read {
            case .get: results.append(.value(kvs.first))
            case .list: results.append(.list(ListResult(kvs: kvs, revision: revision)))
            }
        }
        return results
    }

    /// Applies `txn` as one etcd `Txn`. See the type's documentation for what each error
    /// says about whether the write happened.
    public func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        let answer = try call("kv/txn", EtcdWire.txn(txn), isWrite: true)
        // `succeeded` is omitted when false.
        let succeeded = answer["succeeded"]?.boolValue ?? false
        return TransactionResult(succeeded: succeeded, revision: try EtcdWire.revision(answer))
    }

    public func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch {
        try EtcdWatch(store: self, prefix: prefix, after: revision)
    }

    public func currentRevision() throws(DatastoreError) -> Int64 {
        let answer = try call("kv/range", ["key": EtcdWire.bytes([0]), "count_only": true], isWrite: false)
        return try EtcdWire.revision(answer)
    }

    public func close() {
        client.close()
    }

    // MARK: - Exchanges

    /// POSTs `body` to the gateway's `method` (`kv/range`) and returns the decoded answer.
    func call(_ method: String, _ body: JSON, isWrite: Bool) throws(DatastoreError) -> JSON {
        let deadline = Deadline(secondsFromNow: timeout)
        let bytes = Array(body.compactText.utf8)
        while true {
            let prefix = apiPrefix.withLock { $0 }
            let response: HTTPResponse
            do {
                response = try client.post(prefix + method, body: bytes, deadline: deadline, idempotent: !isWrite)
            } catch {
                throw Self.map(error, isWrite: isWrite)
            }
            // A 404 was not processed: safe to resend under the older prefix.
            if response.status == 404, switchToOlderAPI(from: prefix) { continue }
            guard response.status == 200 else {
                throw Self.map(status: response.status, body: response.body, isWrite: isWrite)
            }
            do {
                return try JSON(parsing: response.body)
            } catch {
                if isWrite { throw .timeout("etcd: unreadable answer to a write (it may have been applied): \(error)") }
                throw .failed("etcd: unreadable answer: \(error)")
            }
        }
    }

    /// Opens a gateway stream (`watch`) from `body`, by `deadline`.
    func openStream(_ method: String, _ body: JSON, deadline: Deadline) throws(DatastoreError) -> HTTPStream {
        let bytes = Array(body.compactText.utf8)
        while true {
            let prefix = apiPrefix.withLock { $0 }
            let stream: HTTPStream
            do {
                stream = try client.openStream(prefix + method, body: bytes, deadline: deadline)
            } catch {
                throw Self.map(error, isWrite: false)
            }
            if stream.status == 200 { return stream }
            let errorBody = (try? stream.readToEnd(until: deadline)) ?? []
            stream.close()
            if stream.status == 404, switchToOlderAPI(from: prefix) { continue }
            throw Self.map(status: stream.status, body: errorBody, isWrite: false)
        }
    }

    /// Moves from `/v3/` to `/v3beta/` (etcd 3.3); false when there is nothing older to try.
    private func switchToOlderAPI(from prefix: String) -> Bool {
        guard prefix == "/v3/" else { return false }
        apiPrefix.withLock { $0 = "/v3beta/" }
        return true
    }

    static func map(_ error: HTTPError, isWrite: Bool) -> DatastoreError {
        switch error {
        case .unreachable, .connectTimeout, .closed:
            return .unavailable("etcd: \(error)")
        case .certificateRejected, .configuration:
            return .failed("etcd: \(error)")
        case .answerLost, .answerTimeout, .malformedResponse:
            if isWrite { return .timeout("etcd: \(error) (the write may have been applied)") }
            if case .answerTimeout = error { return .timeout("etcd: \(error)") }
            return .unavailable("etcd: \(error)")
        }
    }

    /// An error answer of the gateway. gRPC `UNAVAILABLE` (14) and `DEADLINE_EXCEEDED`
    /// (4) cover "request timed out", "leader changed" and "no leader": for a write the
    /// proposal may still commit.
    static func map(status: Int, body: [UInt8], isWrite: Bool) -> DatastoreError {
        let (message, code) = EtcdWire.errorText(body)
        let transient = code == 14 || code == 4 || (code == nil && (status == 503 || status == 504))
        if transient {
            if isWrite { return .timeout("etcd: \(message) (the write may have been applied)") }
            return .unavailable("etcd: \(message)")
        }
        return .failed("etcd: HTTP \(status): \(message)")
    }
}

