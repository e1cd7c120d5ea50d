@testable import CNI
import Foundation
import JSON
import POSIX
import Testing

@Suite struct LoggingTests {
    @Test func logFileGetsTheLinesAtTheConfiguredLevel() throws {
        let dir = try PluginDirectory()
        let path = dir.path + "/nested/dir/cni.log"
        var plugin = RecordingPlugin()
        plugin.failure = .tryAgainLater("datastore timeout")
        let conf = #"{"cniVersion":"0.2.0","name":"calico","type":"calico","log_level":"warning","log_file_path":"\#(path)"}"#
        let out = CNIDispatcher.run(plugin, environment: addEnvironment(), stdin: bytes(conf))
        #expect(out.exitCode == 1)
        let file = try String(contentsOfFile: path, encoding: .utf8)
        #expect(file.contains("[ERROR]"))
        #expect(file.contains("datastore timeout"))
        #expect(!file.contains("[DEBUG]"))
        // The same lines went to stderr; stdout holds only the error object.
        #expect(out.stderrText == file)
        #expect(out.stdoutText.split(separator: "\n").count == 1)
    }

    @Test func levelsFilter() {
        let sink = ByteSink()
        let log = CNILogger(level: .warning, stderr: { sink.bytes += $0 })
        log.context = "c1 eth0 ADD"
        log.debug("d"); log.info("i"); log.warning("w"); log.error("e")
        let lines = sink.text.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasSuffix("[WARNING][\(getpid())] c1 eth0 ADD w"))
        #expect(lines[1].contains("[ERROR]"))
        #expect(CNILogLevel(name: "WARN") == .warning)
        #expect(CNILogLevel(name: "verbose") == nil)
    }

    @Test func unwritableLogFileDoesNotFailTheCall() {
        let conf = #"{"cniVersion":"0.4.0","name":"n","type":"t","log_file_path":"/proc/no/such/file.log"}"#
        let out = CNIDispatcher.run(RecordingPlugin(), environment: addEnvironment(), stdin: bytes(conf))
        #expect(out.exitCode == 0)
        #expect(out.stderrText.contains("cannot open log file"))
    }

    @Test func processEnvironmentIsRead() {
        let env = processEnvironment()
        #expect(env == ProcessInfo.processInfo.environment)
    }
}

@Suite struct SubprocessHygieneTests {
    /// A child sees fds 0–2 and nothing else of ours, even descriptors opened without
    /// close-on-exec: a plugin's own stdout must never leak into an IPAM child.
    @Test func childInheritsOnlyStandardDescriptors() throws {
        let leaky = open("/dev/null", O_RDONLY)  // deliberately without O_CLOEXEC
        defer { close(leaky) }
        #expect(leaky > 2)
        let out = try Subprocess.run(executable: "/bin/sh", arguments: ["-c", "ls /proc/$$/fd"], environment: ["PATH": "/usr/bin:/bin"])
        let fds = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n").compactMap { Int($0) }.sorted()
        #expect(!fds.contains(Int(leaky)), "child fds: \(fds)")
        #expect(fds.filter { $0 > 2 }.count <= 1, "child fds: \(fds)")  // at most the shell's own
    }
}
