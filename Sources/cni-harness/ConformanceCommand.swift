import CNIHarness
import Foundation

/// `cni-harness conformance --plugin NAME --config FILE [--plugins DIR] [--versions LIST]
/// [--mesos] [--concurrency N] [--timeout SECONDS]`.
func conformanceCommand(_ arguments: [String]) -> Int32 {
    var args = arguments
    var plugin: String?
    var configPath: String?
    var pluginDir = executableDirectory()
    var versions: [String]?
    var mesos = false
    var concurrency = 8
    var timeout = 60.0
    func value(_ option: String) -> String {
        guard !args.isEmpty else { fail("\(option) needs a value") }
        return args.removeFirst()
    }
    while !args.isEmpty {
        let a = args.removeFirst()
        switch a {
        case "--plugin": plugin = value(a)
        case "--plugins": pluginDir = value(a)
        case "--config": configPath = value(a)
        case "--versions":
            versions = value(a).split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        case "--mesos": mesos = true
        case "--concurrency":
            guard let n = Int(value(a)), n >= 2 else { fail("--concurrency needs a number of at least 2") }
            concurrency = n
        case "--timeout":
            guard let t = Double(value(a)), t > 0 else { fail("--timeout needs seconds") }
            timeout = t
        case "-h", "--help": print(usage); return 0
        default: fail("unknown argument \(a)\n\(usage)")
        }
    }
    guard let plugin, let configPath else { fail("conformance needs --plugin and --config\n\(usage)") }
    let options: ConformanceOptions
    do {
        options = ConformanceOptions(plugin: plugin, pluginDirectory: pluginDir, config: try ConformanceOptions.loadConfig(path: configPath),
                                     versions: versions, mesos: mesos, timeout: timeout, concurrency: concurrency)
    } catch {
        fail("\(error)")
    }
    let report = ConformanceSuite(options: options).run { result in
        for line in result.lines { print(line) }
        fflush(nil)
    }
    print(report.summary)
    return report.failed == 0 ? 0 : 1
}
