import CNIHarness
import Foundation

// cni-harness: replays recorded CNI invocations against plugin binaries.
// The logic lives in CNIHarness; this is the command-line frontend.

let usage = """
    usage: cni-harness replay <fixture-or-dir>... [--plugins DIR] [--timeout SECONDS]

      replay   run each fixture's plugin with exactly its env and stdin, in fresh network
               namespaces, and compare the outcome; prints one line per fixture and
               "N passed, N failed"; exits 1 when any fixture failed. Needs root.
      --plugins DIR   where plugin binaries are (default: this executable's directory);
                      fixtures with their own "pluginDir" use that instead
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard args.first == "replay" else { fail(usage) }
args.removeFirst()
var paths: [String] = []
var pluginDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    pluginDir = URL(fileURLWithPath: exe).deletingLastPathComponent().path
}
var timeout = 60.0
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--plugins":
        guard !args.isEmpty else { fail("--plugins needs a directory") }
        pluginDir = args.removeFirst()
    case "--timeout":
        guard let t = args.first.flatMap(Double.init) else { fail("--timeout needs seconds") }
        args.removeFirst()
        timeout = t
    case "-h", "--help": print(usage); exit(0)
    default:
        if a.hasPrefix("-") { fail("unknown option \(a)\n\(usage)") }
        paths.append(a)
    }
}
if paths.isEmpty { fail(usage) }

let replayer = Replayer(options: ReplayOptions(pluginDirectory: pluginDir, timeout: timeout))
var passed = 0, failed = 0
for root in paths {
    let fixtures: [Fixture]
    do { fixtures = try Fixture.load(root) } catch {
        print("FAIL \(root) — \(error)")
        failed += 1
        continue
    }
    for fixture in fixtures {
        let report = replayer.replay(fixture)
        for line in report.lines(relativeTo: root) { print(line) }
        if report.passed { passed += 1 } else { failed += 1 }
    }
}
print("\(passed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
