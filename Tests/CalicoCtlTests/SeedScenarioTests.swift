import CalicoCtl
import Foundation
import JSON
import Testing
import TestSupport

/// The seed's story through the built calicoctl: its NetworkPolicy, its new IPPool and
/// Profile, and the mistakes operators make with them.
@Suite(.enabled(if: Calicoctl.isBuilt, "needs the built calicoctl"), .enabled(if: hasSQLite3, "needs the sqlite3 tool"))
struct SeedScenarioTests {
    let policyKey = "/calico/resources/v3/projectcalico.org/networkpolicies/default/allow-bookstore-cliient-to-server"

    @Test func seedPolicyAppliesReadsBackRefusesSecondCreateAndDeletes() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let file = Calicoctl.fixture("seed-networkpolicy.yaml")

        let apply = try ctl.run(["apply", "-f", file])
        #expect(apply.status == 0, "\(apply.stderrText)")
        #expect(apply.stdoutText == "Successfully applied 1 'NetworkPolicy' resource(s)\n")
        #expect(try ctl.storedKeys("/calico/resources/") == [policyKey])

        // What upstream tools would read: Calico's JSON at the upstream key.
        let stored = try JSON(parsing: try ctl.storedValue(policyKey))
        #expect(stored["kind"] == "NetworkPolicy")
        #expect(stored["spec"]?["selector"] == "biz_type == 'bookstore' && role == 'server'")
        #expect(stored["metadata"]?["resourceVersion"] == nil, "resourceVersion is the revision, not stored")

        // get -o yaml reads back equal to the file (plus what the store adds).
        let get = try ctl.run(["get", "networkpolicy", "allow-bookstore-cliient-to-server", "-o", "yaml"])
        #expect(get.status == 0, "\(get.stderrText)")
        let original = try DocumentLoader.parse(file: file)[0].value
        let readBack = try DocumentLoader.parse(text: get.stdoutText, source: "get")[0].value
        #expect(readBack["apiVersion"] == original["apiVersion"])
        #expect(readBack["kind"] == original["kind"])
        #expect(readBack["spec"] == original["spec"])
        #expect(readBack["metadata"]?["name"] == original["metadata"]?["name"])
        #expect(readBack["metadata"]?["namespace"] == "default")
        #expect(readBack["metadata"]?["resourceVersion"]?.stringValue?.isEmpty == false)
        #expect(readBack["metadata"]?["uid"]?.stringValue?.count == 36)
        #expect(get.stdoutText.hasPrefix("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n"))

        // A second create is refused in upstream's words, and changes nothing.
        let again = try ctl.run(["create", "-f", file])
        #expect(again.status == 1)
        #expect(again.stdoutText == "")
        #expect(again.stderrText == "Failed to create 'NetworkPolicy' resource: [resource already exists: NetworkPolicy(default/allow-bookstore-cliient-to-server)]\n")
        #expect(try ctl.storedValue(policyKey) == stored.compactText)

        let list = try ctl.run(["get", "networkpolicies"])
        #expect(list.stdoutText == "NAME\nallow-bookstore-cliient-to-server\n")
        let all = try ctl.run(["get", "policy", "--all-namespaces"])
        #expect(all.stdoutText == "NAMESPACE   NAME\ndefault     allow-bookstore-cliient-to-server\n")

        let delete = try ctl.run(["delete", "-f", file])
        #expect(delete.status == 0, "\(delete.stderrText)")
        #expect(delete.stdoutText == "Successfully deleted 1 'NetworkPolicy' resource(s)\n")
        #expect(try ctl.storedKeys("/calico/resources/").isEmpty)

        let gone = try ctl.run(["delete", "networkpolicy", "allow-bookstore-cliient-to-server"])
        #expect(gone.status == 1)
        #expect(gone.stderrText == "Failed to delete 'NetworkPolicy' resource: [resource does not exist: NetworkPolicy(default/allow-bookstore-cliient-to-server)]\n")
        let skipped = try ctl.run(["delete", "--skip-not-exists", "-f", file])
        #expect(skipped.status == 0)
    }

    @Test func seedPoolAndProfileFromOneMultiDocumentFile() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let create = try ctl.run(["create", "-f", Calicoctl.fixture("seed-ippool-profile.yaml")])
        #expect(create.status == 0, "\(create.stderrText)")
        #expect(create.stdoutText == "Successfully created 2 resource(s)\n")
        #expect(try ctl.storedKeys("/calico/resources/") == [
            "/calico/resources/v3/projectcalico.org/ippools/seed-pool",
            "/calico/resources/v3/projectcalico.org/profiles/seed-profile",
        ])

        let pools = try ctl.run(["get", "ippools"])
        #expect(pools.stdoutText == """
            NAME        CIDR            SELECTOR
            seed-pool   172.30.0.0/16   all()

            """)
        let wide = try ctl.run(["get", "ippool", "--output=wide"])
        #expect(wide.stdoutText == """
            NAME        CIDR            NAT    IPIPMODE   VXLANMODE   DISABLED   SELECTOR
            seed-pool   172.30.0.0/16   true   Never      Always      false      all()

            """)
        let profiles = try ctl.run(["get", "profiles"])
        #expect(profiles.stdoutText == "NAME\nseed-profile\n")

        // The profile as the plugin and felix will read it.
        let profile = try JSON(parsing: try ctl.storedValue("/calico/resources/v3/projectcalico.org/profiles/seed-profile"))
        #expect(profile["spec"]?["labelsToApply"] == ["calico": ""])
        #expect(profile["spec"]?["ingress"]?[0]?["action"] == "Allow")
        #expect(profile["spec"]?["egress"]?[0]?["action"] == "Allow")

        let again = try ctl.run(["create", "--skip-exists", "-f", Calicoctl.fixture("seed-ippool-profile.yaml")])
        #expect(again.status == 0, "\(again.stderrText)")
        #expect(again.stdoutText == "Successfully created 2 resource(s)\n")
    }

    @Test func unquotedSelectorIsRefusedAndNothingStored() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let file = Calicoctl.fixture("seed-bad-selector.yaml")
        let r = try ctl.run(["apply", "-f", file])
        #expect(r.status == 1)
        #expect(r.stdoutText == "")
        #expect(r.stderrText == """
            Failed to apply resources: 1 problem found; nothing was stored:
              \(file), document 1 (line 7): spec.selector: invalid selector: expected a quoted string at column 13, found 'bookstore' (label values must be quoted: biz_type == 'bookstore')
                  biz_type == bookstore && role == 'server'
                              ^

            """)
        #expect(try ctl.storedKeys().isEmpty)
    }

    @Test func portsWithoutProtocolAreRefusedAndNothingStored() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let file = Calicoctl.fixture("seed-ports-without-protocol.yaml")
        let r = try ctl.run(["create", "-f", file])
        #expect(r.status == 1)
        #expect(r.stderrText.contains("\(file), document 1 (line 13): spec.ingress[0].destination.ports: ports can only be matched with protocol TCP, UDP or SCTP, but the rule has no protocol"))
        #expect(r.stderrText.contains("nothing was stored"))
        #expect(try ctl.storedKeys().isEmpty)
    }
}
