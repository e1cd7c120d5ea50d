import JSON
import Testing
@testable import CalicoCtl

/// The pieces of calicoctl that need no process: argument spellings, table layout, YAML
/// writing and reading.
@Suite struct LibraryTests {
    let options: [OptionSpec] = [.value("filename", "f"), .value("output", "o"), .flag("all-namespaces", "a"), .value("ip")]

    @Test(arguments: [
        ["-f", "x.yaml"], ["-fx.yaml"], ["-f=x.yaml"], ["--filename=x.yaml"], ["--filename", "x.yaml"],
    ])
    func filenameSpellings(_ args: [String]) throws {
        let p = try ArgumentParser(command: "apply", options: options).parse(args[...])
        #expect(p.value("filename") == "x.yaml")
        #expect(p.positionals.isEmpty)
    }

    @Test func flagsPositionalsAndStdin() throws {
        let p = try ArgumentParser(command: "get", options: options).parse(["nodes", "-ao", "yaml", "--ip=10.0.0.1", "-f", "-", "--", "-x"])
        #expect(p.positionals == ["nodes", "-x"])
        #expect(p.has("all-namespaces"))
        #expect(p.value("output") == "yaml")
        #expect(p.value("ip") == "10.0.0.1")
        #expect(p.value("filename") == "-")
    }

    @Test func argumentErrorsNameTheOption() {
        #expect(throws: UsageError.self) { try ArgumentParser(command: "get", options: options).parse(["-z"]) }
        do {
            _ = try ArgumentParser(command: "get", options: options).parse(["--output"])
            Issue.record("parsed")
        } catch {
            #expect(error.message == "option '--output' needs a value")
        }
    }

    @Test func columnTableHasThreeSpacesAndNoTrailingBlanks() {
        #expect(Table.columns(["NAME", "CIDR", "SELECTOR"], [["a", "10.0.0.0/8", "all()"], ["longer-name", "", "x"]]) == """
            NAME          CIDR         SELECTOR
            a             10.0.0.0/8   all()
            longer-name                x

            """)
        #expect(Table.columns(["NAME"], []) == "NAME\n")
    }

    @Test func boxedTableCentresHeadersAndRightAlignsNumbers() {
        #expect(Table.boxed(["A", "LONG HEADER"], [["x", "12"], ["yyyy", "3 (5%)"]]) == """
            +------+-------------+
            |  A   | LONG HEADER |
            +------+-------------+
            | x    |          12 |
            | yyyy | 3 (5%)      |
            +------+-------------+

            """)
    }

    @Test(arguments: [
        ("plain", "plain"), ("biz_type == 'bookstore'", "biz_type == 'bookstore'"), ("!has(a)", "'!has(a)'"),
        ("1234", "\"1234\""), ("true", "\"true\""), ("y", "\"y\""), ("", "\"\""), ("a: b", "'a: b'"), ("it's: x", "'it''s: x'"),
        ("2020-01-01T00:00:00Z", "\"2020-01-01T00:00:00Z\""), ("line\nbreak", "\"line\\nbreak\""), ("10.0.0.0/8", "10.0.0.0/8"),
        ("9d513b06-f8fe-48e1-864b-1d90f0e6ae80", "9d513b06-f8fe-48e1-864b-1d90f0e6ae80"), ("*", "'*'"), ("all()", "all()"),
    ])
    func yamlScalarsQuoteOnlyWhenNeeded(_ value: String, _ written: String) throws {
        #expect(YAMLWriter.quoteIfNeeded(value) == written)
        // And they read back as the same string.
        let doc = try DocumentLoader.parse(text: "apiVersion: v\nkind: K\nvalue: \(written)\n", source: "t")
        #expect(doc[0].value["value"] == .string(value))
    }

    @Test func yamlRoundTripsAResource() throws {
        let value: JSON = [
            "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": ["name": "p", "labels": ["a/b": "c"], "annotations": [:]],
            "spec": ["order": 100, "ingress": [["action": "Allow", "destination": ["ports": [80, "8000:8080"]], "nested": [[1, 2], []]]],
                     "types": ["Ingress"], "flag": false, "none": nil, "ratio": 1.5],
        ]
        let text = YAMLWriter.text(value)
        #expect(text.hasPrefix("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  annotations: {}\n  labels:\n    a/b: c\n  name: p\nspec:\n"))
        #expect(text.contains("  ingress:\n  - action: Allow\n    destination:\n      ports:\n      - 80\n      - 8000:8080\n"))
        #expect(try DocumentLoader.parse(text: text, source: "t")[0].value == value)
    }

    @Test func loaderSplitsDocumentsAndListsAndRecordsLines() throws {
        let text = """
            apiVersion: projectcalico.org/v3
            kind: ProfileList
            items:
            - metadata:
                name: a
            - kind: Profile
              metadata:
                name: b
            ---
            # comment only document is skipped
            ---
            {"apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "c"}}

            """
        let docs = try DocumentLoader.parse(text: text, source: "f.yaml")
        #expect(docs.count == 3)
        #expect(docs.map { $0.value["kind"] } == ["Profile", "Profile", "IPPool"])
        #expect(docs[0].value["apiVersion"] == "projectcalico.org/v3")
        #expect(docs[1].origin == "f.yaml, document 1, item 2")
        #expect(docs[1].location(of: "metadata.name")?.line == 8)
        #expect(docs[2].origin == "f.yaml, document 3")
        #expect(docs[2].location(of: "metadata.name")?.line == 12)
    }

    @Test func duplicateKeysAreAnError() {
        #expect(throws: DocumentLoadError.self) {
            try DocumentLoader.parse(text: "kind: A\nkind: B\n", source: "t")
        }
    }
}
