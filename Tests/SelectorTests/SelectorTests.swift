import Testing
import Selector

/// One evaluation case: the selector text, the object's labels, whether it is selected.
struct EvalCase: CustomStringConvertible, Sendable {
    var selector: String
    var labels: [String: String]
    var expected: Bool
    var description: String { "\(selector) on \(labels) → \(expected)" }
    init(_ selector: String, _ labels: [String: String], _ expected: Bool) {
        self.selector = selector
        self.labels = labels
        self.expected = expected
    }
}

let bookstoreServer = ["biz_type": "bookstore", "role": "server"]
let bookstoreFrontend = ["biz_type": "bookstore"]
let fruitstoreFrontend = ["biz_type": "fruitstore"]

let evalCases: [EvalCase] = [
    // Empty selector and the functions.
    EvalCase("", [:], true),
    EvalCase("   ", bookstoreServer, true),
    EvalCase("all()", [:], true),
    EvalCase("all( )", bookstoreServer, true),
    EvalCase("global()", [:], true),
    EvalCase("global()", ["projectcalico.org/namespace": "default"], false),
    EvalCase("has(role)", bookstoreServer, true),
    EvalCase("has(role)", bookstoreFrontend, false),
    EvalCase("!has(role)", bookstoreFrontend, true),
    EvalCase("!has(role)", bookstoreServer, false),
    EvalCase("has( role )", bookstoreServer, true),
    // ==
    EvalCase("role == 'server'", bookstoreServer, true),
    EvalCase("role == \"server\"", bookstoreServer, true),
    EvalCase("role == 'serve'", bookstoreServer, false),
    EvalCase("role == 'server'", bookstoreFrontend, false),
    EvalCase("role == ''", ["role": ""], true),
    EvalCase("role == ''", [:], false),
    // !=: true when missing
    EvalCase("role != 'server'", bookstoreServer, false),
    EvalCase("role != 'server'", ["role": "client"], true),
    EvalCase("role != 'server'", bookstoreFrontend, true),
    // in / not in
    EvalCase("biz_type in {'bookstore', 'fruitstore'}", fruitstoreFrontend, true),
    EvalCase("biz_type in {\"bookstore\",\"x\"}", bookstoreFrontend, true),
    EvalCase("biz_type in {'x'}", bookstoreFrontend, false),
    EvalCase("biz_type in {}", bookstoreFrontend, false),
    EvalCase("role in {'server'}", bookstoreFrontend, false),
    EvalCase("biz_type not in {'bookstore'}", bookstoreFrontend, false),
    EvalCase("biz_type not in {'bookstore'}", fruitstoreFrontend, true),
    EvalCase("role not in {'server'}", bookstoreFrontend, true),
    EvalCase("role not in {}", [:], true),
    // contains / starts with / ends with: false when missing
    EvalCase("biz_type contains 'store'", fruitstoreFrontend, true),
    EvalCase("biz_type contains 'book'", fruitstoreFrontend, false),
    EvalCase("role contains 'e'", bookstoreFrontend, false),
    EvalCase("role contains ''", bookstoreFrontend, false),
    EvalCase("role contains ''", ["role": ""], true),
    EvalCase("biz_type starts with 'book'", bookstoreFrontend, true),
    EvalCase("biz_type starts with 'store'", bookstoreFrontend, false),
    EvalCase("role starts with ''", bookstoreFrontend, false),
    EvalCase("biz_type ends with 'store'", bookstoreFrontend, true),
    EvalCase("biz_type ends with 'book'", bookstoreFrontend, false),
    EvalCase("role ends with 'r'", bookstoreFrontend, false),
    // Keys with every allowed character class.
    EvalCase("projectcalico.org/namespace == 'default'", ["projectcalico.org/namespace": "default"], true),
    EvalCase("a-b_c.D/9 == 'x'", ["a-b_c.D/9": "x"], true),
    // Keywords are still usable as label names where no function call follows.
    EvalCase("has == 'x'", ["has": "x"], true),
    EvalCase("all != 'x'", [:], true),
    // The seed's policy.
    EvalCase("biz_type == 'bookstore' && role == 'server'", bookstoreServer, true),
    EvalCase("biz_type == 'bookstore' && role == 'server'", bookstoreFrontend, false),
    EvalCase("biz_type == 'bookstore' && role == 'server'", fruitstoreFrontend, false),
    // Precedence: || < && < !
    EvalCase("has(a) || has(b) && has(c)", ["a": ""], true),  // a || (b && c)
    EvalCase("(has(a) || has(b)) && has(c)", ["a": ""], false),
    EvalCase("has(b) && has(c) || has(a)", ["a": ""], true),
    EvalCase("!has(a) && has(b)", ["b": ""], true),  // (!a) && b
    EvalCase("!(has(a) && has(b))", ["b": ""], true),
    EvalCase("!(has(a) || has(b))", ["b": ""], false),
    EvalCase("!has(a) || has(b)", ["a": ""], false),
    EvalCase("!!has(a)", ["a": ""], true),
    EvalCase("!a == 'x'", ["a": "x"], false),
    EvalCase("((((has(a)))))", ["a": "1"], true),
    EvalCase("has(a)&&has(b)||has(c)", ["c": ""], true),
    EvalCase("role=='server'&&biz_type!='x'", bookstoreServer, true),
    // Whitespace of any kind (YAML folded strings keep newlines).
    EvalCase("role == 'server'\n  && biz_type == 'bookstore'", bookstoreServer, true),
    EvalCase("\trole\t==\t'server'", bookstoreServer, true),
    // A value with the other quote inside.
    EvalCase("msg == 'say \"hi\"'", ["msg": "say \"hi\""], true),
    EvalCase("msg == \"it's\"", ["msg": "it's"], true),
]

@Suite struct SelectorEvaluationTests {
    @Test(arguments: evalCases)
    func evaluates(_ c: EvalCase) throws {
        let s = try Selector(parsing: c.selector)
        #expect(s.matches(c.labels) == c.expected)
        // The lookup form agrees, and the canonical text means the same thing.
        #expect(s.matches(label: { c.labels[$0] }) == c.expected)
        let reparsed = try Selector(parsing: s.description)
        #expect(reparsed == s, "canonical form \(s.description) did not re-parse equal")
        #expect(reparsed.matches(c.labels) == c.expected)
    }

    @Test func layeredLookupPrefersEndpointLabels() throws {
        let s = try Selector(parsing: "has(calico) && role == 'server'")
        let endpoint = ["role": "server"]
        let profile = ["calico": "", "role": "client"]
        #expect(s.matches(label: { endpoint[$0] ?? profile[$0] }))
    }

    @Test func combinators() throws {
        let policy = try Selector(parsing: "role == 'server'")
        let ns = try Selector(parsing: "projectcalico.org/namespace == 'default'")
        let both = policy && ns
        #expect(both.description == "role == \"server\" && projectcalico.org/namespace == \"default\"")
        #expect(both.matches(["role": "server", "projectcalico.org/namespace": "default"]))
        #expect(!both.matches(["role": "server", "projectcalico.org/namespace": "other"]))
        #expect((!policy).matches([:]))
        #expect((policy || ns).matches(["projectcalico.org/namespace": "default"]))
    }
}

@Suite struct SelectorCanonicalFormTests {
    @Test(arguments: [
        ("", "all()"),
        ("biz_type == 'bookstore' && role == 'server'", "biz_type == \"bookstore\" && role == \"server\""),
        ("(a == 'x' && (b == 'y' && c == 'z'))", "a == \"x\" && b == \"y\" && c == \"z\""),
        ("(a == 'x' || b == 'y') && c == 'z'", "(a == \"x\" || b == \"y\") && c == \"z\""),
        ("a == 'x' || (b == 'y' && c == 'z')", "a == \"x\" || b == \"y\" && c == \"z\""),
        ("!(has(a) && has(b))", "!(has(a) && has(b))"),
        ("!(has(a))", "!has(a)"),
        ("a in {'z','y', 'z'}", "a in {\"y\", \"z\"}"),
        ("a not in {}", "a not in {}"),
        ("a starts with 'p'  ||  a ends with 's' || a contains 'q'", "a starts with \"p\" || a ends with \"s\" || a contains \"q\""),
        ("m == 'say \"hi\"'", "m == 'say \"hi\"'"),
        ("global( ) && has( x )", "global() && has(x)"),
    ])
    func prints(_ input: String, _ canonical: String) throws {
        #expect(try Selector(parsing: input).description == canonical)
    }

    @Test func equalMeaningsAreEqual() throws {
        #expect(try Selector(parsing: "a in {'x','y'}") == Selector(parsing: "(a in {\"y\", 'x', 'x'})"))
        #expect(try Selector(parsing: "") == Selector.all)
        #expect(try Selector(parsing: "has(a) && has(b)") != Selector(parsing: "has(b) && has(a)"))
    }

    @Test func referencedLabelsAndNamespaceAwareness() throws {
        let s = try Selector(parsing: "biz_type == 'bookstore' && !has(role) || zone in {'a'}")
        #expect(s.referencedLabels == ["biz_type", "role", "zone"])
        #expect(!s.isNamespaceAware)
        #expect(try Selector(parsing: "projectcalico.org/namespace == 'x'").isNamespaceAware)
        #expect(try Selector(parsing: "pcns.team == 'x'").isNamespaceAware)
        #expect(try Selector(parsing: "!global()").isNamespaceAware)
        #expect(try Selector(parsing: "all()").referencedLabels.isEmpty)
        #expect(try Selector(parsing: "").isAll)
    }
}

/// A parse error case: the text, the column reported, words the message must contain.
struct ErrorCase: CustomStringConvertible, Sendable {
    var selector: String
    var column: Int
    var message: String
    var description: String { selector }
    init(_ selector: String, _ column: Int, _ message: String) {
        self.selector = selector
        self.column = column
        self.message = message
    }
}

let errorCases: [ErrorCase] = [
    ErrorCase("role == web", 9, "expected a quoted string at column 9, found 'web' (label values must be quoted: role == 'web')"),
    ErrorCase("role != web", 9, "expected a quoted string at column 9"),
    ErrorCase("role contains web", 15, "expected a quoted string at column 15"),
    ErrorCase("role starts with x", 18, "expected a quoted string at column 18"),
    ErrorCase("role ==", 8, "expected a quoted string at column 8, found the end of the selector"),
    ErrorCase("role = 'web'", 6, "expected '==' at column 6, found a single '=' (compare with '==')"),
    ErrorCase("role == \"web", 13, "expected a closing \" for the string that starts at column 9 at column 13"),
    ErrorCase("role == 'web' & a == 'b'", 15, "expected '&&' at column 15"),
    ErrorCase("role == 'web' | a == 'b'", 15, "expected '||' at column 15"),
    ErrorCase("role == 'web' and a == 'b'", 15, "expected '&&', '||' or the end of the selector at column 15, found 'and' (write '&&' for \"and\")"),
    ErrorCase("role == 'web')", 14, "this ')' has no matching '('"),
    ErrorCase("(role == 'web'", 15, "expected ')' to close the '(' at column 1 at column 15, found the end of the selector"),
    ErrorCase("&& a == 'b'", 1, "expected a label name, '(', '!', 'has(…)', 'all()' or 'global()' at column 1, found '&&'"),
    ErrorCase("a == 'b' &&", 12, "found the end of the selector"),
    ErrorCase("!", 2, "expected a label name"),
    ErrorCase("role", 5, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after the label 'role' at column 5, found the end of the selector (to test that the label exists, write has(role))"),
    ErrorCase("role is 'x'", 6, "after the label 'role' at column 6, found 'is'"),
    ErrorCase("role not 'x'", 10, "expected 'in' after 'not' at column 10"),
    ErrorCase("role starts 'x'", 13, "expected 'with' after 'starts' at column 13"),
    ErrorCase("role in 'x'", 9, "expected '{' to start the set of values at column 9"),
    ErrorCase("role in {'a' 'b'}", 14, "expected ',' or '}' at column 14"),
    ErrorCase("role in {a}", 10, "set members must be quoted: 'a'"),
    ErrorCase("role in {'a',}", 14, "expected a quoted string at column 14, found '}'"),
    ErrorCase("has('role')", 5, "the label name in has() is not quoted: has(role)"),
    ErrorCase("has(role", 9, "expected ')' to close 'has(' at column 9"),
    ErrorCase("all(x)", 5, "expected ')' after 'all(' at column 5"),
    ErrorCase("any()", 1, "'any(' is not a function"),
    ErrorCase("'role' == 'x'", 1, "label names are not quoted: role"),
    ErrorCase("role == \u{2018}x\u{2019}", 9, "that is a typographic quote"),
    ErrorCase("role == 'x' # comment", 13, "found '#'"),
    ErrorCase(String(repeating: "k", count: 513) + " == 'x'", 1, "a label name of at most 512 characters"),
]

@Suite struct SelectorParseErrorTests {
    @Test(arguments: errorCases)
    func reportsColumnAndExpectation(_ c: ErrorCase) {
        do {
            let s = try Selector(parsing: c.selector)
            Issue.record("parsed as \(s)")
        } catch {
            #expect(error.column == c.column)
            #expect(error.description.contains(c.message), "got: \(error.description)")
            #expect(error.selector == c.selector)
        }
    }

    @Test func keyOfMaximumLengthParses() throws {
        let key = String(repeating: "k", count: 512)
        #expect(try Selector(parsing: "\(key) == 'x'").matches([key: "x"]))
    }

    @Test func pointerMarksTheColumn() {
        do {
            _ = try Selector(parsing: "role == web")
            Issue.record("parsed")
        } catch {
            #expect(error.pointer == "role == web\n        ^")
        }
    }
}
