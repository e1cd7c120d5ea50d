import CalicoAPI
import IPAddress
import Policy
import Testing

/// The index keeps selector membership right as things change one at a time: the result
/// after a sequence of changes equals a fresh index built from the final state.
struct IndexTests {
    @Test func labelChangeMovesAnEndpointBetweenSelectorSets() {
        let idx = Cluster.index([Cluster.seedPolicy])
        #expect(!idx.dataplane().decide(tcp("cali-ff", ff, "cali-bs", bs, 80)).isAccepted)
        var relabelled = Cluster.fruitstoreFrontend
        relabelled.labels["biz_type"] = "bookstore"
        idx.upsert(relabelled)
        #expect(idx.dataplane().decide(tcp("cali-ff", ff, "cali-bs", bs, 80)).isAccepted)
        #expect(idx.dataplane() == Cluster.index([Cluster.seedPolicy], endpoints: Cluster.endpoints.map {
            $0.id == relabelled.id ? relabelled : $0
        }).dataplane())
    }

    @Test func deletingThePolicyRestoresTheProfile() {
        let idx = Cluster.index([Cluster.seedPolicy])
        #expect(!idx.dataplane().decide(tcp("cali-ff", ff, "cali-bs", bs, 80)).isAccepted)
        idx.removePolicy(scope: .namespaced("default"), name: "allow-bookstore-cliient-to-server")
        #expect(idx.dataplane().decide(tcp("cali-ff", ff, "cali-bs", bs, 80)).isAccepted)
        #expect(idx.dataplane() == Cluster.index().dataplane())
    }

    @Test func removedEndpointLeavesSetsAndInterfaces() {
        let idx = Cluster.index([Cluster.seedPolicy])
        idx.removeEndpoint(id: Cluster.remoteBookstore.id)
        let dp = idx.dataplane()
        #expect(!dp.addressSets.values.contains { $0.contains(net("172.29.1.5/32")) })
        #expect(!dp.decide(tcp("eth0", rb, "cali-bs", bs, 80)).isAccepted)
        idx.removeEndpoint(id: Cluster.bookstoreServer.id)
        let after = idx.dataplane()
        #expect(after.endpoints["cali-bs"] == nil)
        // The policy selects no local endpoint any more, so it is not programmed.
        #expect(after.policies.isEmpty)
        #expect(!after.decide(tcp("cali-bf", bf, "cali-bs", bs, 80)).isAccepted)
    }

    @Test func profileLabelsArriveAfterTheEndpoints() {
        // Endpoints first, profile later: the inherited `calico` label must still count.
        let idx = PolicyIndex(nodeName: Cluster.node)
        for e in Cluster.endpoints { idx.upsert(e) }
        #expect(!idx.dataplane().decide(tcp("cali-bf", bf, "cali-bs", bs, 80)).isAccepted)
        idx.upsert(Cluster.calicoProfile)
        #expect(idx.dataplane().decide(tcp("cali-bf", bf, "cali-bs", bs, 80)).isAccepted)
        #expect(idx.effectiveLabels(of: "default/bf")?["calico"] == "")
        #expect(idx.effectiveLabels(of: "default/bf")?["projectcalico.org/namespace"] == "default")
    }

    @Test func policiesRunInOrderOnTheEndpoint() {
        let idx = Cluster.index([
            networkPolicy("z", #"{"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
            networkPolicy("b", #"{"order":2,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
            globalPolicy("a", #"{"order":2,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
            networkPolicy("c", #"{"order":1,"selector":"role == 'server'","ingress":[{"action":"Allow"}]}"#),
        ])
        let ep = idx.dataplane().endpoints["cali-bs"]!
        #expect(ep.ingressPolicies == ["default/c", "a", "default/b", "default/z"])
        #expect(ep.egressPolicies.isEmpty)
    }

    @Test func logRulesAreReported() {
        let idx = Cluster.index([networkPolicy("p", #"{"selector":"role == 'server'","ingress":[{"action":"Log"},{"action":"Allow"}]}"#)])
        let d = idx.dataplane().decide(tcp("cali-bf", bf, "cali-bs", bs, 80))
        #expect(d.isAccepted)
        #expect(d.logged == ["cali-pi-default/p rule 1"])
    }

    @Test func invalidSelectorsAreWarnedAbout() {
        let idx = Cluster.index([networkPolicy("p", #"{"selector":"role == server","ingress":[{"action":"Allow"}]}"#)])
        #expect(idx.takeWarnings().contains { $0.contains("invalid selector") })
        #expect(idx.dataplane().policies.isEmpty)
    }
}
