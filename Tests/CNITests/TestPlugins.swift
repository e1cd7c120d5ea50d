import CNI
import IPAddress
import JSON

/// What a test plugin saw: the methods called and the requests they got.
final class CallLog: @unchecked Sendable {
    var calls: [String] = []
    var requests: [CNIRequest] = []
    var attachments: [CNIAttachment] = []
}

/// A plugin that records its calls and answers with a fixed result or error.
struct RecordingPlugin: CNIPlugin {
    var log = CallLog()
    var result = CNIResult(
        interfaces: [.init(name: "eth0", mac: "ee:ee:ee:ee:ee:ee", sandbox: "/var/run/netns/x")],
        ips: [.init(address: IPNetwork("10.1.2.3/32")!, gateway: IPAddress("169.254.1.1"), interface: 0)],
        routes: [.init(destination: IPNetwork("0.0.0.0/0")!, gateway: IPAddress("169.254.1.1"))])
    var failure: CNIError?
    var supportedVersions: [CNIVersion] = CNIVersion.all
    var knownArgs: Set<String> = ["K8S_POD_NAME"]

    func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        log.calls.append("add"); log.requests.append(request)
        if let failure { throw failure }
        return result
    }
    func del(_ request: CNIRequest) throws(CNIError) {
        log.calls.append("del"); log.requests.append(request)
        if let failure { throw failure }
    }
    func check(_ request: CNIRequest) throws(CNIError) {
        log.calls.append("check"); log.requests.append(request)
        if let failure { throw failure }
    }
    func gc(_ request: CNIRequest, validAttachments: [CNIAttachment]) throws(CNIError) {
        log.calls.append("gc"); log.requests.append(request); log.attachments = validAttachments
        if let failure { throw failure }
    }
    func status(_ request: CNIRequest) throws(CNIError) {
        log.calls.append("status"); log.requests.append(request)
        if let failure { throw failure }
    }
}

/// The environment of a complete ADD.
func addEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = [
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "5baff64c-d028-4f47-a2c6-26c2bdd2b8a2",
        "CNI_NETNS": "/var/run/mesos/isolators/network/cni/5baff64c/ns", "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin", "PATH": "/usr/bin:/bin",
    ]
    for (k, v) in extra { env[k] = v }
    return env
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The stdout object, parsed (the test fails to parse → nil).
func stdoutJSON(_ out: CNIOutput) -> JSON? { try? JSON(parsing: out.stdout) }

let basicConfig = #"{"cniVersion":"0.4.0","name":"net1","type":"test","ipam":{"type":"host-local"}}"#
