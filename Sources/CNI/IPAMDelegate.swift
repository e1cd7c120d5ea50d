import JSON
import POSIX

/// Runs the IPAM plugin a config names (`ipam.type`), the way libcni's delegation does:
/// found on `CNI_PATH`, given the identical stdin bytes and the same environment (only
/// `CNI_COMMAND` may differ), bounded by a deadline.
///
/// An error object the IPAM plugin prints is rethrown unchanged (same code, msg, details),
/// never wrapped. The IPAM plugin's stderr is passed on to the caller's log.
public struct IPAMDelegate {
    /// `ipam.type`: a plain executable name.
    public var type: String
    /// Directories searched for `type` (`CNI_PATH`).
    public var searchPath: [String]
    /// The environment given to the IPAM plugin (`CNI_COMMAND` is set per call).
    public var environment: [String: String]
    /// stdin for the IPAM plugin: the caller's stdin, byte for byte.
    public var stdin: [UInt8]
    /// Seconds an IPAM call may take before its process group is killed (code 11).
    public var timeout: Double
    /// Where the IPAM plugin's stderr goes.
    public var log: CNILogger?

    public init(type: String, searchPath: [String], environment: [String: String], stdin: [UInt8],
                timeout: Double = IPAMDelegate.defaultTimeout, log: CNILogger? = nil) {
        self.type = type
        self.searchPath = searchPath
        self.environment = environment
        self.stdin = stdin
        self.timeout = timeout
        self.log = log
    }

    /// The delegate for `request`: its config's `ipam.type`, `CNI_PATH`, environment and
    /// stdin bytes. Throws code 7 when the config has no `ipam.type`.
    public init(request: CNIRequest, timeout: Double = IPAMDelegate.defaultTimeout) throws(CNIError) {
        guard let type = request.conf.ipamType, !type.isEmpty else {
            throw .invalidNetworkConfig("the network configuration has no \"ipam\" with a \"type\"")
        }
        self.init(type: type, searchPath: request.searchPath, environment: request.environment,
                  stdin: request.conf.bytes, timeout: timeout, log: request.log)
    }

    /// Long enough for an IPAM plugin that bounds its own datastore calls; short enough that
    /// a wedged one does not wedge the container launch (Mesos itself never times out).
    public static let defaultTimeout = 30.0

    /// IPAM ADD: the allocation, parsed from whatever version the plugin printed (an IPAM
    /// result has `ips` without `interface`).
    public func add() throws(IPAMAddError) -> CNIResult {
        let out: [UInt8]
        do { out = try exec(.add) } catch { throw IPAMAddError(error: error) }
        do {
            return try CNIResult(parsing: out)
        } catch {
            throw IPAMAddError(error: CNIError(code: error.code, msg: "IPAM plugin \(type) printed an invalid result: \(error.msg)", details: error.details))
        }
    }

    /// IPAM DEL (release by the attachment's handle).
    public func del() throws(CNIError) { _ = try exec(.del) }

    /// IPAM CHECK.
    public func check() throws(CNIError) { _ = try exec(.check) }

    /// IPAM GC (the config's valid-attachments list is in the identical stdin).
    public func gc() throws(CNIError) { _ = try exec(.gc) }

    /// IPAM STATUS.
    public func status() throws(CNIError) { _ = try exec(.status) }

    /// Runs the IPAM plugin with `CNI_COMMAND=command`; its stdout on success.
    ///
    /// Errors: the plugin's own error object, unchanged; code 4 without `CNI_PATH`; code 7
    /// when `type` has a `/` or is not an executable on the path; code 11 when the deadline
    /// killed it; code 5 when it could not be started or failed without an error object.
    public func exec(_ command: CNICommand) throws(CNIError) -> [UInt8] {
        guard !type.contains("/"), !type.isEmpty else {
            throw .invalidNetworkConfig("invalid IPAM type \"\(type)\": a plugin name may not contain \"/\"")
        }
        guard !searchPath.isEmpty else {
            throw .invalidEnvironment("CNI_PATH is required to run the IPAM plugin \(type)")
        }
        guard let path = Subprocess.find(type, in: searchPath) else {
            throw .invalidNetworkConfig("failed to find IPAM plugin \"\(type)\" in path [\(searchPath.joined(separator: " "))]")
        }
        var env = environment
        env["CNI_COMMAND"] = command.rawValue
        let output: Subprocess.Output
        do {
            output = try Subprocess.run(executable: path, environment: env, stdin: stdin, deadline: Deadline(secondsFromNow: timeout))
        } catch {
            throw .ioFailure("cannot run IPAM plugin \(path)", details: error.description)
        }
        if !output.stderr.isEmpty { log?.passThrough(output.stderr) }
        if output.timedOut {
            throw .tryAgainLater("IPAM plugin \(type) \(command.rawValue) did not finish within \(timeout) s and was killed",
                                 details: Self.tail(output.stderr))
        }
        if output.exitStatus == 0 { return output.stdout }
        if let json = try? JSON(parsing: output.stdout), let e = CNIError(parsing: json) { throw e }
        throw .ioFailure("IPAM plugin \(type) \(command.rawValue) failed (\(output.termination)) without an error object",
                         details: Self.tail(output.stdout + output.stderr))
    }

    /// The last few hundred bytes of a plugin's output, for an error's details.
    static func tail(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.suffix(512), as: UTF8.self)
        return text.trimmingTrailingNewlines()
    }
}

/// A failed IPAM ADD.
public struct IPAMAddError: Error, Sendable {
    /// What to report: the IPAM plugin's own error, unchanged.
    public var error: CNIError

    /// True when the IPAM plugin refused the ADD because the attachment's handle already
    /// holds an allocation (`CNIError.Code.alreadyAllocated`, 100, from our calico-ipam).
    /// That address belongs to a live attachment: the caller must NOT undo this ADD with an
    /// IPAM DEL (it releases by handle and would free it). For every other failure,
    /// including a deadline kill (the plugin may have written before it died), a rollback
    /// DEL is the right cleanup.
    public var refusedAsDuplicate: Bool { error.code == CNIError.Code.alreadyAllocated }

    public init(error: CNIError) { self.error = error }
}

extension CNILogger {
    /// Writes another process's log output as it is (to stderr and the log file).
    public func passThrough(_ bytes: [UInt8]) {
        var b = bytes
        if b.last != 0x0A { b.append(0x0A) }
        writeRaw(b)
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
