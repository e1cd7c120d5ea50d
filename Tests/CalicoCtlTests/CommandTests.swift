import CalicoAPI
import Datastore
import Foundation
import IPAddress
import JSON
import SQLiteDatastore
import Testing
import TestSupport

private let poolYAML = """
    apiVersion: projectcalico.org/v3
    kind: IPPool
    metadata:
      name: pool1
    spec:
      cidr: 10.5.0.0/16

    """

/// The other subcommands and input forms, through the built binary.
@Suite(.enabled(if: Calicoctl.isBuilt, "needs the built calicoctl"), .enabled(if: hasSQLite3, "needs the sqlite3 tool"))
struct CommandTests {
    @Test func jsonListsAndStdinAreAccepted() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let list = #"[{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.1.0.0/16"}},{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"b"},"spec":{"cidr":"10.2.0.0/16"}}]"#
        let r1 = try ctl.run(["create", "-f", "-"], stdin: list)
        #expect(r1.stdoutText == "Successfully created 2 'IPPool' resource(s)\n", "\(r1.stderrText)")
        let kindList = """
            apiVersion: projectcalico.org/v3
            kind: ProfileList
            items:
            - metadata:
                name: p1
            - metadata:
                name: p2

            """
        let r2 = try ctl.run(["apply", "--filename=-"], stdin: kindList)
        #expect(r2.stdoutText == "Successfully applied 2 'Profile' resource(s)\n", "\(r2.stderrText)")
        #expect(try ctl.storedKeys("/calico/resources/").count == 4)

        // `get -o yaml` of a kind prints a List that applies back unchanged.
        let yaml = try ctl.run(["get", "ippools", "-o", "yaml"])
        #expect(yaml.stdoutText.hasPrefix("apiVersion: projectcalico.org/v3\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n"))
        #expect(yaml.stdoutText.contains("kind: IPPoolList\nmetadata:\n  resourceVersion: "))
        let back = try ctl.run(["apply", "-f", "-"], stdin: yaml.stdoutText)
        #expect(back.stdoutText == "Successfully applied 2 'IPPool' resource(s)\n", "\(back.stderrText)")

        let json = try ctl.run(["get", "ippool", "a", "-o", "json"])
        let parsed = try JSON(parsing: json.stdoutText)
        #expect(parsed["kind"] == "IPPool")
        #expect(parsed["spec"]?["blockSize"] == 26)
        #expect(parsed["spec"]?["nodeSelector"] == "all()")
    }

    @Test func replaceNeedsAnExistingResourceAndStaleVersionsConflict() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let path = try ctl.file("pool.yaml", poolYAML)
        let missing = try ctl.run(["replace", "-f", path])
        #expect(missing.status == 1)
        #expect(missing.stderrText == "Failed to replace 'IPPool' resource: [resource does not exist: IPPool(pool1)]\n")

        #expect(try ctl.run(["create", "-f", path]).status == 0)
        let old = try ctl.run(["get", "ippool", "pool1", "-o", "yaml"]).stdoutText
        let disabled = try ctl.file("disabled.yaml", poolYAML + "  disabled: true\n")
        let replaced = try ctl.run(["replace", "-f", disabled])
        #expect(replaced.stdoutText == "Successfully replaced 1 'IPPool' resource(s)\n", "\(replaced.stderrText)")

        // Applying what was read before the replace: its resourceVersion is stale.
        let stale = try ctl.run(["apply", "-f", "-"], stdin: old)
        #expect(stale.status == 1)
        #expect(stale.stderrText.hasPrefix("Failed to apply 'IPPool' resource: [update conflict: IPPool(pool1)"))
        let now = try JSON(parsing: try ctl.storedValue("/calico/resources/v3/projectcalico.org/ippools/pool1"))
        #expect(now["spec"]?["disabled"] == true)

        let moved = try ctl.file("moved.yaml", poolYAML.replacingOccurrences(of: "10.5.0.0/16", with: "10.6.0.0/16"))
        let r = try ctl.run(["apply", "-f", moved])
        #expect(r.status == 1)
        #expect(r.stderrText.contains("the CIDR cannot be changed"))
    }

    @Test func patchAndLabel() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        #expect(try ctl.run(["create", "-f", try ctl.file("pool.yaml", poolYAML)]).status == 0)
        let patched = try ctl.run(["patch", "ippool", "pool1", "-p", #"{"spec":{"natOutgoing":true}}"#])
        #expect(patched.stdoutText == "Successfully patched 1 'IPPool' resource\n", "\(patched.stderrText)")
        let bad = try ctl.run(["patch", "pool", "pool1", "--patch={\"spec\":{\"blockSize\":8}}"])
        #expect(bad.status == 1)
        #expect(bad.stderrText.contains("spec.blockSize: 8 is out of range"))

        let set = try ctl.run(["label", "ippools", "pool1", "zone=east"])
        #expect(set.stdoutText == "Successfully set label zone on IPPool pool1\n", "\(set.stderrText)")
        let clash = try ctl.run(["label", "ippools", "pool1", "zone=west"])
        #expect(clash.status == 1)
        #expect(clash.stderrText == "failed to update label of resource IPPool - pool1. key zone is already present. you may use --overwrite to set a new value\n")
        #expect(try ctl.run(["label", "ippools", "pool1", "zone=west", "--overwrite"]).status == 0)
        let stored = try JSON(parsing: try ctl.storedValue("/calico/resources/v3/projectcalico.org/ippools/pool1"))
        #expect(stored["metadata"]?["labels"] == ["zone": "west"])
        #expect(stored["spec"]?["natOutgoing"] == true)
        let removed = try ctl.run(["label", "ippools", "pool1", "zone-"])
        #expect(removed.stdoutText == "Successfully removed label zone from IPPool pool1\n")
        let again = try ctl.run(["label", "ippools", "pool1", "zone", "--remove"])
        #expect(again.status == 1)
        #expect(again.stderrText == "can not remove label of resource IPPool - pool1. label key zone doesn't exist\n")
    }

    @Test func namespacesAndFlagSpellings() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let text = try String(contentsOfFile: Calicoctl.fixture("seed-networkpolicy.yaml"), encoding: .utf8)
        #expect(try ctl.run(["apply", "-n", "shop", "-f", "-"], stdin: text).status == 0)
        #expect(try ctl.run(["apply", "--namespace=other", "--filename", "-"], stdin: text).status == 0)
        #expect(try ctl.run(["get", "np"]).stdoutText == "NAME\n")
        #expect(try ctl.run(["get", "np", "-n", "shop"]).stdoutText == "NAME\nallow-bookstore-cliient-to-server\n")
        #expect(try ctl.run(["get", "np", "-a"]).stdoutText == """
            NAMESPACE   NAME
            other       allow-bookstore-cliient-to-server
            shop        allow-bookstore-cliient-to-server

            """)
        let wide = try ctl.run(["get", "NetworkPolicy", "--namespace=shop", "-o", "wide"])
        #expect(wide.stdoutText == """
            NAME                                ORDER   SELECTOR
            allow-bookstore-cliient-to-server           biz_type == 'bookstore' && role == 'server'

            """)
        let mismatch = try ctl.run(["apply", "-n", "shop", "-f", "-"],
                                   stdin: text.replacingOccurrences(of: "  name: allow", with: "  namespace: other\n  name: allow"))
        #expect(mismatch.status == 1)
        #expect(mismatch.stderrText.contains("metadata.namespace: 'other' does not match the namespace given with -n/--namespace ('shop')"))
        let unknown = try ctl.run(["get", "np", "--colour"])
        #expect(unknown.status == 1)
        #expect(unknown.stderrText.hasPrefix("Invalid arguments: unknown option '--colour' for 'calicoctl get'\n"))
        let del = try ctl.run(["delete", "policy", "allow-bookstore-cliient-to-server", "--namespace", "shop"])
        #expect(del.stdoutText == "Successfully deleted 1 'NetworkPolicy' resource(s)\n")
        #expect(try ctl.storedKeys("/calico/resources/").count == 1)
    }

    @Test func configFileSelectsTheDatastore() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let other = ctl.directory.appendingPathComponent("other.db").path
        let cfg = try ctl.file("calicoctl.cfg", """
            apiVersion: projectcalico.org/v3
            kind: CalicoAPIConfig
            metadata:
            spec:
              datastoreType: sqlite
              sqlitePath: \(other)

            """)
        let r = try Command.run([TestEnvironment.product("calicoctl"), "create", "-c", cfg, "-f", "-"],
                                environment: ["PATH": "/usr/bin:/bin"], stdin: Data(poolYAML.utf8))
        #expect(r.status == 0, "\(r.stderrText)")
        #expect(FileManager.default.fileExists(atPath: other))
        let listed = try Command.run([TestEnvironment.product("calicoctl"), "--config=\(cfg)", "get", "ippools"],
                                     environment: ["PATH": "/usr/bin:/bin"])
        #expect(listed.stdoutText.contains("pool1   10.5.0.0/16"))
        let missing = try ctl.run(["get", "nodes", "-c", ctl.directory.appendingPathComponent("nope.cfg").path])
        #expect(missing.status == 1)
        #expect(missing.stderrText.contains("nope.cfg does not exist"))
    }

    @Test func versionAndUsage() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let v = try ctl.run(["version", "--client"])
        #expect(v.stdoutText == "Client Version:    v3.15.0-mesos\n")
        let usage = try ctl.run([])
        #expect(usage.status == 1)
        #expect(usage.stdoutText.hasPrefix("Usage:\n  calicoctl [options] <command> [<args>...]\n"))
        let help = try ctl.run(["get", "--help"])
        #expect(help.status == 0)
        #expect(help.stdoutText.contains("-o --output=<OUTPUT FORMAT>"))
    }
}

/// `ipam` and `node status` over state written the way the plugin and felix write it.
@Suite(.enabled(if: Calicoctl.isBuilt, "needs the built calicoctl"), .enabled(if: hasSQLite3, "needs the sqlite3 tool"))
struct IPAMAndNodeTests {
    /// A pool, a node, one block affine to it with two addresses (one used by a workload
    /// endpoint, one leaked), their handles and the affinity.
    func seed(_ ctl: Calicoctl) throws {
        let resources = """
            apiVersion: projectcalico.org/v3
            kind: IPPool
            metadata:
              name: default-pool
            spec:
              cidr: 172.30.0.0/16
              vxlanMode: Always
            ---
            apiVersion: projectcalico.org/v3
            kind: Node
            metadata:
              name: node1
            ---
            apiVersion: projectcalico.org/v3
            kind: WorkloadEndpoint
            metadata:
              name: node1-cni-c1-eth0
              namespace: default
              labels:
                biz_type: bookstore
            spec:
              orchestrator: cni
              node: node1
              containerID: c1
              endpoint: eth0
              ipNetworks:
              - 172.30.5.0/32
              profiles:
              - calico
              interfaceName: cali0123456789a
              mac: ee:ee:ee:ee:ee:ee

            """
        let r = try ctl.run(["create", "-f", "-"], stdin: resources)
        #expect(r.stdoutText == "Successfully created 3 resource(s)\n", "\(r.stderrText)")
        let store = try SQLiteDatastore(settings: SQLiteSettings(path: ctl.database))
        defer { store.close() }
        var block = AllocationBlock(cidr: IPNetwork("172.30.5.0/26")!, affinity: "host:node1")
        _ = block.assign(count: 1, handleID: "calico.c1", secondary: ["node": "node1"])
        _ = block.assign(count: 1, handleID: "calico.c2", secondary: ["node": "node1"])
        try store.put(CalicoKeys.block(cidr: "172.30.5.0/26"), block.json.compactText)
        try store.put(CalicoKeys.handle("calico.c1"), IPAMHandle(handleID: "calico.c1", block: ["172.30.5.0/26": 1]).json.compactText)
        try store.put(CalicoKeys.handle("calico.c2"), IPAMHandle(handleID: "calico.c2", block: ["172.30.5.0/26": 1]).json.compactText)
        try store.put(CalicoKeys.affinity(node: "node1", cidr: "172.30.5.0/26"), #"{"state":"confirmed","deleted":false}"#)
    }

    @Test func showCheckAndRelease() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        try seed(ctl)
        #expect(try ctl.run(["get", "nodes"]).stdoutText == "NAME\nnode1\n")
        #expect(try ctl.run(["get", "workloadendpoints"]).stdoutText == """
            WORKLOAD   NODE    NETWORKS        INTERFACE
            c1         node1   172.30.5.0/32   cali0123456789a

            """)

        let show = try ctl.run(["ipam", "show"])
        #expect(show.stdoutText == """
            +----------+---------------+-----------+------------+--------------+
            | GROUPING |     CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |
            +----------+---------------+-----------+------------+--------------+
            | IP Pool  | 172.30.0.0/16 |     65536 | 2 (0%)     | 65534 (100%) |
            +----------+---------------+-----------+------------+--------------+

            """, "\(show.stderrText)")
        let blocks = try ctl.run(["ipam", "show", "--show-blocks"])
        #expect(blocks.stdoutText.contains("| Block    | 172.30.5.0/26 |        64 | 2 (3%)     | 62 (97%)     |\n"))

        let ip = try ctl.run(["ipam", "show", "--ip=172.30.5.0"])
        #expect(ip.stdoutText == "IP 172.30.5.0 is in use\nHandle: calico.c1\nAttributes:\n  node: node1\nWorkload endpoint: default/node1-cni-c1-eth0\n")

        let check = try ctl.run(["ipam", "check"])
        #expect(check.status == 0)
        #expect(check.stdoutText.contains("\n  172.30.5.1 leaked; handle calico.c2 in block 172.30.5.0/26\n"))
        #expect(check.stdoutText.contains("Found 1 IPs that are allocated in IPAM but not actually in use."))
        #expect(check.stdoutText.hasSuffix("Check complete; found 1 problems.\n"))

        let release = try ctl.run(["ipam", "release", "--ip=172.30.5.1"])
        #expect(release.stdoutText == "Successfully released IP address 172.30.5.1\n", "\(release.stderrText)")
        #expect(try ctl.storedKeys("/calico/ipam/v2/handle/") == ["/calico/ipam/v2/handle/calico.c1"])
        let block = try AllocationBlock(jsonText: try ctl.storedValue("/calico/ipam/v2/assignment/ipv4/block/172.30.5.0-26"))
        #expect(block.usedCount == 1)
        #expect(block.attribute(ordinal: 0)?.handleID == "calico.c1")
        #expect(try ctl.run(["ipam", "show", "--ip=172.30.5.1"]).stdoutText == "IP 172.30.5.1 is not assigned\n")
        let twice = try ctl.run(["ipam", "release", "--ip", "172.30.5.1"])
        #expect(twice.status == 1)
        #expect(twice.stderrText == "IP address 172.30.5.1 is not assigned\n")
        #expect(try ctl.run(["ipam", "check"]).stdoutText.hasSuffix("Check complete; found 0 problems.\n"))
    }

    @Test func nodeStatusReadsFelixRecord() throws {
        var ctl = Calicoctl()
        defer { ctl.remove() }
        ctl.extraEnvironment = ["NODENAME": "node1"]
        let none = try ctl.run(["node", "status"])
        #expect(none.status == 1)
        #expect(none.stdoutText == "Calico process is not running.\n(calico-felix has never reported for node node1: no /calico/felix/v1/host/node1/status)\n")

        // A process named calico-felix, as felix will be.
        let felix = ctl.directory.appendingPathComponent("calico-felix")
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: felix.path)
        let p = ChildProcess()
        p.executableURL = felix
        p.arguments = ["30"]
        try p.run()
        // SIGKILL: the test runner's blocked-signal mask is inherited, so SIGTERM may not land.
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let store = try SQLiteDatastore(settings: SQLiteSettings(path: ctl.database))
        let now = ISO8601DateFormatter().string(from: Date())
        try store.put("/calico/felix/v1/host/node1/status", #"{"pid":\#(p.processIdentifier),"lastSync":"\#(now)","endpoints":3,"policies":1}"#)
        store.close()
        let running = try ctl.run(["node", "status"])
        #expect(running.status == 0, "\(running.stdoutText)\(running.stderrText)")
        #expect(running.stdoutText.hasPrefix("Calico process is running.\n\nFelix status for node node1:\n  PID:        \(p.processIdentifier)\n  Last sync:  \(now) ("))
        #expect(running.stdoutText.hasSuffix("\n  Endpoints:  3\n  Policies:   1\n"))

        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let stopped = try ctl.run(["node", "status"])
        #expect(stopped.status == 1)
        #expect(stopped.stdoutText.hasPrefix("Calico process is not running.\n"))
        #expect(stopped.stdoutText.contains("(not running)"))
    }
}
