import Datastore
import Datastores
import EtcdDatastore
import Foundation
import JSON
import SQLiteDatastore
import Testing
import TestSupport

private func cni(_ text: String) throws -> DatastoreSettings {
    try DatastoreSettings(cniConfig: JSON(parsing: text))
}

/// The key a settings error names, for asserting on it.
private func failingKey(_ body: () throws -> DatastoreSettings) -> String? {
    do {
        _ = try body()
        return nil
    } catch let DatastoreSettingsError.invalidValue(key, _) {
        return key
    } catch {
        return "unexpected \(error)"
    }
}

private func writeTemporary(_ text: String, name: String = "calicoctl.cfg") throws -> String {
    let path = TestEnvironment.temporaryDirectory("settings").appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct CNIConfigSettingsTests {
    @Test func dcosDelegateWithOnlyEndpointsIsEtcd() throws {
        let settings = try cni(#"{"cniVersion":"0.1.0","type":"calico","mtu":1450,"etcd_endpoints":"http://master.dcos.thisdcos.directory:2379","ipam":{"type":"calico-ipam"}}"#)
        #expect(settings == .etcdv3(EtcdSettings(endpoints: ["http://master.dcos.thisdcos.directory:2379"])))
    }

    @Test func nothingConfiguredIsTheDefaultSQLiteFile() throws {
        #expect(try cni(#"{"name":"calico","type":"calico"}"#) == .sqlite(SQLiteSettings(path: "/var/lib/calico/calico.db", timeout: 5)))
        #expect(try cni(#"{"etcd_endpoints":"","datastore_type":""}"#) == .sqlite(SQLiteSettings()))
    }

    @Test func sqliteWithPathAndTimeout() throws {
        let settings = try cni(#"{"datastore_type":"sqlite","sqlite_path":"/srv/calico/store.db","datastore_timeout":2.5,"etcd_endpoints":"http://ignored:2379"}"#)
        #expect(settings == .sqlite(SQLiteSettings(path: "/srv/calico/store.db", timeout: 2.5)))
    }

    @Test func etcdWithTLSAndSeveralEndpoints() throws {
        let settings = try cni("""
            {"datastore_type":"etcdv3","etcd_endpoints":"https://10.0.0.1:2379, https://10.0.0.2:2379/,",
             "etcd_ca_cert_file":"/etc/calico/ca.pem","etcd_cert_file":"/etc/calico/cert.pem","etcd_key_file":"/etc/calico/key.pem",
             "datastore_timeout":10}
            """)
        #expect(settings == .etcdv3(EtcdSettings(endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], caCertFile: "/etc/calico/ca.pem",
                                                  certFile: "/etc/calico/cert.pem", keyFile: "/etc/calico/key.pem", timeout: 10)))
        #expect(try cni(#"{"etcd_endpoints":["http://a:2379","http://b:2379"]}"#) == .etcdv3(EtcdSettings(endpoints: ["http://a:2379", "http://b:2379"])))
    }

    @Test func badValuesNameTheirKey() {
        #expect(failingKey { try cni(#"{"datastore_type":"kubernetes"}"#) } == "datastore_type")
        #expect(failingKey { try cni(#"{"datastore_type":"etcdv3"}"#) } == "etcd_endpoints")
        #expect(failingKey { try cni(#"{"etcd_endpoints":"127.0.0.1:2379"}"#) } == "etcd_endpoints")
        #expect(failingKey { try cni(#"{"etcd_endpoints":"http://:2379"}"#) } == "etcd_endpoints")
        #expect(failingKey { try cni(#"{"etcd_endpoints":" , "}"#) } == "etcd_endpoints")
        #expect(failingKey { try cni(#"{"etcd_endpoints":[1]}"#) } == "etcd_endpoints")
        #expect(failingKey { try cni(#"{"sqlite_path":"calico.db"}"#) } == "sqlite_path")
        #expect(failingKey { try cni(#"{"sqlite_path":7}"#) } == "sqlite_path")
        #expect(failingKey { try cni(#"{"datastore_timeout":0}"#) } == "datastore_timeout")
        #expect(failingKey { try cni(#"{"datastore_timeout":"5"}"#) } == "datastore_timeout")
        #expect(failingKey { try cni(#"{"etcd_endpoints":"http://a:2379","etcd_cert_file":"/c.pem"}"#) } == "etcd_key_file")
        #expect(failingKey { try cni(#"{"etcd_endpoints":"http://a:2379","etcd_key_file":"/k.pem"}"#) } == "etcd_cert_file")
        #expect(failingKey { try cni(#"{"etcd_endpoints":"http://a:2379","etcd_ca_cert_file":"ca.pem"}"#) } == "etcd_ca_cert_file")
    }

    @Test func errorTextNamesKeyAndValue() {
        #expect(throws: DatastoreSettingsError.invalidValue(key: "datastore_type", reason: "\"kubernetes\" is not a supported datastore type (use \"sqlite\" or \"etcdv3\")")) {
            try cni(#"{"datastore_type":"kubernetes"}"#)
        }
        let e = DatastoreSettingsError.invalidValue(key: "etcd_endpoints", reason: "no endpoint given")
        #expect(e.description == "invalid datastore setting etcd_endpoints: no endpoint given")
    }
}

@Suite struct EnvironmentAndFileSettingsTests {
    let missingFile = "/nonexistent-\(UUID().uuidString)/calicoctl.cfg"

    @Test func environmentEndpointsMeanEtcd() throws {
        let env = ["ETCD_ENDPOINTS": "http://127.0.0.1:2379", "ETCD_CA_CERT_FILE": "/ca.pem", "PATH": "/bin"]
        #expect(try DatastoreSettings(environment: env, configFile: missingFile)
            == .etcdv3(EtcdSettings(endpoints: ["http://127.0.0.1:2379"], caCertFile: "/ca.pem")))
    }

    @Test func environmentSQLite() throws {
        let env = ["DATASTORE_TYPE": "sqlite", "SQLITE_PATH": "/tmp/x/calico.db"]
        #expect(try DatastoreSettings(environment: env, configFile: missingFile) == .sqlite(SQLiteSettings(path: "/tmp/x/calico.db")))
    }

    @Test func nothingAnywhereIsTheDefaultSQLiteFile() throws {
        #expect(try DatastoreSettings(environment: ["HOME": "/root", "ETCD_ENDPOINTS": ""], configFile: missingFile) == .sqlite(SQLiteSettings()))
    }

    @Test func environmentErrorsNameTheVariable() {
        #expect(failingKey { try DatastoreSettings(environment: ["ETCD_ENDPOINTS": "etcd:2379"], configFile: missingFile) } == "ETCD_ENDPOINTS")
        #expect(failingKey { try DatastoreSettings(environment: ["DATASTORE_TYPE": "kdd"], configFile: missingFile) } == "DATASTORE_TYPE")
    }

    @Test func upstreamYAMLConfigFile() throws {
        let path = try writeTemporary("""
            # Written by hand, as upstream documents it.
            apiVersion: projectcalico.org/v3
            kind: CalicoAPIConfig
            metadata:
            spec:
              datastoreType: "etcdv3"
              etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379   # two members
              etcdKeyFile: '/etc/calico/key.pem'
              etcdCertFile: /etc/calico/cert.pem
              etcdCACertFile: "/etc/calico/ca.pem"
              kubeconfig: ~
            """)
        #expect(try DatastoreSettings(environment: [:], configFile: path)
            == .etcdv3(EtcdSettings(endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"], caCertFile: "/etc/calico/ca.pem",
                                    certFile: "/etc/calico/cert.pem", keyFile: "/etc/calico/key.pem")))
    }

    @Test func sqliteConfigFileWithCRLFAndDocumentMarker() throws {
        let path = try writeTemporary("---\r\napiVersion: projectcalico.org/v3\r\nkind: CalicoAPIConfig\r\nspec:\r\n  datastoreType: sqlite\r\n  sqlitePath: /data/calico.db\r\n")
        #expect(try DatastoreSettings(environment: [:], configFile: path) == .sqlite(SQLiteSettings(path: "/data/calico.db")))
    }

    @Test func jsonConfigFile() throws {
        let path = try writeTemporary(#"{"apiVersion":"projectcalico.org/v3","kind":"CalicoAPIConfig","spec":{"etcdEndpoints":"http://e:2379"}}"#)
        #expect(try DatastoreSettings(environment: [:], configFile: path) == .etcdv3(EtcdSettings(endpoints: ["http://e:2379"])))
    }

    /// Upstream calicoctl reads the file when it exists and the environment only otherwise.
    @Test func theFileWinsOverTheEnvironment() throws {
        let path = try writeTemporary("kind: CalicoAPIConfig\nspec:\n  etcdEndpoints: http://from-file:2379\n")
        #expect(try DatastoreSettings(environment: ["SQLITE_PATH": "/env.db"], configFile: path)
            == .etcdv3(EtcdSettings(endpoints: ["http://from-file:2379"])))
    }

    @Test func badFilesAreTypedErrors() throws {
        #expect(throws: DatastoreSettingsError.malformedFile(path: "f", line: 3, reason: "lists are not supported here")) {
            try DatastoreSettings(configFileText: "kind: CalicoAPIConfig\nspec:\n  - etcdEndpoints\n", path: "f")
        }
        #expect(throws: DatastoreSettingsError.malformedFile(path: "f", line: 2, reason: "unterminated double-quoted string")) {
            try DatastoreSettings(configFileText: "spec:\n  etcdEndpoints: \"http://a:2379\n", path: "f")
        }
        #expect(throws: DatastoreSettingsError.malformedFile(path: "f", line: 1, reason: "indented \"etcdEndpoints\" is not under a section")) {
            try DatastoreSettings(configFileText: "  etcdEndpoints: http://a:2379\n", path: "f")
        }
        #expect(failingKey { try DatastoreSettings(configFileText: "kind: IPPool\nspec:\n  cidr: 10.0.0.0/8\n") } == "kind")
        #expect(failingKey { try DatastoreSettings(configFileText: "spec:\n  etcdEndpoints: etcd:2379\n") } == "spec.etcdEndpoints")
        #expect(failingKey { try DatastoreSettings(configFileText: "spec:\n  datastoreType: kubernetes\n") } == "spec.datastoreType")
        let directory = TestEnvironment.temporaryDirectory("settings-dir").path
        #expect {
            try DatastoreSettings(environment: [:], configFile: directory)
        } throws: { error in
            if case DatastoreSettingsError.unreadableFile(let p, _) = error { return p == directory }
            return false
        }
    }
}

@Suite struct NodeNameTests {
    @Test func configuredNameWins() throws {
        let file = try writeTemporary("from-file\n", name: "nodename")
        #expect(NodeName.resolve(configured: " agent-1 ", nodenameFile: file, hostname: { "host" }) == "agent-1")
    }

    @Test func fileContentTrimmedIsNext() throws {
        let file = try writeTemporary("  node-7.example.com\n", name: "nodename")
        #expect(NodeName.resolve(configured: nil, nodenameFile: file, hostname: { "host" }) == "node-7.example.com")
        #expect(NodeName.resolve(configured: "", nodenameFile: file, hostname: { "host" }) == "node-7.example.com")
    }

    @Test func hostnameLowercasedIsLast() throws {
        let empty = try writeTemporary("\n", name: "nodename")
        #expect(NodeName.resolve(configured: nil, nodenameFile: empty, hostname: { "Agent-3.Mesos" }) == "agent-3.mesos")
        #expect(NodeName.resolve(configured: nil, nodenameFile: "/nonexistent/nodename", hostname: { "H" }) == "h")
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        #expect(NodeName.resolve(configured: nil, nodenameFile: "/nonexistent/nodename") == String(cString: buffer).lowercased())
    }
}

@Suite struct OpenDatastoreTests {
    @Test func sqliteSettingsOpenAWorkingStore() throws {
        let path = TestEnvironment.temporaryDirectory("open").appendingPathComponent("sub/calico.db").path
        let store = try openDatastore(.sqlite(SQLiteSettings(path: path)))
        #expect(store is SQLiteDatastore)
        try store.put("/calico/x", "1")
        #expect(try store.get("/calico/x")?.value == "1")
        #expect(FileManager.default.fileExists(atPath: path))
        store.close()
    }

    @Test func etcdSettingsGiveAnEtcdClient() throws {
        let store = try openDatastore(.etcdv3(EtcdSettings(endpoints: ["http://127.0.0.1:2379"])))
        #expect(store is EtcdDatastore)
        store.close()
    }
}
