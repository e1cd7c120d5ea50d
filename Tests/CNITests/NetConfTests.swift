import CNI
import IPAddress
import JSON
import Testing

@Suite struct NetConfTests {
    /// The exact stdin Mesos sends (REFERENCE.md §1).
    let mesos = #"{"args":{"org.apache.mesos":{"network_info":{"ip_addresses":[{"protocol":"IPv4"}],"labels":{"labels":[{"key":"biz_type","value":"bookstore"},{"key":"role","value":"server"}]},"name":"calico"}}},"cniVersion":"0.2.0","etcd_endpoints":"http://127.0.0.1:2379","ipam":{"type":"calico-ipam"},"name":"calico","type":"calico"}"#

    @Test func mesosConfig() throws {
        let conf = try NetConf(bytes: bytes(mesos))
        #expect(conf.cniVersion == .v0_2_0)
        #expect(conf.cniVersionString == "0.2.0")
        #expect(conf.name == "calico")
        #expect(conf.type == "calico")
        #expect(conf.ipamType == "calico-ipam")
        #expect(conf["etcd_endpoints"] == "http://127.0.0.1:2379")
        #expect(conf.bytes == bytes(mesos))
        let info = try #require(conf.mesosNetworkInfo)
        #expect(info.name == "calico")
        #expect(info.labels == [.init(key: "biz_type", value: "bookstore"), .init(key: "role", value: "server")])
        #expect(info.requestedProtocols == ["IPv4"])
        #expect(info.portMappings.isEmpty)
        // Mesos re-serialises with sorted keys, as our JSON does.
        #expect(conf.raw.compactText == mesos)
    }

    @Test func oldMesosEscapedSlashes() throws {
        let old = #"{"args":{"org.apache.mesos":{"network_info":{"labels":{},"name":"calico"}}},"cniVersion":"0.2.0","etcd_endpoints":"http:\/\/127.0.0.1:2379","ipam":{"type":"calico-ipam"},"name":"calico","type":"calico"}"#
        let conf = try NetConf(bytes: bytes(old))
        #expect(conf["etcd_endpoints"] == "http://127.0.0.1:2379")
        #expect(conf.mesosNetworkInfo?.labels == [])
        #expect(conf.bytes == bytes(old))
    }

    @Test func noMesosArgs() throws {
        let conf = try NetConf(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","type":"t","args":{"cni":{"labels":[]}}}"#))
        #expect(conf.mesosNetworkInfo == nil)
        #expect(conf.args?["cni"] != nil)
    }

    @Test func portMapperDelegateAt010() throws {
        // What mesos-cni-port-mapper passes to calico: the delegate plus name and args.
        let s = #"{"args":{"org.apache.mesos":{"network_info":{"name":"calico","port_mappings":[{"container_port":80,"host_port":31000,"protocol":"tcp"}]}}},"cniVersion":"0.1.0","etcd_endpoints":"http://master.dcos.thisdcos.directory:2379","ipam":{"type":"calico-ipam"},"mtu":1450,"name":"calico","type":"calico"}"#
        let conf = try NetConf(bytes: bytes(s))
        #expect(conf.cniVersion == .v0_1_0)
        #expect(conf["mtu"]?.intValue == 1450)
        #expect(conf.mesosNetworkInfo?.portMappings.count == 1)
    }

    @Test func prevResultInEachVersion() throws {
        let v040 = #"{"cniVersion":"0.4.0","name":"n","type":"t","prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"version":"4","address":"10.1.0.5/32","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"}],"dns":{}}}"#
        let p040 = try #require(try NetConf(bytes: bytes(v040)).prevResult)
        #expect(p040.interfaces == [.init(name: "eth0", sandbox: "/ns")])
        #expect(p040.ips == [.init(address: IPNetwork("10.1.0.5/32")!, interface: 0)])
        #expect(p040.routes == [.init(destination: IPNetwork("0.0.0.0/0")!, gateway: IPAddress("169.254.1.1"))])

        // libcni 1.0.0: no version field; prevResult without its own cniVersion.
        let v100 = #"{"cniVersion":"1.0.0","name":"n","type":"t","prevResult":{"interfaces":[{"name":"eth0"}],"ips":[{"address":"fd00::5/128","interface":0}]}}"#
        #expect(try NetConf(bytes: bytes(v100)).prevResult?.ips.first?.address == IPNetwork("fd00::5/128"))

        let v110 = #"{"cniVersion":"1.1.0","name":"n","type":"t","prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mtu":1450}],"ips":[{"address":"10.1.0.5/32","interface":0}],"routes":[{"dst":"10.0.0.0/8","table":5}]}}"#
        let p110 = try #require(try NetConf(bytes: bytes(v110)).prevResult)
        #expect(p110.interfaces.first?.mtu == 1450)
        #expect(p110.routes.first?.table == 5)

        // A legacy prevResult (0.2.0 runtimes caching results).
        let v020 = #"{"cniVersion":"0.2.0","name":"n","type":"t","prevResult":{"ip4":{"ip":"10.1.0.5/32"}}}"#
        #expect(try NetConf(bytes: bytes(v020)).prevResult?.ips.first?.address == IPNetwork("10.1.0.5/32"))
    }

    @Test func runtimeConfigAndDNS() throws {
        let s = #"{"cniVersion":"1.0.0","name":"n","type":"t","dns":{"nameservers":["1.1.1.1"]},"runtimeConfig":{"portMappings":[]}}"#
        let conf = try NetConf(bytes: bytes(s))
        #expect(conf.dns.nameservers == ["1.1.1.1"])
        #expect(conf.runtimeConfig?["portMappings"] == .array([]))
    }

    @Test func logSettings() throws {
        let conf = try NetConf(bytes: bytes(#"{"name":"n","log_level":"Debug","log_file_path":"/var/log/calico/cni/cni.log"}"#))
        #expect(conf.logLevel == .debug)
        #expect(conf.logFilePath == "/var/log/calico/cni/cni.log")
        #expect(conf.resultVersion == "0.1.0")
    }
}

@Suite struct CNIArgsTests {
    @Test func parsesPairs() throws {
        let a = try CNIArgs(parsing: "K8S_POD_NAME=web;K8S_POD_NAMESPACE=default", knownKeys: CNIArgs.kubernetesKeys)
        #expect(a["K8S_POD_NAME"] == "web")
        #expect(a["K8S_POD_NAMESPACE"] == "default")
        #expect(a.pairs.count == 2)
        #expect(!a.ignoresUnknown)
    }

    @Test func emptyIsNothing() throws {
        #expect(try CNIArgs(parsing: "", knownKeys: []).pairs.isEmpty)
    }

    @Test(arguments: ["IgnoreUnknown=1;FOO=bar", "IgnoreUnknown=true;FOO=bar", "FOO=bar;IgnoreUnknown=TRUE", "IgnoreUnknown=True"])
    func ignoreUnknown(text: String) throws {
        let a = try CNIArgs(parsing: text, knownKeys: [])
        #expect(a.ignoresUnknown)
    }

    @Test func podmanArgs() throws {
        // Podman: IgnoreUnknown=1;K8S_POD_NAME=<name> to a plugin that knows no keys.
        let a = try CNIArgs(parsing: "IgnoreUnknown=1;K8S_POD_NAME=web", knownKeys: [])
        #expect(a["K8S_POD_NAME"] == "web")
    }

    @Test(arguments: [("FOO=bar", "unknown args: FOO"), ("FOO=bar;BAZ=1", "unknown args: FOO, BAZ"),
                      ("IgnoreUnknown=0;FOO=bar", "unknown args"), ("FOO", "invalid pair"), ("A=b;", "invalid pair"),
                      ("A=b=c", "invalid pair"), ("IgnoreUnknown=yes", "IgnoreUnknown")])
    func errors(text: String, message: String) {
        do {
            _ = try CNIArgs(parsing: text, knownKeys: ["A"])
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == 4)
            #expect(error.msg.contains(message), "\(error.msg)")
        }
    }

    @Test func knownKeysAreAccepted() throws {
        let a = try CNIArgs(parsing: "A=1;A=2", knownKeys: ["A"])
        #expect(a["A"] == "2")
    }
}

@Suite struct CNIErrorTests {
    @Test func wireFormat() {
        #expect(CNIError.invalidEnvironment("x", details: "y").json(cniVersion: "0.2.0").compactText == #"{"cniVersion":"0.2.0","code":4,"details":"y","msg":"x"}"#)
        #expect(CNIError.decodingFailure("x").json(cniVersion: "1.0.0").compactText == #"{"cniVersion":"1.0.0","code":6,"msg":"x"}"#)
    }

    @Test func codes() {
        #expect([CNIError.incompatibleVersion(""), .unsupportedField(""), .unknownContainer(""), .invalidEnvironment(""),
                 .ioFailure(""), .decodingFailure(""), .invalidNetworkConfig(""), .tryAgainLater(""), .pluginNotAvailable(""),
                 .pluginNotAvailableLimitedConnectivity(""), .alreadyAllocated("")].map(\.code) == [1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100])
    }

    @Test func parsesAnotherPluginsError() throws {
        let e = CNIError(parsing: try JSON(parsing: #"{"cniVersion":"0.4.0","code":11,"msg":"busy","details":"etcd"}"#))
        #expect(e == CNIError(code: 11, msg: "busy", details: "etcd"))
        #expect(CNIError(parsing: try JSON(parsing: #"{"msg":"no code"}"#)) == nil)
    }

    @Test func versions() {
        #expect(CNIVersion("0.3.1") == .v0_3_1)
        #expect(CNIVersion("0.3") == nil)
        #expect(CNIVersion("v1.0.0") == nil)
        #expect(CNIVersion.fromConfig(nil) == .v0_1_0)
        #expect(CNIVersion.fromConfig("") == .v0_1_0)
        #expect(CNIVersion.fromConfig("0.5.0") == nil)
        #expect(CNIVersion.v0_4_0 < .v1_0_0)
        #expect(CNIVersion.all.map(\.description) == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    }
}
