import CNIHarness
import Foundation

/// `cni-harness replay <fixture-or-dir>... [--plugins DIR] [--timeout SECONDS]`.
func replayCommand(_ arguments: [String]) -> Int32 {
    var args = arguments
    var paths: [String] = []
    var pluginDir = executableDirectory()
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
        case "-h", "--help": print(usage); return 0
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
    return failed == 0 ? 0 : 1
}
