/// The CNI protocol, shared by every plugin we ship (`calico`, `calico-ipam`).
///
/// A plugin is a value conforming to `CNIPlugin`; its executable is one line:
///
/// ```swift
/// import CNI
/// cniMain(CalicoPlugin())
/// ```
///
/// `cniMain` reads the real environment and stdin and hands them to
/// `CNIDispatcher.run`, which does everything the specification asks before a plugin is
/// called, in the reference order (missing env 4 → read stdin 5 → decode 6 → network name 7
/// → container id 4 → interface name 4 → `cniVersion` 1 → CHECK/GC/STATUS version gates 1
/// → unknown command 4 → `CNI_ARGS` 4), answers VERSION itself, and calls exactly one of
/// the plugin's methods with a `CNIRequest`:
///
/// ```swift
/// struct CalicoPlugin: CNIPlugin {
///     var knownArgs: Set<String> { CNIArgs.kubernetesKeys }
///     func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
///         let ipam = try IPAMDelegate(request: request)
///         var result: CNIResult
///         do { result = try ipam.add() } catch {
///             // error.refusedAsDuplicate: never roll back with DEL here.
///             throw error.error
///         }
///         let mtu = request.conf["mtu"]?.intValue ?? 1500
///         ...
///         return result     // the dispatcher prints it in the config's cniVersion
///     }
///     func del(_ request: CNIRequest) throws(CNIError) { ... }   // request.netns may be nil
///     func check(_ request: CNIRequest) throws(CNIError) { ... } // request.conf.prevResult
/// }
/// ```
///
/// Plugins build one canonical `CNIResult` (the 1.1.0 model) and never deal with versions:
/// the dispatcher converts it when printing, to the 0.1/0.2 `ip4` shape for Mesos.
/// Failures are `CNIError`s, printed as the one JSON object on stdout with exit status 1;
/// logs go to stderr through `request.log` (and to `log_file_path` when configured).
/// Tests call `CNIDispatcher.run(plugin, environment:stdin:)` with injected values and
/// inspect the returned bytes; nothing touches the process environment.

/// A CNI plugin: one method per command. The dispatcher has validated the request.
public protocol CNIPlugin {
    /// The config versions the plugin accepts (default: every version of this library).
    /// VERSION reports them; a config with another `cniVersion` fails with code 1.
    var supportedVersions: [CNIVersion] { get }

    /// `CNI_ARGS` keys the plugin accepts (`IgnoreUnknown` always is). Keys the plugin does
    /// not use but must tolerate (`CNIArgs.kubernetesKeys`) belong here too.
    var knownArgs: Set<String> { get }

    /// Attaches the container; the dispatcher prints the result in the config's version.
    func add(_ request: CNIRequest) throws(CNIError) -> CNIResult

    /// Detaches. Must succeed when everything is already gone, repeatedly, after a failed or
    /// partial ADD, and without `CNI_NETNS`.
    func del(_ request: CNIRequest) throws(CNIError)

    /// Verifies the attachment against `request.conf.prevResult` (config ≥ 0.4.0).
    func check(_ request: CNIRequest) throws(CNIError)

    /// Releases everything of this network not in `validAttachments` (config ≥ 1.1.0).
    /// Default: nothing to collect. Override when the plugin keeps state.
    func gc(_ request: CNIRequest, validAttachments: [CNIAttachment]) throws(CNIError)

    /// Succeeds when ADD can be served, else throws code 50/51 (config ≥ 1.1.0).
    /// Default: always ready. Override when the plugin depends on something (a datastore).
    func status(_ request: CNIRequest) throws(CNIError)
}

extension CNIPlugin {
    public var supportedVersions: [CNIVersion] { CNIVersion.all }
    public var knownArgs: Set<String> { [] }
    public func gc(_ request: CNIRequest, validAttachments: [CNIAttachment]) throws(CNIError) {}
    public func status(_ request: CNIRequest) throws(CNIError) {}
}

/// One validated invocation, as a plugin method receives it.
public struct CNIRequest {
    public let command: CNICommand
    /// `CNI_CONTAINERID`; empty for GC and STATUS.
    public let containerID: String
    /// `CNI_NETNS`; nil when absent (DEL after a reboot, GC, STATUS).
    public let netns: String?
    /// `CNI_IFNAME`; empty for GC and STATUS.
    public let ifName: String
    /// Parsed `CNI_ARGS`.
    public let args: CNIArgs
    /// `CNI_PATH` split on `:` (empty entries dropped).
    public let searchPath: [String]
    /// The environment exactly as received: delegated plugins get the same one.
    public let environment: [String: String]
    /// The decoded config; `conf.bytes` is stdin byte for byte.
    public let conf: NetConf
    /// The plugin's log (stderr and `log_file_path`).
    public let log: CNILogger
    /// True when the process ends with this command (`cniMain`): a plugin may then leave to
    /// the exit what it releases anyway (`Datastore.closeForExit`).
    public let endsProcess: Bool

    public init(command: CNICommand, containerID: String, netns: String?, ifName: String, args: CNIArgs,
                searchPath: [String], environment: [String: String], conf: NetConf, log: CNILogger,
                endsProcess: Bool = false) {
        self.endsProcess = endsProcess
        self.command = command
        self.containerID = containerID
        self.netns = netns
        self.ifName = ifName
        self.args = args
        self.searchPath = searchPath
        self.environment = environment
        self.conf = conf
        self.log = log
    }
}
