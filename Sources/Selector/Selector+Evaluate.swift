extension Selector {
    /// Whether an object with `labels` is selected.
    ///
    /// A missing label makes `==`, `in`, `has`, `contains`, `starts with` and `ends with`
    /// false, and `!=`, `not in` and `!has` true (so `role != 'server'` selects endpoints
    /// with no `role` at all — a common surprise, REFERENCE.md §7).
    public func matches(_ labels: [String: String]) -> Bool {
        expression.evaluate { labels[$0] }
    }

    /// Whether an object is selected, reading labels through `label` (nil = missing).
    ///
    /// Lets callers layer labels without building a merged dictionary, e.g. an endpoint's
    /// own labels over its profiles' `labelsToApply`.
    public func matches(label: (String) -> String?) -> Bool {
        expression.evaluate(label)
    }
}

extension Selector.Expression {
    /// Evaluates against a label lookup.
    public func evaluate(_ label: (String) -> String?) -> Bool {
        switch self {
        case .all: return true
        case .global: return label(Selector.namespaceLabel) == nil
        case .has(let k): return label(k) != nil
        case .equal(let k, let v): return label(k) == v
        case .notEqual(let k, let v): return label(k) != v
        case .in(let k, let vs):
            guard let x = label(k) else { return false }
            return vs.contains(x)
        case .notIn(let k, let vs):
            guard let x = label(k) else { return true }
            return !vs.contains(x)
        case .contains(let k, let s):
            guard let x = label(k) else { return false }
            return s.isEmpty || x.contains(s)
        case .startsWith(let k, let s):
            guard let x = label(k) else { return false }
            return x.hasPrefix(s)
        case .endsWith(let k, let s):
            guard let x = label(k) else { return false }
            return x.hasSuffix(s)
        case .not(let e): return !e.evaluate(label)
        case .and(let es):
            for e in es where !e.evaluate(label) { return false }
            return true
        case .or(let es):
            for e in es where e.evaluate(label) { return true }
            return false
        }
    }
}
