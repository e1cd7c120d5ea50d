#if canImport(Glibc)
import Glibc
#endif
import Datastore
import Datastores
import POSIX
import Policy

/// The `calico-felix` command line: `calico-felix [--once] [--config FILE]`,
/// `calico-felix --bench [--endpoints N] [--policies N] [--changes N]`.
///
/// Settings come from the environment as upstream felix and calicoctl read them:
/// `DATASTORE_TYPE`, `SQLITE_PATH`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`,
/// `ETCD_CERT_FILE`, `ETCD_KEY_FILE` (else `/etc/calico/calicoctl.cfg`), `NODENAME` (or
/// `FELIX_FELIXHOSTNAME`, else `/var/lib/calico/nodename`, else the host name),
/// `FELIX_DEFAULTENDPOINTTOHOSTACTION` (`DROP`, `ACCEPT`, `RETURN`),
/// `FELIX_LOGSEVERITYSCREEN`, `FELIX_NFTABLESREFRESHINTERVAL` (seconds between drift
/// checks, default 2).
public enum FelixCommand {
    public static let usage = """
        usage: calico-felix [--once] [--config FILE]
               calico-felix --bench [--endpoints N] [--policies N] [--changes N]
        Keeps this host's nftables table inet calico in step with Calico policy.
          --once        sync once and exit
          --config F    calicoctl config file (default /etc/calico/calicoctl.cfg)
          --bench       measure a full sync and single changes on synthetic data
        """

    /// Runs the command; returns the exit status.
    public static func main(arguments: [String], environment: [String: String]) -> Int32 {
        TerminationSignals.block()
        var log = FelixLog()
        if let l = environment["FELIX_LOGSEVERITYSCREEN"].flatMap(FelixLog.Level.init(name:)) { log.level = l }
        do {
            return try execute(arguments: arguments, environment: environment, log: log)
        } catch {
            log.error("\(error)")
            if case .usage = error { return 2 }
            return 1
        }
    }

    private static func execute(arguments: [String], environment: [String: String], log: FelixLog) throws(FelixError) -> Int32 {
            var once = false, bench = false
            var configFile = DatastoreSettings.defaultConfigFile
            var benchOptions = FelixBenchmark.Options()
            var args = arguments.dropFirst()[...]
            func value(_ flag: String) throws(FelixError) -> String {
                guard let v = args.popFirst() else { throw .usage("\(flag) needs a value\n\(usage)") }
                return v
            }
            func number(_ flag: String) throws(FelixError) -> Int {
                let v = try value(flag)
                guard let n = Int(v), n >= 0 else { throw .usage("\(flag): not a number: \(v)") }
                return n
            }
            while let a = args.popFirst() {
                switch a {
                case "--once": once = true
                case "--config": configFile = try value(a)
                case "--bench": bench = true
                case "--endpoints": benchOptions.endpoints = try number(a)
                case "--policies": benchOptions.policies = try number(a)
                case "--changes": benchOptions.changes = try number(a)
                case "-h", "--help":
                    print(usage)
                    return 0
                default: throw .usage("unknown argument \(a)\n\(usage)")
                }
            }
            let nft = try NFTCommand()
            if bench {
                let report = try FelixBenchmark.run(benchOptions, nft: nft, log: log)
                print(report)
                return 0
            }
            let settings: DatastoreSettings
            do { settings = try DatastoreSettings(environment: environment, configFile: configFile) } catch { throw .settings(error) }
            let node = NodeName.resolve(configured: environment["NODENAME"].flatMap(nonEmpty) ?? environment["FELIX_FELIXHOSTNAME"])
            var options = Felix.Options(nodeName: node)
            if let text = environment["FELIX_DEFAULTENDPOINTTOHOSTACTION"].flatMap(nonEmpty) {
                guard let a = EndpointToHostAction(rawValue: text.uppercased()) else {
                    throw .usage("FELIX_DEFAULTENDPOINTTOHOSTACTION must be DROP, ACCEPT or RETURN, not \(text)")
                }
                options.endpointToHostAction = a
            }
            if let text = environment["FELIX_NFTABLESREFRESHINTERVAL"].flatMap(nonEmpty) {
                guard let s = Double(text), s > 0 else { throw .usage("FELIX_NFTABLESREFRESHINTERVAL: not a positive number: \(text)") }
                options.driftCheckInterval = s
            }
            let store: any Datastore
            do { store = try openDatastore(settings) } catch { throw .datastore(error) }
            defer { store.close() }
            let felix = Felix(options: options, store: store, nft: nft, log: log)
            log.info("starting on node \(node), pid \(getpid())")
            if once {
                try felix.installBaseTable()
                let report = try felix.synchronize()
                log.info(report.description)
                return 0
            }
            try felix.run(shouldStop: {
                if let s = TerminationSignals.take() {
                    log.info("received signal \(s)")
                    return true
                }
                return false
            })
            return 0
    }
}

func nonEmpty(_ s: String) -> String? {
    let t = s.trimmingWhitespace
    return t.isEmpty ? nil : t
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
