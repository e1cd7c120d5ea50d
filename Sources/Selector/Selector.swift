/// A Calico label selector: `biz_type == 'bookstore' && role == 'server'`.
///
/// Policies, pools and profiles pick endpoints with selectors; calicoctl validates them,
/// calico-felix evaluates them. The grammar (libcalico-go's, REFERENCE.md §6), from
/// loosest to tightest binding: `||`, `&&`, `!`, then a primary — `(…)`, `all()`,
/// `global()`, `has(k)`, `k == "v"`, `k != "v"`, `k in {"a","b"}`, `k not in {…}`,
/// `k contains "s"`, `k starts with "s"`, `k ends with "s"`. An empty selector is `all()`.
///
/// Two selectors that mean the same up to parenthesisation, `&&`/`||` grouping and the
/// order and duplicates of an `in` set are equal and print the same ``description``.
public struct Selector: Sendable, Hashable, CustomStringConvertible {
    /// The parsed expression.
    public let expression: Expression

    /// The label Calico puts on every namespaced endpoint, naming its namespace.
    public static let namespaceLabel = "projectcalico.org/namespace"
    /// The prefix of the labels Calico copies from an endpoint's namespace onto it.
    public static let namespaceLabelPrefix = "pcns."
    /// Longest label key the grammar accepts.
    public static let maximumKeyLength = 512

    /// `all()`: matches everything.
    public static let all = Selector(.all)

    /// Wraps an expression, normalising it (nested `&&`/`||` flattened, `in` sets sorted).
    public init(_ expression: Expression) {
        self.expression = expression.normalized()
    }

    /// Parses selector text; whitespace-only text is `all()`.
    ///
    /// - Throws: ``SelectorParseError`` naming the 1-based column and what was expected.
    public init(parsing text: String) throws(SelectorParseError) {
        // Every IP pool's default nodeSelector, read at each plugin start: no parser needed.
        if text == "all()" || text.isEmpty {
            self.init(.all)
            return
        }
        var parser = Parser(text)
        self.init(try parser.parseSelector())
    }

    /// The selector `a && b`.
    public static func && (a: Selector, b: Selector) -> Selector {
        Selector(.and([a.expression, b.expression]))
    }

    /// The selector `a || b`.
    public static func || (a: Selector, b: Selector) -> Selector {
        Selector(.or([a.expression, b.expression]))
    }

    /// The selector `!a`.
    public static prefix func ! (a: Selector) -> Selector {
        Selector(.not(a.expression))
    }
}

extension Selector {
    /// A selector expression. Build values through ``Selector/init(_:)`` to get the
    /// canonical (normalised) form.
    public indirect enum Expression: Sendable, Hashable {
        /// `all()`
        case all
        /// `global()`: matches objects that belong to no namespace (no
        /// `projectcalico.org/namespace` label). Meaningful in `namespaceSelector`.
        case global
        /// `has(key)`
        case has(String)
        /// `key == "value"`
        case equal(String, String)
        /// `key != "value"` (true when the label is missing)
        case notEqual(String, String)
        /// `key in {"a", "b"}`
        case `in`(String, [String])
        /// `key not in {"a", "b"}` (true when the label is missing)
        case notIn(String, [String])
        /// `key contains "s"`
        case contains(String, String)
        /// `key starts with "s"`
        case startsWith(String, String)
        /// `key ends with "s"`
        case endsWith(String, String)
        /// `!e`
        case not(Expression)
        /// `a && b && …` (at least two operands once normalised)
        case and([Expression])
        /// `a || b || …` (at least two operands once normalised)
        case or([Expression])

        /// Flattens nested `&&`/`||`, collapses one-operand groups, sorts and dedups sets.
        func normalized() -> Expression {
            switch self {
            case .in(let k, let vs): return .in(k, Array(Set(vs)).sorted())
            case .notIn(let k, let vs): return .notIn(k, Array(Set(vs)).sorted())
            case .not(let e): return .not(e.normalized())
            case .and(let es):
                let flat = es.map { $0.normalized() }.flatMap { e -> [Expression] in
                    if case .and(let inner) = e { return inner }
                    return [e]
                }
                return flat.count == 1 ? flat[0] : (flat.isEmpty ? .all : .and(flat))
            case .or(let es):
                let flat = es.map { $0.normalized() }.flatMap { e -> [Expression] in
                    if case .or(let inner) = e { return inner }
                    return [e]
                }
                return flat.count == 1 ? flat[0] : (flat.isEmpty ? .all : .or(flat))
            default: return self
            }
        }
    }
}

// MARK: - Analysis

extension Selector {
    /// Every label key the selector reads, sorted. calico-felix indexes endpoints by these
    /// so a label change re-evaluates only the selectors that can notice it.
    public var referencedLabels: [String] {
        var keys = Set<String>()
        expression.collectKeys(into: &keys)
        return keys.sorted()
    }

    /// Whether the selector's result depends on which namespace an object is in: it uses
    /// `global()`, the `projectcalico.org/namespace` label, or a `pcns.` namespace label.
    ///
    /// calico-felix scopes a NetworkPolicy's rule selectors to the policy's own namespace
    /// unless the rule says otherwise; a namespace-aware selector already does so itself.
    public var isNamespaceAware: Bool {
        if expression.usesGlobal { return true }
        return referencedLabels.contains {
            $0 == Selector.namespaceLabel || $0.hasPrefix(Selector.namespaceLabelPrefix)
        }
    }

    /// Whether this is `all()` (so nothing needs evaluating).
    public var isAll: Bool { expression == .all }
}

extension Selector.Expression {
    fileprivate func collectKeys(into keys: inout Set<String>) {
        switch self {
        case .all: return
        case .global: keys.insert(Selector.namespaceLabel)
        case .has(let k), .equal(let k, _), .notEqual(let k, _), .in(let k, _), .notIn(let k, _),
            .contains(let k, _), .startsWith(let k, _), .endsWith(let k, _):
            keys.insert(k)
        case .not(let e): e.collectKeys(into: &keys)
        case .and(let es), .or(let es): for e in es { e.collectKeys(into: &keys) }
        }
    }

    fileprivate var usesGlobal: Bool {
        switch self {
        case .global: return true
        case .not(let e): return e.usesGlobal
        case .and(let es), .or(let es): return es.contains { $0.usesGlobal }
        default: return false
        }
    }
}
