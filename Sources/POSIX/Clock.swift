#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time, for deadlines.
public enum MonotonicClock {
    /// Seconds since an arbitrary fixed point (CLOCK_MONOTONIC).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A point in monotonic time by which an operation must finish.
public struct Deadline: Sendable, Hashable {
    public var at: Double

    public init(secondsFromNow: Double) { at = MonotonicClock.now() + secondsFromNow }

    /// Seconds left; never negative.
    public var remaining: Double { max(0, at - MonotonicClock.now()) }
    public var hasPassed: Bool { MonotonicClock.now() >= at }
}

/// Wall-clock time as RFC 3339 in UTC ("2026-11-26T15:21:32Z"), as Calico writes
/// `creationTimestamp`.
public func rfc3339Now() -> String {
    var t = time(nil)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(tmv.tm_year + 1900)-\(two(tmv.tm_mon + 1))-\(two(tmv.tm_mday))T\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec))Z"
}
