import CalicoAPI
import Datastore
import JSON
import Testing

@Suite struct ResourceClientTests {
    @Test func createGetListUpdateDelete() throws {
        let store = InMemoryDatastore()
        let client = ResourceClient(store: store)
        let created = try client.create(IPPool(name: "pool1", cidr: "10.1.0.0/16"))
        #expect(created.metadata.uid != nil && created.metadata.creationTimestamp != nil)
        #expect(created.blockSize == 26 && created.nodeSelector == "all()")
        let rv = try #require(created.metadata.resourceVersion)

        // The stored value is Calico's JSON without resourceVersion, under Calico's key.
        let kv = try #require(try store.get("/calico/resources/v3/projectcalico.org/ippools/pool1"))
        #expect(String(kv.modRevision) == rv)
        let stored = try JSON(parsing: kv.value)
        #expect(stored["metadata"]?["resourceVersion"] == nil)
        #expect(stored["spec"]?.compactText
            == #"{"blockSize":26,"cidr":"10.1.0.0/16","ipipMode":"Never","nodeSelector":"all()","vxlanMode":"Never"}"#)
        #expect(stored["kind"] == "IPPool" && stored["apiVersion"] == "projectcalico.org/v3")

        #expect(throws: CalicoAPIError.alreadyExists(kind: "IPPool", name: "pool1", namespace: nil)) {
            try client.create(IPPool(name: "pool1", cidr: "10.2.0.0/16"))
        }

        var got = try #require(try client.get(IPPool.self, name: "pool1"))
        #expect(got == created)
        got.natOutgoing = true
        let updated = try client.update(got)
        #expect(updated.metadata.uid == created.metadata.uid)
        #expect(updated.metadata.resourceVersion != rv)
        // A stale resourceVersion loses.
        #expect(throws: CalicoAPIError.conflict(kind: "IPPool", name: "pool1", namespace: nil)) { try client.update(got) }

        _ = try client.create(IPPool(name: "pool2", cidr: "10.2.0.0/16"))
        #expect(try client.list(IPPool.self).map(\.metadata.name) == ["pool1", "pool2"])
        #expect(try client.list(kind: .ipPool).count == 2)

        #expect(throws: CalicoAPIError.conflict(kind: "IPPool", name: "pool1", namespace: nil)) {
            try client.delete(IPPool.self, name: "pool1", resourceVersion: rv)
        }
        let deleted = try client.delete(IPPool.self, name: "pool1")
        #expect(deleted.natOutgoing)
        #expect(try client.get(IPPool.self, name: "pool1") == nil)
        #expect(throws: CalicoAPIError.notFound(kind: "IPPool", name: "pool1", namespace: nil)) {
            try client.delete(IPPool.self, name: "pool1")
        }
    }

    @Test func namespacedResources() throws {
        let client = ResourceClient(store: InMemoryDatastore())
        _ = try client.create(NetworkPolicy(name: "a", namespace: "default", egress: [Rule(action: .allow)]))
        _ = try client.create(NetworkPolicy(name: "b", namespace: "web"))
        let a = try #require(try client.get(NetworkPolicy.self, name: "a", namespace: "default"))
        #expect(a.types == [.egress])
        #expect(try client.get(NetworkPolicy.self, name: "a", namespace: "web") == nil)
        #expect(try client.list(NetworkPolicy.self).map(\.metadata.name) == ["a", "b"])
        #expect(try client.list(NetworkPolicy.self, namespace: "web").map(\.metadata.name) == ["b"])
        #expect(try client.get(kind: .networkPolicy, name: "b", namespace: "web")?.metadata.namespace == "web")
        try client.delete(kind: .networkPolicy, name: "b", namespace: "web")
        #expect(try client.list(NetworkPolicy.self).count == 1)
    }

    @Test func applyCreatesThenUpdates() throws {
        let client = ResourceClient(store: InMemoryDatastore())
        let p1 = try client.apply(Profile.networkDefault(name: "calico"))
        var p = Profile.networkDefault(name: "calico")
        p.labelsToApply["extra"] = "1"
        let p2 = try client.apply(p)
        #expect(p2.metadata.uid == p1.metadata.uid)
        #expect(p2.metadata.creationTimestamp == p1.metadata.creationTimestamp)
        #expect(try client.get(Profile.self, name: "calico")?.labelsToApply == ["calico": "", "extra": "1"])
    }

    @Test func upstreamValueReadsThroughClient() throws {
        let store = InMemoryDatastore()
        let text = try Fixture.text("resources/workloadendpoint.json")
        let key = ResourceKind.workloadEndpoint.key(name: "agent--1-cni-5baff64c--d028--4d1e--9c2b--6f0e1a2b3c4d-eth0")
        let rev = try store.put(key, text)
        let wep = try #require(try ResourceClient(store: store).get(
            WorkloadEndpoint.self, name: "agent--1-cni-5baff64c--d028--4d1e--9c2b--6f0e1a2b3c4d-eth0"))
        #expect(wep.metadata.resourceVersion == String(rev))
        #expect(wep.node == "agent-1")
    }

    @Test func createRejectsResourceVersionAndEmptyName() {
        let client = ResourceClient(store: InMemoryDatastore())
        var p = Profile(name: "x")
        p.metadata.resourceVersion = "5"
        #expect(throws: CalicoAPIError.invalidField(path: "metadata.resourceVersion", reason: "field must not be set for a Create request")) {
            try client.create(p)
        }
        #expect(throws: CalicoAPIError.missingField("metadata.name")) { try client.create(Profile(name: "")) }
    }

    @Test func uidsAreVersion4() {
        let u = ResourceClient.newUID()
        let chars = Array(u)
        #expect(u.count == 36 && chars[14] == "4" && "89ab".contains(chars[19]))
        #expect(ResourceClient.newUID() != u)
    }
}
