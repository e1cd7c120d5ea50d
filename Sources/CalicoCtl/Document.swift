import JSON

/// Where a value came from in the operator's file, for error messages.
public struct SourceLocation: Sendable, Hashable {
    /// 1-based line.
    public var line: Int
    /// 1-based column (Unicode scalars).
    public var column: Int
    /// The scalar's text as written (before YAML typed it), if it was a scalar.
    public var text: String?

    public init(line: Int, column: Int, text: String? = nil) {
        self.line = line
        self.column = column
        self.text = text
    }
}

/// One resource read from a file, a directory or stdin, before validation.
public struct Document: Sendable {
    /// The file it came from (`-` for stdin).
    public var source: String
    /// 1-based position of the YAML document (or JSON value) in the file.
    public var documentIndex: Int
    /// For resources inside a list (`items:` of a `…List`, or a top-level array): the 0-based
    /// position in it.
    public var itemIndex: Int?
    /// The resource as JSON.
    public var value: JSON
    /// Field paths (`spec.ingress[0].source.selector`) to where they were written. Paths
    /// are relative to the resource (list prefixes removed).
    public var locations: [String: SourceLocation]

    public init(source: String, documentIndex: Int, itemIndex: Int? = nil, value: JSON,
                locations: [String: SourceLocation] = [:]) {
        self.source = source
        self.documentIndex = documentIndex
        self.itemIndex = itemIndex
        self.value = value
        self.locations = locations
    }

    /// "policy.yaml, document 2" or "pools.yaml, document 1, item 3".
    public var origin: String {
        let name = source == "-" ? "stdin" : source
        var s = "\(name), document \(documentIndex)"
        if let itemIndex { s += ", item \(itemIndex + 1)" }
        return s
    }

    /// The location of `path`, or of its nearest written ancestor.
    public func location(of path: String) -> SourceLocation? {
        var p = path
        while true {
            if let l = locations[p] { return l }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            p = String(p[..<cut])
        }
    }
}
