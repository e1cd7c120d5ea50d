import CalicoAPI
import Datastore
import Datastores
import Foundation

/// calicoctl: the operator's tool, with upstream's subcommands, flags and wording
/// (`dcos calico <args>` passes its arguments straight here).
public enum CalicoCtl {
    /// The version `calicoctl version` reports: the upstream release whose behaviour this
    /// tool follows, and this implementation.
    public static let version = "v3.15.0-mesos"

    /// Runs one command line (without the program name) and returns the exit status.
    public static func run(_ arguments: [String], environment: [String: String], console: Console) -> Int32 {
        do {
            var args = ArraySlice(arguments)
            var global = ParsedArguments()
            // Global options before the subcommand.
            let globalParser = ArgumentParser(command: "", options: globalOptions)
            var leading: [String] = []
            while let first = args.first, first.hasPrefix("-"), first != "-" {
                leading.append(first)
                args = args.dropFirst()
                if let spec = globalOptions.first(where: { "--" + $0.name == first || ($0.short.map { "-\($0)" } == first) }),
                   spec.takesValue, let v = args.first {
                    leading.append(v)
                    args = args.dropFirst()
                }
            }
            global = try globalParser.parse(leading[...])
            guard let command = args.first else {
                console.out(Usage.main)
                return global.has("help") ? 0 : 1
            }
            if global.has("help") || command == "help" {
                console.out(args.count > 1 ? Usage.text(for: args[args.startIndex + 1]) : Usage.main)
                return 0
            }
            let rest = args.dropFirst()
            if rest.contains("-h") || rest.contains("--help") {
                console.out(Usage.text(for: command))
                return 0
            }
            var context = Context(console: console, environment: environment, configPath: global.value("config"))
            switch command {
            case "create", "apply", "replace":
                try ResourceCommands.write(command, rest, &context)
            case "delete":
                try ResourceCommands.delete(rest, &context)
            case "get":
                try GetCommand.run(rest, &context)
            case "patch":
                try PatchCommand.run(rest, &context)
            case "label":
                try LabelCommand.run(rest, &context)
            case "ipam":
                try IPAMCommands.run(rest, &context)
            case "node":
                try NodeCommands.run(rest, &context)
            case "version":
                try VersionCommand.run(rest, &context)
            default:
                throw UsageError("unknown command '\(command)'")
            }
            context.close()
            return context.exitStatus
        } catch let error as UsageError {
            console.err("Invalid arguments: \(error.message)")
            console.err(error.command.map { Usage.text(for: $0) } ?? Usage.main)
            return 1
        } catch let error as CommandFailure {
            console.err(error.message)
            return 1
        } catch {
            console.err("\(error)")
            return 1
        }
    }

    static let globalOptions: [OptionSpec] = [
        .value("config", "c"), .value("log-level", "l"), .flag("help", "h"), .flag("allow-version-mismatch"), .value("context"),
    ]
}

/// A command that ran and failed; its message goes to stderr and calicoctl exits 1.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// What a running command has: the console, the environment, and (opened on first use)
/// the datastore.
struct Context {
    let console: Console
    let environment: [String: String]
    /// `-c/--config` given before the subcommand (a subcommand's own `-c` overrides it).
    var configPath: String?
    var exitStatus: Int32 = 0
    private var openedStore: (any Datastore)?

    init(console: Console, environment: [String: String], configPath: String?) {
        self.console = console
        self.environment = environment
        self.configPath = configPath
    }

    /// Opens the datastore the environment or config file names (see
    /// `DatastoreSettings(environment:configFile:)`: `DATASTORE_TYPE`, `SQLITE_PATH`,
    /// `ETCD_*` win over the file; with neither, the embedded store at its default path).
    /// A file named with `-c` must exist.
    mutating func store() throws -> any Datastore {
        if let openedStore { return openedStore }
        let settings: DatastoreSettings
        do {
            if let configPath, !FileManager.default.fileExists(atPath: configPath) {
                throw CommandFailure("config file \(configPath) does not exist")
            }
            settings = try DatastoreSettings(environment: environment, configFile: configPath ?? DatastoreSettings.defaultConfigFile)
        } catch {
            throw CommandFailure("Failed to create Calico API client: \(error)")
        }
        do {
            let s = try openDatastore(settings)
            openedStore = s
            return s
        } catch {
            throw CommandFailure("Failed to create Calico API client: \(error)")
        }
    }

    mutating func client() throws -> ResourceClient { ResourceClient(store: try store()) }

    func close() { openedStore?.close() }

    /// The node this host is (for `node status`): `NODENAME`/`CALICO_NODENAME`, then
    /// `/var/lib/calico/nodename`, then the lower-cased hostname, as the plugin decides.
    func nodeName() -> String {
        NodeName.resolve(configured: environment["NODENAME"].flatMap { $0.isEmpty ? nil : $0 } ?? environment["CALICO_NODENAME"])
    }
}
