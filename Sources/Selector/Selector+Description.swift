extension Selector {
    /// The canonical text: `&&`/`||` with single spaces, parentheses only where precedence
    /// needs them, values in double quotes (single quotes when the value holds a `"`),
    /// `in` sets sorted. Parsing it gives back an equal selector.
    public var description: String { expression.description }
}

extension Selector.Expression: CustomStringConvertible {
    public var description: String { render(parentPrecedence: 0) }

    /// 1 for `||`, 2 for `&&`, 3 for `!` and primaries.
    private var precedence: Int {
        switch self {
        case .or: return 1
        case .and: return 2
        default: return 3
        }
    }

    private func render(parentPrecedence: Int) -> String {
        let text: String
        switch self {
        case .all: text = "all()"
        case .global: text = "global()"
        case .has(let k): text = "has(\(k))"
        case .equal(let k, let v): text = "\(k) == \(quote(v))"
        case .notEqual(let k, let v): text = "\(k) != \(quote(v))"
        case .in(let k, let vs): text = "\(k) in {\(vs.map(quote).joined(separator: ", "))}"
        case .notIn(let k, let vs): text = "\(k) not in {\(vs.map(quote).joined(separator: ", "))}"
        case .contains(let k, let s): text = "\(k) contains \(quote(s))"
        case .startsWith(let k, let s): text = "\(k) starts with \(quote(s))"
        case .endsWith(let k, let s): text = "\(k) ends with \(quote(s))"
        case .not(let e): text = "!" + e.render(parentPrecedence: 3)
        case .and(let es): text = es.map { $0.render(parentPrecedence: 2) }.joined(separator: " && ")
        case .or(let es): text = es.map { $0.render(parentPrecedence: 1) }.joined(separator: " || ")
        }
        // `a && b` under `!` or `||` inside `&&` need parentheses; equal precedence does not
        // (the operators are associative).
        return precedence < parentPrecedence ? "(" + text + ")" : text
    }
}

/// Quotes without escapes (the grammar has none): `"v"`, or `'v'` when `v` holds a `"`.
private func quote(_ value: String) -> String {
    value.contains("\"") ? "'" + value + "'" : "\"" + value + "\""
}
