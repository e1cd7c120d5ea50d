import CNI
import JSON
import POSIX
import Testing

/// Validation order and codes (REFERENCE.md §2), checked on the bytes a runtime reads.
@Suite struct DispatcherTests {
    func run(_ env: [String: String], _ stdin: String, plugin: RecordingPlugin = RecordingPlugin()) -> (CNIOutput, CallLog) {
        let out = CNIDispatcher.run(plugin, environment: env, stdin: bytes(stdin))
        return (out, plugin.log)
    }

    func expectError(_ out: CNIOutput, code: Int, msgContains: String = "", version: String? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.exitCode != 0, sourceLocation: sourceLocation)
        let j = stdoutJSON(out)
        #expect(j?["code"]?.intValue == code, "stdout: \(out.stdoutText)", sourceLocation: sourceLocation)
        if !msgContains.isEmpty {
            #expect(j?["msg"]?.stringValue?.contains(msgContains) == true, "stdout: \(out.stdoutText)", sourceLocation: sourceLocation)
        }
        #expect(j?["msg"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        if let version { #expect(j?["cniVersion"]?.stringValue == version, sourceLocation: sourceLocation) }
        // Exactly one object on stdout, one line.
        #expect(out.stdoutText.split(separator: "\n").count == 1, sourceLocation: sourceLocation)
    }

    @Test func addSucceedsAndPrintsTheConfigVersion() {
        let (out, log) = run(addEnvironment(), basicConfig)
        #expect(out.exitCode == 0)
        #expect(log.calls == ["add"])
        #expect(out.stdoutText == #"{"cniVersion":"0.4.0","dns":{},"interfaces":[{"mac":"ee:ee:ee:ee:ee:ee","name":"eth0","sandbox":"/var/run/netns/x"}],"ips":[{"address":"10.1.2.3/32","gateway":"169.254.1.1","interface":0,"version":"4"}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"}]}"# + "\n")
        let r = log.requests[0]
        #expect(r.containerID == "5baff64c-d028-4f47-a2c6-26c2bdd2b8a2")
        #expect(r.ifName == "eth0")
        #expect(r.netns == "/var/run/mesos/isolators/network/cni/5baff64c/ns")
        #expect(r.searchPath == ["/opt/cni/bin"])
        #expect(r.conf.bytes == bytes(basicConfig))
        #expect(r.conf.name == "net1")
    }

    @Test func missingEnvironmentIsNamedAllAtOnce() {
        let (out, log) = run(["CNI_COMMAND": "ADD", "CNI_NETNS": ""], basicConfig)
        expectError(out, code: 4, msgContains: "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME")
        #expect(log.calls.isEmpty)
    }

    @Test func missingCommand() {
        let (out, _) = run(["CNI_CONTAINERID": "x"], basicConfig)
        expectError(out, code: 4, msgContains: "[CNI_COMMAND]")
    }

    @Test(arguments: [
        ("ADD", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]),
        ("CHECK", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]),
        ("DEL", ["CNI_CONTAINERID", "CNI_IFNAME"]),
        ("GC", []), ("STATUS", []), ("VERSION", []),
    ])
    func environmentRulesPerCommand(command: String, required: [String]) throws {
        let cmd = try #require(CNICommand(rawValue: command))
        #expect(CNIEnvironment.missing(for: cmd, in: ["CNI_COMMAND": command]) == required)
        // Empty counts as absent.
        let empty = Dictionary(uniqueKeysWithValues: required.map { ($0, "") })
        #expect(CNIEnvironment.missing(for: cmd, in: empty.merging(["CNI_COMMAND": command]) { a, _ in a }) == required)
    }

    @Test func delWithoutNetnsIsAccepted() {
        var env = addEnvironment(["CNI_COMMAND": "DEL"])
        env["CNI_NETNS"] = nil
        let (out, log) = run(env, #"{"cniVersion":"0.2.0","name":"calico","type":"calico"}"#)
        #expect(out.exitCode == 0)
        #expect(out.stdout.isEmpty)
        #expect(log.calls == ["del"])
        #expect(log.requests[0].netns == nil)
    }

    @Test func emptyNetnsIsAbsentOnDel() {
        let (out, log) = run(addEnvironment(["CNI_COMMAND": "DEL", "CNI_NETNS": ""]), basicConfig)
        #expect(out.exitCode == 0)
        #expect(log.requests.first?.netns == nil)
    }

    @Test func stdinReadFailureIsCode5() {
        let plugin = RecordingPlugin()
        var stdout: [UInt8] = []
        let code = CNIDispatcher.run(plugin, environment: addEnvironment(),
                                     readStdin: { () throws(Errno) -> [UInt8] in throw Errno(5, call: "read stdin") },
                                     stdout: { stdout.append(contentsOf: $0) }, stderr: { _ in })
        #expect(code == 1)
        #expect((try? JSON(parsing: stdout))?["code"]?.intValue == 5)
        #expect(plugin.log.calls.isEmpty)
    }

    @Test(arguments: ["", "{", "not json", "[1,2]", #""name""#, #"{"name":"n","cniVersion":4}"#,
                      #"{"name":5,"cniVersion":"0.4.0"}"#, #"{"name":"n","ipam":"host-local"}"#,
                      #"{"name":"n","cniVersion":"0.4.0","prevResult":{"ips":[{"address":"10.0.0.1"}]}}"#])
    func undecodableConfigIsCode6(stdin: String) {
        let (out, log) = run(addEnvironment(), stdin)
        expectError(out, code: 6)
        #expect(log.calls.isEmpty)
    }

    @Test(arguments: [#"{"cniVersion":"0.4.0","type":"t"}"#, #"{"cniVersion":"0.4.0","name":"","type":"t"}"#,
                      #"{"cniVersion":"0.4.0","name":"-net","type":"t"}"#, #"{"cniVersion":"0.4.0","name":"net/1","type":"t"}"#,
                      #"{"cniVersion":"0.4.0","name":"net 1","type":"t"}"#, #"{"cniVersion":"0.4.0","name":"nét","type":"t"}"#])
    func badNetworkNameIsCode7(stdin: String) {
        let (out, log) = run(addEnvironment(), stdin)
        expectError(out, code: 7, msgContains: "network name", version: "0.4.0")
        #expect(log.calls.isEmpty)
    }

    @Test func networkNameAllowsDotsDashesUnderscores() {
        let (out, _) = run(addEnvironment(), #"{"cniVersion":"0.4.0","name":"a1.b_c-d","type":"t"}"#)
        #expect(out.exitCode == 0)
    }

    @Test(arguments: ["-abc", ".abc", "abc/def", "abc def", "abc:def", "ab$c"])
    func badContainerIDIsCode4(id: String) {
        let (out, log) = run(addEnvironment(["CNI_CONTAINERID": id]), basicConfig)
        expectError(out, code: 4, msgContains: "containerID")
        #expect(log.calls.isEmpty)
    }

    @Test func nestedMesosContainerIDWithADotIsValid() {
        let (out, _) = run(addEnvironment(["CNI_CONTAINERID": "5baff64c-d028.0e5a9c60-1f2e"]), basicConfig)
        #expect(out.exitCode == 0)
    }

    @Test(arguments: [("eth0123456789012", "too long"), (".", ". or .."), ("..", ". or .."), ("eth/0", "whitespace"),
                      ("eth:0", "whitespace"), ("eth 0", "whitespace"), ("eth\t0", "whitespace")])
    func badInterfaceNameIsCode4(name: String, message: String) {
        let (out, log) = run(addEnvironment(["CNI_IFNAME": name]), basicConfig)
        expectError(out, code: 4, msgContains: message)
        #expect(log.calls.isEmpty)
    }

    @Test func fifteenByteInterfaceNameIsValid() {
        let (out, _) = run(addEnvironment(["CNI_IFNAME": "eth012345678901"]), basicConfig)
        #expect(out.exitCode == 0)
    }

    @Test(arguments: ["0.5.0", "2.0.0", "0.3", "v0.4.0", "1.0", "latest"])
    func unknownVersionIsCode1(version: String) {
        let (out, log) = run(addEnvironment(), #"{"cniVersion":"\#(version)","name":"n","type":"t"}"#)
        expectError(out, code: 1, msgContains: "incompatible CNI versions", version: CNIVersion.latest.description)
        #expect(stdoutJSON(out)?["details"]?.stringValue?.contains(version) == true)
        #expect(log.calls.isEmpty)
    }

    @Test func versionThePluginDoesNotSupportIsCode1() {
        var plugin = RecordingPlugin()
        plugin.supportedVersions = [.v0_3_1, .v0_4_0]
        let (out, log) = run(addEnvironment(), #"{"cniVersion":"1.0.0","name":"n","type":"t"}"#, plugin: plugin)
        expectError(out, code: 1)
        #expect(log.calls.isEmpty)
    }

    @Test func missingVersionMeans010() {
        let (out, log) = run(addEnvironment(), #"{"name":"n","type":"t"}"#)
        #expect(out.exitCode == 0)
        #expect(log.requests.first?.conf.cniVersion == .v0_1_0)
        // 0.1.0 shape, labelled 0.1.0.
        #expect(out.stdoutText == #"{"cniVersion":"0.1.0","dns":{},"ip4":{"gateway":"169.254.1.1","ip":"10.1.2.3/32","routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"}]}}"# + "\n")
    }

    @Test(arguments: [("CHECK", "0.3.1"), ("GC", "1.0.0"), ("STATUS", "1.0.0"), ("CHECK", "0.2.0"), ("GC", "0.4.0")])
    func commandsGatedByVersionAreCode1(command: String, version: String) {
        let (out, log) = run(addEnvironment(["CNI_COMMAND": command]), #"{"cniVersion":"\#(version)","name":"n","type":"t"}"#)
        expectError(out, code: 1, msgContains: "does not allow \(command)", version: version)
        #expect(log.calls.isEmpty)
    }

    @Test(arguments: [("CHECK", "0.4.0", "check"), ("CHECK", "1.1.0", "check"), ("GC", "1.1.0", "gc"), ("STATUS", "1.1.0", "status")])
    func gatedCommandsRunAtTheirVersion(command: String, version: String, call: String) {
        var env = ["CNI_COMMAND": command]
        if command == "CHECK" { env = addEnvironment(["CNI_COMMAND": "CHECK"]) }
        let (out, log) = run(env, #"{"cniVersion":"\#(version)","name":"n","type":"t"}"#)
        #expect(out.exitCode == 0, "\(out.stdoutText)")
        #expect(out.stdout.isEmpty)
        #expect(log.calls == [call])
    }

    @Test func unknownCommandIsCode4AfterEverythingElse() {
        let (out, log) = run(addEnvironment(["CNI_COMMAND": "FROB"]), basicConfig)
        expectError(out, code: 4, msgContains: "unknown CNI_COMMAND: FROB")
        #expect(log.calls.isEmpty)
        // ... but a bad config is reported first.
        let (bad, _) = run(addEnvironment(["CNI_COMMAND": "FROB"]), "{")
        expectError(bad, code: 6)
        // ... and so is a bad version.
        let (badVersion, _) = run(addEnvironment(["CNI_COMMAND": "FROB"]), #"{"cniVersion":"9.9.9","name":"n"}"#)
        expectError(badVersion, code: 1)
    }

    /// One input that is wrong in every way reports the earliest rule only.
    @Test func orderOfChecks() {
        // Missing env beats everything.
        var env = addEnvironment(["CNI_CONTAINERID": "bad/id", "CNI_IFNAME": "x/y"])
        env["CNI_NETNS"] = nil
        expectError(run(env, "{").0, code: 4, msgContains: "CNI_NETNS")
        // Decode beats name.
        env = addEnvironment(["CNI_CONTAINERID": "bad/id", "CNI_IFNAME": "x/y"])
        expectError(run(env, "{").0, code: 6)
        // Name beats container id.
        let badName = #"{"cniVersion":"9.9.9","name":"bad name"}"#
        expectError(run(env, badName).0, code: 7)
        // Container id beats interface name.
        let badVersion = #"{"cniVersion":"9.9.9","name":"good"}"#
        expectError(run(env, badVersion).0, code: 4, msgContains: "containerID")
        // Interface name beats version.
        env["CNI_CONTAINERID"] = "good"
        expectError(run(env, badVersion).0, code: 4, msgContains: "interface name")
        // Version beats CNI_ARGS.
        env["CNI_IFNAME"] = "eth0"
        env["CNI_ARGS"] = "Unknown=1"
        expectError(run(env, badVersion).0, code: 1)
        expectError(run(env, basicConfig).0, code: 4, msgContains: "unknown args: Unknown")
    }

    @Test func pluginErrorIsPrintedAsIs() {
        var plugin = RecordingPlugin()
        plugin.failure = CNIError(code: 101, msg: "pool exhausted", details: "no free address in 172.29.0.0/16")
        let (out, _) = run(addEnvironment(), #"{"cniVersion":"0.2.0","name":"calico","type":"calico"}"#, plugin: plugin)
        #expect(out.exitCode == 1)
        #expect(out.stdoutText == #"{"cniVersion":"0.2.0","code":101,"details":"no free address in 172.29.0.0/16","msg":"pool exhausted"}"# + "\n")
    }

    @Test func emptyDetailsAreOmitted() {
        var plugin = RecordingPlugin()
        plugin.failure = .tryAgainLater("datastore timeout")
        let (out, _) = run(addEnvironment(), basicConfig, plugin: plugin)
        #expect(out.stdoutText == #"{"cniVersion":"0.4.0","code":11,"msg":"datastore timeout"}"# + "\n")
    }

    @Test func addWithALegacyVersionAndNoAddressFails() {
        var plugin = RecordingPlugin()
        plugin.result = CNIResult(interfaces: [.init(name: "eth0")])
        let (out, _) = run(addEnvironment(), #"{"cniVersion":"0.2.0","name":"calico","type":"calico"}"#, plugin: plugin)
        expectError(out, code: 1, msgContains: "no IP addresses", version: "0.2.0")
    }

    @Test func statusFailureCodes() {
        var plugin = RecordingPlugin()
        plugin.failure = .pluginNotAvailable("datastore unreachable")
        let (out, _) = run(["CNI_COMMAND": "STATUS"], #"{"cniVersion":"1.1.0","name":"n","type":"t"}"#, plugin: plugin)
        expectError(out, code: 50, msgContains: "datastore unreachable", version: "1.1.0")
    }

    @Test func gcGetsTheValidAttachments() {
        let conf = #"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"eth1"}],"cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}]}"#
        let (out, log) = run(["CNI_COMMAND": "GC"], conf)
        #expect(out.exitCode == 0)
        #expect(log.attachments == [CNIAttachment(containerID: "c1", ifName: "eth0"), CNIAttachment(containerID: "c2", ifName: "eth1")])
        #expect(log.requests[0].containerID == "")
    }

    @Test func gcFallsBackToLegacyAttachmentsAndMissingMeansNone() {
        let legacy = #"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}]}"#
        let (_, log) = run(["CNI_COMMAND": "GC"], legacy)
        #expect(log.attachments == [CNIAttachment(containerID: "old", ifName: "eth0")])
        let none = #"{"cniVersion":"1.1.0","name":"n","type":"t"}"#
        let (out, log2) = run(["CNI_COMMAND": "GC"], none)
        #expect(out.exitCode == 0)
        #expect(log2.calls == ["gc"])
        #expect(log2.attachments.isEmpty)
        let malformed = #"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[{"containerID":1}]}"#
        expectError(run(["CNI_COMMAND": "GC"], malformed).0, code: 6)
    }

    @Test func cniArgsReachThePlugin() {
        let (out, log) = run(addEnvironment(["CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;FOO=bar"]), basicConfig)
        #expect(out.exitCode == 0)
        #expect(log.requests.first?.args["K8S_POD_NAME"] == "web")
        #expect(log.requests.first?.args["FOO"] == "bar")
    }

    @Test func logsGoToStderrNeverStdout() {
        var plugin = RecordingPlugin()
        plugin.failure = .ioFailure("disk on fire")
        let (out, _) = run(addEnvironment(), #"{"cniVersion":"0.4.0","name":"n","type":"t","log_level":"debug"}"#, plugin: plugin)
        #expect(out.stderrText.contains("[ERROR]"))
        #expect(out.stderrText.contains("disk on fire"))
        #expect(out.stderrText.contains("[DEBUG]"))
        #expect(out.stderrText.contains("5baff64c-d028-4f47-a2c6-26c2bdd2b8a2 eth0 ADD"))
        #expect(stdoutJSON(out)?["code"]?.intValue == 5)
    }
}

/// VERSION needs only CNI_COMMAND and works with empty stdin.
@Suite struct VersionCommandTests {
    let all = #"["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]"#

    @Test func emptyStdinAnswersLatest() {
        let out = CNIDispatcher.run(RecordingPlugin(), environment: ["CNI_COMMAND": "VERSION"], stdin: [])
        #expect(out.exitCode == 0)
        #expect(out.stdoutText == #"{"cniVersion":"1.1.0","supportedVersions":\#(all)}"# + "\n")
    }

    @Test func echoesTheConfigVersion() {
        let out = CNIDispatcher.run(RecordingPlugin(), environment: ["CNI_COMMAND": "VERSION"], stdin: bytes(#"{"cniVersion":"0.2.0","name":"calico"}"#))
        #expect(out.stdoutText == #"{"cniVersion":"0.2.0","supportedVersions":\#(all)}"# + "\n")
    }

    @Test func unknownConfigVersionAnswersLatest() {
        let out = CNIDispatcher.run(RecordingPlugin(), environment: ["CNI_COMMAND": "VERSION"], stdin: bytes(#"{"cniVersion":"7.0.0"}"#))
        #expect(out.exitCode == 0)
        #expect(stdoutJSON(out)?["cniVersion"] == "1.1.0")
    }

    @Test func reportsThePluginsVersions() {
        var plugin = RecordingPlugin()
        plugin.supportedVersions = [.v0_1_0, .v0_2_0]
        let out = CNIDispatcher.run(plugin, environment: ["CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "bad/id"], stdin: [])
        #expect(out.stdoutText == #"{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0"]}"# + "\n")
        #expect(plugin.log.calls.isEmpty)
    }
}
