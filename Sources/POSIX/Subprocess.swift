#if canImport(Glibc)
import Glibc
#endif

/// Runs a child process to completion: feeds its stdin, collects stdout and stderr, and
/// enforces a deadline.
///
/// Why this shape: a CNI plugin that execs an IPAM plugin must never hang (Mesos waits for
/// the plugin forever) and must never leave a child holding pipes it shares with the
/// runtime. So the child gets fresh pipes on fds 0–2 and nothing else (every other
/// descriptor is closed in the child), runs in its own process group so a deadline kill
/// reaches its helpers too, and the parent reads both output pipes from one `poll` loop
/// (no deadlock when the child fills one pipe while we block on the other).
///
/// The corresponding C function is `posix_spawn`.
public enum Subprocess {
    /// How a child ended.
    public enum Termination: Sendable, Hashable, CustomStringConvertible {
        /// Normal exit with this status (0–255).
        case exited(Int32)
        /// Killed by this signal number.
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let signal): return "killed by signal \(signal)"
            }
        }
    }

    /// What a finished child produced.
    public struct Output: Sendable, Hashable {
        public var termination: Termination
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// True when the deadline passed and the child (and its process group) was killed.
        public var timedOut: Bool

        public init(termination: Termination, stdout: [UInt8], stderr: [UInt8], timedOut: Bool) {
            self.termination = termination
            self.stdout = stdout
            self.stderr = stderr
            self.timedOut = timedOut
        }

        /// The exit status, or nil when the child was killed by a signal.
        public var exitStatus: Int32? {
            if case .exited(let code) = termination { return code }
            return nil
        }
    }

    /// Runs `executable` (an absolute or relative path, not searched on `PATH`) with
    /// `arguments` (argv[1...]; argv[0] is `executable`) and exactly `environment` (the
    /// parent's environment is not inherited).
    ///
    /// `stdin` is written to the child's standard input, which is then closed. When
    /// `deadline` passes before the child exits, the child's process group is sent
    /// `SIGKILL` and `Output.timedOut` is true. Once the child has exited, output still
    /// arriving from helpers that inherited its pipes is read for a short grace period
    /// (bounded by the deadline), then the pipes are closed regardless.
    ///
    /// Throws `Errno` when the child cannot be started (`ENOENT`, `EACCES`, ...).
    public static func run(
        executable: String,
        arguments: [String] = [],
        environment: [String: String],
        stdin: [UInt8] = [],
        deadline: Deadline? = nil
    ) throws(Errno) -> Output {
        let input = try makePipe()
        let output: (read: Int32, write: Int32)
        let errors: (read: Int32, write: Int32)
        do {
            output = try makePipe()
        } catch {
            close(input.read); close(input.write)
            throw error
        }
        do {
            errors = try makePipe()
        } catch {
            close(input.read); close(input.write); close(output.read); close(output.write)
            throw error
        }

        let pid: pid_t
        do {
            pid = try spawn(
                executable: executable, arguments: arguments, environment: environment,
                stdin: input.read, stdout: output.write, stderr: errors.write)
        } catch {
            for fd in [input.read, input.write, output.read, output.write, errors.read, errors.write] { close(fd) }
            throw error
        }
        // The child has its copies; ours would keep the pipes open past the child's exit.
        close(input.read)
        close(output.write)
        close(errors.write)

        var io = ChildIO(pid: pid, stdinFD: input.write, stdoutFD: output.read, stderrFD: errors.read, pending: stdin)
        io.pump(deadline: deadline)
        return io.finish(deadline: deadline)
    }

    /// The first executable file named `name` in `directories`, or nil.
    /// A `name` containing `/` is never searched (nil), so a config cannot point outside
    /// the plugin directories.
    public static func find(_ name: String, in directories: [String]) -> String? {
        guard !name.isEmpty, !name.contains("/") else { return nil }
        for dir in directories where !dir.isEmpty {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    // MARK: - Spawning

    private typealias Pipe2Function = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    private typealias CloseFromFunction = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// glibc functions the Swift Glibc module hides (they need `_GNU_SOURCE`), looked up
    /// once. `pipe2(O_CLOEXEC)` avoids the window in which another thread's spawn could
    /// inherit a fresh pipe; `posix_spawn_file_actions_addclosefrom_np` (glibc ≥ 2.34)
    /// closes every descriptor above 2 in the child.
    private struct GNUExtensions: @unchecked Sendable {
        let pipe2: Pipe2Function?
        let closeFrom: CloseFromFunction?

        static let shared: GNUExtensions = {
            let handle = dlopen(nil, RTLD_NOW)
            func symbol<T>(_ name: String, as type: T.Type) -> T? {
                guard let handle, let p = dlsym(handle, name) else { return nil }
                return unsafeBitCast(p, to: type)
            }
            return GNUExtensions(
                pipe2: symbol("pipe2", as: Pipe2Function.self),
                closeFrom: symbol("posix_spawn_file_actions_addclosefrom_np", as: CloseFromFunction.self))
        }()
    }

    /// A close-on-exec pipe whose ends are both above fd 2 (so `dup2` onto 0–2 in the
    /// child always clears close-on-exec, even if the parent runs with fd 0–2 closed).
    private static func makePipe() throws(Errno) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        if let pipe2 = GNUExtensions.shared.pipe2 {
            _ = try syscallRetrying("pipe2") { fds.withUnsafeMutableBufferPointer { pipe2($0.baseAddress, O_CLOEXEC) } }
        } else {
            _ = try syscallRetrying("pipe") { fds.withUnsafeMutableBufferPointer { pipe($0.baseAddress) } }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        for i in 0..<2 where fds[i] <= 2 {
            let moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)
            if moved < 0 {
                let e = Errno.current("fcntl F_DUPFD_CLOEXEC")
                close(fds[0]); close(fds[1])
                throw e
            }
            close(fds[i])
            fds[i] = moved
        }
        return (fds[0], fds[1])
    }

    /// Starts `executable` with `stdin`, `stdout` and `stderr` as its fds 0–2 and no other
    /// descriptor, in its own process group, with default signal handling; returns its pid.
    /// The caller reaps it (`waitpid`). `run` is this plus the pipes and the waiting.
    public static func spawn(
        executable: String, arguments: [String], environment: [String: String],
        stdin: Int32, stdout: Int32, stderr: Int32
    ) throws(Errno) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        if let closeFrom = GNUExtensions.shared.closeFrom {
            _ = closeFrom(&actions, 3)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group (pgid = child pid) so a deadline kill reaches grandchildren;
        // empty signal mask and default SIGPIPE so the child behaves as if started fresh
        // (ignored signals survive exec).
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv + [nil]
        var cEnvp: [UnsafeMutablePointer<CChar>?] = envp + [nil]
        var pid: pid_t = 0
        // ETXTBSY: the executable is open for writing somewhere, typically because another
        // thread's freshly forked child still holds the descriptor of a file just written
        // (or the binary is being replaced). It clears within milliseconds: retry briefly.
        var pause: useconds_t = 2000
        while true {
            let rc = cArgv.withUnsafeMutableBufferPointer { a in
                cEnvp.withUnsafeMutableBufferPointer { e in
                    posix_spawn(&pid, executable, &actions, &attributes, a.baseAddress!, e.baseAddress!)
                }
            }
            if rc == 0 { return pid }
            if rc == ETXTBSY && pause <= 64_000 {
                usleep(pause)
                pause *= 2
                continue
            }
            throw Errno(rc, call: "posix_spawn \(executable)")
        }
    }
}

/// The parent's side of one running child: its pipes, what is left to write, what was read.
private struct ChildIO {
    let pid: pid_t
    var stdinFD: Int32
    var stdoutFD: Int32
    var stderrFD: Int32
    var pending: [UInt8]
    var written = 0
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var termination: Subprocess.Termination?
    var timedOut = false

    /// How long output from leftover helpers is awaited after the child itself exited.
    static let graceAfterExit = 0.2

    init(pid: pid_t, stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32, pending: [UInt8]) {
        self.pid = pid
        self.stdinFD = stdinFD
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
        self.pending = pending
        for fd in [stdinFD, stdoutFD, stderrFD] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        if pending.isEmpty { closeStdin() }
    }

    mutating func closeStdin() {
        if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
    }

    /// Moves data until both output pipes reach EOF, the deadline passes, or the child has
    /// exited and the grace period after it is over.
    mutating func pump(deadline: Deadline?) {
        // A write to a pipe whose reader has gone raises SIGPIPE on this thread: block it
        // while writing and swallow the pending one afterwards, instead of changing the
        // process-wide disposition.
        var blockPipe = sigset_t()
        sigemptyset(&blockPipe)
        sigaddset(&blockPipe, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blockPipe, &previousMask)
        var pendingBefore = sigset_t()
        sigpending(&pendingBefore)
        let pipeWasPending = sigismember(&pendingBefore, SIGPIPE) == 1
        defer {
            if !pipeWasPending {
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                while sigtimedwait(&blockPipe, nil, &zero) == SIGPIPE {}
            }
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }

        var graceEnds: Double?
        while stdoutFD >= 0 || stderrFD >= 0 {
            let now = MonotonicClock.now()
            if let deadline, now >= deadline.at {
                killGroup()
                return
            }
            if let graceEnds, now >= graceEnds { return }

            var fds: [pollfd] = []
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            if stdoutFD >= 0 { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
            if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
            // Wake up now and then to notice a child that exited while a helper it left
            // behind still holds the pipes open.
            var limit = termination == nil ? 0.05 : (graceEnds ?? now) - now
            if let deadline { limit = min(limit, deadline.at - now) }
            let timeoutMS = Int32(max(0, (limit * 1000).rounded(.up)))
            let n = poll(&fds, nfds_t(fds.count), timeoutMS)
            if n < 0 && errno != EINTR { return }

            for p in fds where p.revents != 0 {
                if p.fd == stdinFD {
                    writeStdin()
                } else if p.fd == stdoutFD {
                    if drain(stdoutFD, into: &stdout) { close(stdoutFD); stdoutFD = -1 }
                } else if p.fd == stderrFD {
                    if drain(stderrFD, into: &stderr) { close(stderrFD); stderrFD = -1 }
                }
            }
            if termination == nil, let t = reap(blocking: false) {
                termination = t
                var end = MonotonicClock.now() + ChildIO.graceAfterExit
                if let deadline { end = min(end, deadline.at) }
                graceEnds = end
            }
        }
    }

    mutating func writeStdin() {
        while written < pending.count {
            let n = pending.withUnsafeBytes { buf in
                write(stdinFD, buf.baseAddress! + written, buf.count - written)
            }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            break  // EPIPE or another error: the child does not want the rest.
        }
        closeStdin()
    }

    /// Reads what is available; true at EOF (or on an error, which ends the stream too).
    func drain(_ fd: Int32, into out: inout [UInt8]) -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
            if n == 0 { return true }
            if errno == EINTR { continue }
            return !(errno == EAGAIN || errno == EWOULDBLOCK)
        }
    }

    mutating func killGroup() {
        timedOut = true
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
    }

    func reap(blocking: Bool) -> Subprocess.Termination? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if r == pid { break }
            if r == 0 { return nil }
            if errno == EINTR { continue }
            return .exited(255)  // ECHILD: someone else reaped it; nothing more to learn.
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// Closes every pipe and reaps the child, waiting for it up to the deadline (a child
    /// may close its stdout and keep running) and killing its group after that.
    mutating func finish(deadline: Deadline?) -> Subprocess.Output {
        closeStdin()
        if stdoutFD >= 0 { close(stdoutFD); stdoutFD = -1 }
        if stderrFD >= 0 { close(stderrFD); stderrFD = -1 }
        var pause: UInt32 = 1000
        while termination == nil {
            if let t = reap(blocking: timedOut) {
                termination = t
                break
            }
            if let deadline, deadline.hasPassed {
                killGroup()
                continue
            }
            var sleepFor = pause
            if let deadline { sleepFor = min(pause, UInt32(max(1, deadline.remaining * 1_000_000))) }
            usleep(sleepFor)
            pause = min(pause * 2, 20_000)
        }
        return Subprocess.Output(termination: termination!, stdout: stdout, stderr: stderr, timedOut: timedOut)
    }
}
