import Datastore
import HTTPClient
import JSON
import POSIX

/// A watch over etcd's `/v3/watch` gateway stream: one POST whose chunked answer carries
/// one JSON `WatchResponse` per line (`{"result":{"header":..,"events":[..]}}`).
///
/// When the stream breaks (an etcd member restarted, a proxy dropped it) the watch
/// reconnects once per `next` call from the revision after the last event delivered, so
/// no change is lost or repeated; if that fails the call throws `.unavailable` and the
/// next call tries again.
final class EtcdWatch: Watch {
    private let store: EtcdDatastore
    private let range: (key: [UInt8], end: [UInt8])
    /// The first revision not yet delivered: where a reconnect starts.
    private var nextRevision: Int64
    private var stream: HTTPStream?
    /// Received bytes not yet split into lines.
    private var pending: [UInt8] = []
    /// Set once the watch can deliver nothing more (compacted, canceled by etcd).
    private var terminal: DatastoreError?
    private var cancelled = false

    init(store: EtcdDatastore, prefix: String, after revision: Int64) throws(DatastoreError) {
        self.store = store
        self.range = EtcdWire.prefixRange(prefix)
        self.nextRevision = max(revision, 0) + 1
        try connect()
    }

    deinit { stream?.close() }

    func next(timeout: Double) throws(DatastoreError) -> [WatchEvent] {
        if cancelled { return [] }
        if let terminal { throw terminal }
        let deadline = Deadline(secondsFromNow: max(0, timeout))
        var reconnected = false
        while true {
            var events: [WatchEvent] = []
            while let line = takeLine() {
                switch try decode(line) {
                case .events(let e):
                    events += e
                case .terminal(let error):
                    terminal = error
                    close()
                    // Hand over what came before the end; the error follows next time.
                    if events.isEmpty { throw error }
                    return deliver(events)
                case .broken:
                    close()
                }
            }
            if !events.isEmpty { return deliver(events) }
            if stream == nil {
                // A reconnect that breaks again at once means etcd is not serving watches.
                if reconnected { throw .unavailable("etcd: the watch stream keeps breaking") }
                reconnected = true
                try connect()
                continue
            }
            do {
                guard let bytes = try stream?.read(until: deadline) else {
                    close()
                    continue
                }
                if bytes.isEmpty { return [] }
                pending += bytes
            } catch {
                close()
            }
        }
    }

    func cancel() {
        cancelled = true
        close()
    }

    // MARK: -

    private func connect() throws(DatastoreError) {
        pending = []
        let request: JSON = [
            "create_request": [
                "key": EtcdWire.bytes(range.key),
                "range_end": EtcdWire.bytes(range.end),
                "start_revision": EtcdWire.int64(nextRevision),
                "prev_kv": true,
                // Periodic empty answers whose header revision says "everything up to here
                // was sent", so a reconnect after a quiet spell starts late enough not to
                // hit a compaction for nothing.
                "progress_notify": true,
            ],
        ]
        stream = try store.openStream("watch", request, deadline: Deadline(secondsFromNow: store.timeout))
    }

    private func close() {
        stream?.close()
        stream = nil
        pending = []
    }

    private func deliver(_ events: [WatchEvent]) -> [WatchEvent] {
        if let last = events.last { nextRevision = max(nextRevision, last.kv.modRevision + 1) }
        return events
    }

    private func takeLine() -> [UInt8]? {
        while let nl = pending.firstIndex(of: 10) {
            let line = Array(pending[..<nl])
            pending.removeFirst(nl + 1)
            if line.contains(where: { $0 != 32 && $0 != 13 && $0 != 9 }) { return line }
        }
        return nil
    }

    private enum Message {
        case events([WatchEvent])
        /// The watch ended for good.
        case terminal(DatastoreError)
        /// The gateway reported a stream error: reconnect.
        case broken
    }

    /// One line of the stream: a `WatchResponse` under `result`, or a gateway `error`.
    private func decode(_ line: [UInt8]) throws(DatastoreError) -> Message {
        let message: JSON
        do { message = try JSON(parsing: line) } catch { throw .failed("etcd: unreadable watch message: \(error)") }
        if message["error"] != nil { return .broken }
        guard let result = message["result"] else { throw .failed("etcd: watch message without result") }
        let compacted = try EtcdWire.int64(result["compact_revision"], "compact_revision")
        if compacted > 0 { return .terminal(.compacted(compacted)) }
        if result["canceled"]?.boolValue == true {
            let reason = result["cancel_reason"]?.stringValue ?? "no reason given"
            return .terminal(.failed("etcd canceled the watch: \(reason)"))
        }
        guard let list = result["events"]?.arrayValue else {
            if result["created"] == nil, !result["header"].isNilOrNull {
                let revision = try EtcdWire.revision(result)
                if revision > 0 { nextRevision = max(nextRevision, revision + 1) }
            }
            return .events([])
        }
        var events: [WatchEvent] = []
        events.reserveCapacity(list.count)
        for e in list {
            // `type` is omitted for PUT, the default.
            let kind: WatchEvent.Kind = e["type"]?.stringValue == "DELETE" ? .delete : .put
            guard let kv = e["kv"] else { throw .failed("etcd: watch event without kv") }
            let previous = try e["prev_kv"].map { (p: JSON) throws(DatastoreError) in try EtcdWire.keyValue(p) }
            events.append(WatchEvent(kind: kind, kv: try EtcdWire.keyValue(kv), previous: previous))
        }
        return .events(events)
    }
}

extension Optional where Wrapped == JSON {
    fileprivate var isNilOrNull: Bool { self?.isNull ?? true }
}
