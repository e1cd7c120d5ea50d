#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT as polled events rather than handlers.
///
/// Blocking them (before any thread starts) leaves them pending for the process; felix's
/// loop picks them up with `sigtimedwait` between steps, so shutdown never interrupts a
/// half-sent `nft` transaction and needs no global state touched from a handler.
/// The corresponding C functions are `pthread_sigmask` and `sigtimedwait`.
public enum TerminationSignals {
    /// Blocks SIGTERM, SIGINT and SIGHUP for the calling thread and threads it starts.
    public static func block() {
        var set = signals()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The pending termination signal, consumed, or nil.
    public static func take() -> Int32? {
        var set = signals()
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        let s = sigtimedwait(&set, nil, &zero)
        return s > 0 ? s : nil
    }

    private static func signals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        return set
    }
}
