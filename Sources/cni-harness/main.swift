import CNIHarness
import Foundation

// cni-harness: replays recorded CNI invocations against plugin binaries, and runs a plugin
// through the CNI conformance cases. The logic lives in CNIHarness; this is the
// command-line frontend, one subcommand per file.

let usage = """
    usage: cni-harness replay <fixture-or-dir>... [--plugins DIR] [--timeout SECONDS]
           cni-harness conformance --plugin NAME --config FILE [--plugins DIR] [--versions V,V...]
                                   [--mesos] [--concurrency N] [--timeout SECONDS]

      replay        run each fixture's plugin with exactly its env and stdin, in fresh network
                    namespaces, and compare the outcome; prints one line per fixture and
                    "N passed, N failed"; exits 1 when any fixture failed. Needs root.
      conformance   run a main plugin and its IPAM through the CNI spec (or, with --mesos,
                    through the Mesos isolator's invocations) for every version the plugin
                    claims; prints one line per case (ok / FAIL / skip) and
                    "N passed, N failed, N skipped"; exits 1 when any case failed. Needs root.

      --plugins DIR      where plugin binaries are (default: this executable's directory);
                         replay fixtures with their own "pluginDir" use that instead
      --plugin NAME      the main plugin (its IPAM is the config's ipam.type)
      --config FILE      the network config, without cniVersion; ${DATADIR} in a string is a
                         fresh temp dir per case (datastore files, IPAM state)
      --versions LIST    comma-separated versions to run (default: what VERSION claims; with
                         --mesos: unset, 0.1.0, 0.2.0)
      --mesos            invoke exactly as the Mesos CNI isolator does and judge as it would
      --concurrency N    ADDs started at once by the concurrency case (default 8)
    """

/// Prints `message` on stderr and exits 2 (a usage error).
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

/// The directory of this executable: where `swift build` put the plugins too.
func executableDirectory() -> String {
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }
    return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
}

var arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "replay":
    exit(replayCommand(Array(arguments.dropFirst())))
case "conformance":
    exit(conformanceCommand(Array(arguments.dropFirst())))
case "-h", "--help":
    print(usage)
default:
    fail(usage)
}
