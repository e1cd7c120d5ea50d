/// A command line the operator got wrong; printed with the command's usage.
public struct UsageError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The subcommand whose usage to show, nil for the top level.
    public var command: String?

    public init(_ message: String, command: String? = nil) {
        self.message = message
        self.command = command
    }

    public var description: String { message }
}

/// An option a subcommand accepts, with all its spellings (`-f`, `--filename`).
struct OptionSpec: Sendable {
    /// The canonical name results are stored under (the long name without dashes).
    var name: String
    var short: Character?
    var takesValue: Bool

    static func value(_ name: String, _ short: Character? = nil) -> OptionSpec {
        OptionSpec(name: name, short: short, takesValue: true)
    }

    static func flag(_ name: String, _ short: Character? = nil) -> OptionSpec {
        OptionSpec(name: name, short: short, takesValue: false)
    }
}

/// Options and positional arguments of one subcommand.
struct ParsedArguments: Sendable {
    var positionals: [String] = []
    var values: [String: String] = [:]
    var flags: Set<String> = []

    func value(_ name: String) -> String? { values[name] }
    func has(_ name: String) -> Bool { flags.contains(name) }
}

/// A small parser for upstream calicoctl's (docopt) spellings: `-f x`, `-fx`, `-f=x`,
/// `--filename x`, `--filename=x`, flags `-a`, `--all-namespaces`, `--` ending options,
/// and `-` alone as a value or positional (stdin).
struct ArgumentParser {
    var command: String
    var options: [OptionSpec]

    func parse(_ args: ArraySlice<String>) throws(UsageError) -> ParsedArguments {
        var result = ParsedArguments()
        var i = args.startIndex
        var onlyPositionals = false
        func store(_ spec: OptionSpec, _ value: String?) {
            if spec.takesValue { result.values[spec.name] = value } else { result.flags.insert(spec.name) }
        }
        while i < args.endIndex {
            let arg = args[i]
            i += 1
            if onlyPositionals || arg == "-" || !arg.hasPrefix("-") {
                result.positionals.append(arg)
                continue
            }
            if arg == "--" {
                onlyPositionals = true
                continue
            }
            if arg.hasPrefix("--") {
                let body = arg.dropFirst(2)
                let name = body.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                let inline = body.contains("=") ? String(body.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[1]) : nil
                guard let spec = options.first(where: { $0.name == name }) else {
                    throw UsageError("unknown option '--\(name)' for 'calicoctl \(command)'", command: command)
                }
                if spec.takesValue {
                    if let inline {
                        store(spec, inline)
                    } else if i < args.endIndex {
                        store(spec, args[i])
                        i += 1
                    } else {
                        throw UsageError("option '--\(name)' needs a value", command: command)
                    }
                } else {
                    if inline != nil { throw UsageError("option '--\(name)' takes no value", command: command) }
                    store(spec, nil)
                }
                continue
            }
            // Short options, possibly clustered (`-ao`) or with an attached value (`-fx`, `-f=x`).
            var rest = Substring(arg.dropFirst())
            while let c = rest.first {
                rest = rest.dropFirst()
                guard let spec = options.first(where: { $0.short == c }) else {
                    throw UsageError("unknown option '-\(c)' for 'calicoctl \(command)'", command: command)
                }
                if spec.takesValue {
                    if !rest.isEmpty {
                        store(spec, String(rest.first == "=" ? rest.dropFirst() : rest))
                    } else if i < args.endIndex {
                        store(spec, args[i])
                        i += 1
                    } else {
                        throw UsageError("option '-\(c)' needs a value", command: command)
                    }
                    break
                }
                store(spec, nil)
            }
        }
        return result
    }
}
