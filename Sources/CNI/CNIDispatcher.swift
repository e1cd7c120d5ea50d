#if canImport(Glibc)
import Glibc
#endif
import JSON
import POSIX

/// What one dispatched invocation produced.
public struct CNIOutput: Sendable, Hashable {
    /// 0 on success, 1 after printing an error object.
    public var exitCode: Int32
    /// Exactly one JSON object and a newline, or nothing (successful DEL/CHECK/GC/STATUS).
    public var stdout: [UInt8]
    /// Log lines.
    public var stderr: [UInt8]

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Validates an invocation and calls the plugin. Environment, stdin, stdout and stderr are
/// parameters, so tests run many invocations in parallel in one process.
public enum CNIDispatcher {
    /// Runs `plugin` with `environment` and `stdin`, collecting what it prints.
    public static func run(_ plugin: some CNIPlugin, environment: [String: String], stdin: [UInt8]) -> CNIOutput {
        var out: [UInt8] = []
        let errors = ByteBuffer()
        let code = run(plugin, environment: environment, readStdin: { () throws(Errno) in stdin },
                       stdout: { out.append(contentsOf: $0) }, stderr: { errors.bytes.append(contentsOf: $0) })
        return CNIOutput(exitCode: code, stdout: out, stderr: errors.bytes)
    }

    /// Runs `plugin`, reading stdin through `readStdin` (called at most once) and writing
    /// through the sinks; returns the exit status. `endsProcess`: the process exits right
    /// after (`CNIRequest.endsProcess`).
    public static func run(
        _ plugin: some CNIPlugin,
        environment: [String: String],
        readStdin: () throws(Errno) -> [UInt8],
        stdout: ([UInt8]) -> Void,
        stderr: @escaping ([UInt8]) -> Void,
        endsProcess: Bool = false
    ) -> Int32 {
        let log = CNILogger(stderr: stderr)
        var errorVersion = CNIVersion.latest.description
        func fail(_ e: CNIError) -> Int32 {
            log.error("\(e)")
            stdout(Array(e.json(cniVersion: errorVersion).compactText.utf8) + [0x0A])
            return 1
        }
        func env(_ name: String) -> String? { CNIEnvironment.value(name, in: environment) }

        // 1. Missing environment (4), all named at once.
        let commandText = env("CNI_COMMAND")
        let command = commandText.flatMap(CNICommand.init(rawValue:))
        let missing = CNIEnvironment.missing(for: command, in: environment)
        if !missing.isEmpty {
            return fail(.invalidEnvironment("required env variables [\(missing.joined(separator: ","))] missing"))
        }
        let containerID = env("CNI_CONTAINERID") ?? ""
        let ifName = env("CNI_IFNAME") ?? ""
        log.context = [containerID, ifName, commandText ?? ""].filter { !$0.isEmpty }.joined(separator: " ")

        // 2. stdin (5).
        let bytes: [UInt8]
        do { bytes = try readStdin() } catch { return fail(.ioFailure("error reading from stdin", details: error.description)) }

        if command == .version { return version(plugin, stdin: bytes, stdout: stdout) }

        // 3. Decode (6).
        let conf: NetConf
        do { conf = try NetConf(bytes: bytes) } catch { return fail(error) }
        if conf.cniVersion != nil { errorVersion = conf.resultVersion }
        if let level = conf.logLevel { log.level = level }
        if let path = conf.logFilePath { log.addFile(path) }

        // 4. Network name (7).
        if conf.name.isEmpty { return fail(.invalidNetworkConfig("missing network name")) }
        if !CNIEnvironment.isValidIdentifier(conf.name) {
            return fail(.invalidNetworkConfig("invalid characters found in network name", details: conf.name))
        }
        // 5–6. Container id, interface name (4).
        if let e = CNIEnvironment.validate(environment) { return fail(e) }

        // 7. cniVersion (1).
        guard let version = conf.cniVersion, plugin.supportedVersions.contains(version) else {
            return fail(.incompatibleVersion(
                "incompatible CNI versions",
                details: "config is \"\(conf.cniVersionString)\", plugin supports [\(plugin.supportedVersions.map { "\"\($0)\"" }.joined(separator: " "))]"))
        }
        // 8. Version gates (1).
        if let command, version < command.minimumVersion {
            return fail(.incompatibleVersion("config version does not allow \(command.rawValue)",
                                             details: "\(command.rawValue) needs cniVersion \(command.minimumVersion) or later, config is \(version)"))
        }
        // 9. Unknown command (4).
        guard let command else { return fail(.invalidEnvironment("unknown CNI_COMMAND: \(commandText ?? "")")) }

        // 10. CNI_ARGS (4).
        let args: CNIArgs
        do { args = try CNIArgs(parsing: env("CNI_ARGS") ?? "", knownKeys: plugin.knownArgs) } catch { return fail(error) }

        let request = CNIRequest(
            command: command, containerID: containerID, netns: env("CNI_NETNS"), ifName: ifName, args: args,
            searchPath: (env("CNI_PATH") ?? "").split(separator: ":").map(String.init),
            environment: environment, conf: conf, log: log, endsProcess: endsProcess)
        log.debug("network \(conf.name), cniVersion \(conf.resultVersion)")
        do {
            switch command {
            case .add:
                let result = try plugin.add(request)
                stdout(try result.encoded(cniVersion: conf.cniVersionString))
            case .del: try plugin.del(request)
            case .check: try plugin.check(request)
            case .gc: try plugin.gc(request, validAttachments: try conf.validAttachments())
            case .status: try plugin.status(request)
            case .version: break  // answered above
            }
        } catch {
            return fail(error)
        }
        return 0
    }

    /// VERSION: `{"cniVersion":<config's or latest>,"supportedVersions":[...]}`. stdin may be
    /// empty or anything: a runtime probing versions is never refused; the config's version
    /// is echoed only when the plugin supports it.
    static func version(_ plugin: some CNIPlugin, stdin: [UInt8], stdout: ([UInt8]) -> Void) -> Int32 {
        var answer = CNIVersion.latest.description
        if !stdin.isEmpty, let json = try? JSON(parsing: stdin), let s = json["cniVersion"]?.stringValue,
           let v = CNIVersion(s), plugin.supportedVersions.contains(v) {
            answer = s
        }
        let reply: JSON = ["cniVersion": .string(answer), "supportedVersions": .array(plugin.supportedVersions.map { .string($0.description) })]
        stdout(Array(reply.compactText.utf8) + [0x0A])
        return 0
    }
}

/// A growable byte buffer a logger's escaping sink can append to.
final class ByteBuffer {
    var bytes: [UInt8] = []
}

/// The executable's entry point: runs `plugin` on the process's real environment, stdin,
/// stdout and stderr, and exits with its status.
public func cniMain(_ plugin: some CNIPlugin) -> Never {
    let code = CNIDispatcher.run(
        plugin, environment: processEnvironment(),
        readStdin: { () throws(Errno) in try readAll(0) },
        stdout: { FileDescriptorSink.writeAll(1, $0) },
        stderr: { FileDescriptorSink.writeAll(2, $0) },
        endsProcess: true)
    exit(code)
}

/// The process's environment (`environ`) as a dictionary.
func processEnvironment() -> [String: String] {
    var environment: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") {
            environment[String(s[..<eq])] = String(s[s.index(after: eq)...])
        }
        p += 1
    }
    return environment
}

/// Reads `fd` to EOF.
func readAll(_ fd: Int32) throws(Errno) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = try syscallRetrying("read stdin") { buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
        if n == 0 { return out }
        out.append(contentsOf: buf[0..<n])
    }
}
