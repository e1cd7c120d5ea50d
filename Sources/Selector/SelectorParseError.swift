/// Why selector text did not parse, and where.
///
/// The description reads as a sentence for the operator, e.g. for `role == web`:
/// `expected a quoted string at column 9, found 'web' (label values must be quoted: role == 'web')`.
public struct SelectorParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The selector text that failed.
    public var selector: String
    /// 1-based column (in Unicode scalars) of the offending token.
    public var column: Int
    /// What the grammar allows here, as words: "a quoted string".
    public var expected: String
    /// What was there instead: "'web'", or "the end of the selector".
    public var found: String
    /// Advice for a likely mistake, if one is recognised.
    public var hint: String?

    public init(selector: String, column: Int, expected: String, found: String, hint: String? = nil) {
        self.selector = selector
        self.column = column
        self.expected = expected
        self.found = found
        self.hint = hint
    }

    public var description: String {
        var s = "expected \(expected) at column \(column), found \(found)"
        if let hint { s += " (\(hint))" }
        return s
    }

    /// The selector with a caret under the offending column, for multi-line error output:
    /// ```
    /// role == web
    ///         ^
    /// ```
    public var pointer: String {
        let line = String(String.UnicodeScalarView(selector.unicodeScalars.map { $0 == "\n" || $0 == "\t" ? " " : $0 }))
        return line + "\n" + String(repeating: " ", count: max(0, column - 1)) + "^"
    }
}
