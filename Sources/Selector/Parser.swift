/// A token of selector text.
struct Token: Equatable {
    enum Kind: Equatable {
        case word(String)  // a label key or keyword, `[a-zA-Z0-9_./-]+`
        case string(String)  // quoted, quotes removed
        case and, or, not, equal, notEqual
        case openParen, closeParen, openBrace, closeBrace, comma
        case end
    }
    var kind: Kind
    /// 0-based offset in Unicode scalars.
    var offset: Int
    /// The source text of the token, for messages.
    var text: String
}

/// Splits selector text into tokens. Errors are reported by the parser, which knows
/// what it expected; the lexer only reports characters that can start no token.
struct Lexer {
    let scalars: [Unicode.Scalar]
    let source: String
    var position = 0

    init(_ source: String) {
        self.source = source
        self.scalars = Array(source.unicodeScalars)
    }

    static func isKeyScalar(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "a"..."z", "A"..."Z", "0"..."9", "_", ".", "/", "-": return true
        default: return false
        }
    }

    private func error(_ expected: String, found: String, at offset: Int, hint: String? = nil) -> SelectorParseError {
        SelectorParseError(selector: source, column: offset + 1, expected: expected, found: found, hint: hint)
    }

    mutating func next() throws(SelectorParseError) -> Token {
        while position < scalars.count, scalars[position].properties.isWhitespace { position += 1 }
        let start = position
        guard position < scalars.count else { return Token(kind: .end, offset: start, text: "") }
        let c = scalars[position]
        func two(_ second: Unicode.Scalar) -> Bool {
            position + 1 < scalars.count && scalars[position + 1] == second
        }
        func make(_ kind: Token.Kind, length: Int) -> Token {
            position += length
            return Token(kind: kind, offset: start, text: String(String.UnicodeScalarView(scalars[start..<position])))
        }
        switch c {
        case "(": return make(.openParen, length: 1)
        case ")": return make(.closeParen, length: 1)
        case "{": return make(.openBrace, length: 1)
        case "}": return make(.closeBrace, length: 1)
        case ",": return make(.comma, length: 1)
        case "&":
            if two("&") { return make(.and, length: 2) }
            throw error("'&&'", found: "a single '&'", at: start, hint: "write '&&' for \"and\"")
        case "|":
            if two("|") { return make(.or, length: 2) }
            throw error("'||'", found: "a single '|'", at: start, hint: "write '||' for \"or\"")
        case "!":
            if two("=") { return make(.notEqual, length: 2) }
            return make(.not, length: 1)
        case "=":
            if two("=") { return make(.equal, length: 2) }
            throw error("'=='", found: "a single '='", at: start, hint: "compare with '=='")
        case "\"", "'":
            position += 1
            while position < scalars.count, scalars[position] != c { position += 1 }
            guard position < scalars.count else {
                throw error("a closing \(c) for the string that starts at column \(start + 1)",
                            found: "the end of the selector", at: scalars.count,
                            hint: "strings have no escapes: quote a value holding \(c) with the other kind of quote")
            }
            let value = String(String.UnicodeScalarView(scalars[(start + 1)..<position]))
            return make(.string(value), length: 1)
        default:
            if Lexer.isKeyScalar(c) {
                while position < scalars.count, Lexer.isKeyScalar(scalars[position]) { position += 1 }
                let word = String(String.UnicodeScalarView(scalars[start..<position]))
                return Token(kind: .word(word), offset: start, text: word)
            }
            var hint: String? = nil
            if c == "\u{201C}" || c == "\u{201D}" || c == "\u{2018}" || c == "\u{2019}" {
                hint = "that is a typographic quote; use ' or \""
            }
            throw error("a label name, operator or quoted string", found: "'\(c)'", at: start, hint: hint)
        }
    }
}

/// Recursive descent over the grammar:
/// ```
/// selector := or? END
/// or       := and ('||' and)*
/// and      := unary ('&&' unary)*
/// unary    := '!' unary | primary
/// primary  := '(' or ')' | 'all' '(' ')' | 'global' '(' ')' | 'has' '(' key ')'
///           | key ('==' | '!=' | 'contains' | 'starts' 'with' | 'ends' 'with') string
///           | key ('in' | 'not' 'in') '{' (string (',' string)*)? '}'
/// ```
struct Parser {
    var lexer: Lexer
    var token: Token

    init(_ text: String) {
        lexer = Lexer(text)
        token = Token(kind: .end, offset: 0, text: "")
    }

    private mutating func advance() throws(SelectorParseError) {
        token = try lexer.next()
    }

    /// How a token reads in a message.
    private static func describe(_ t: Token) -> String {
        switch t.kind {
        case .end: return "the end of the selector"
        case .string(let s): return "the string '\(s)'"
        default: return "'\(t.text)'"
        }
    }

    private func error(_ expected: String, hint: String? = nil) -> SelectorParseError {
        SelectorParseError(selector: lexer.source, column: token.offset + 1, expected: expected,
                           found: Parser.describe(token), hint: hint)
    }

    mutating func parseSelector() throws(SelectorParseError) -> Selector.Expression {
        try advance()
        if token.kind == .end { return .all }
        let e = try parseOr()
        guard token.kind == .end else {
            var hint: String? = nil
            if case .word(let w) = token.kind {
                switch w.lowercased() {
                case "and": hint = "write '&&' for \"and\""
                case "or": hint = "write '||' for \"or\""
                default: hint = nil
                }
            } else if token.kind == .closeParen {
                hint = "this ')' has no matching '('"
            }
            throw error("'&&', '||' or the end of the selector", hint: hint)
        }
        return e
    }

    private mutating func parseOr() throws(SelectorParseError) -> Selector.Expression {
        var terms = [try parseAnd()]
        while token.kind == .or {
            try advance()
            terms.append(try parseAnd())
        }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    private mutating func parseAnd() throws(SelectorParseError) -> Selector.Expression {
        var terms = [try parseUnary()]
        while token.kind == .and {
            try advance()
            terms.append(try parseUnary())
        }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    private mutating func parseUnary() throws(SelectorParseError) -> Selector.Expression {
        if token.kind == .not {
            try advance()
            return .not(try parseUnary())
        }
        return try parsePrimary()
    }

    private static let startOfExpression = "a label name, '(', '!', 'has(…)', 'all()' or 'global()'"

    private mutating func parsePrimary() throws(SelectorParseError) -> Selector.Expression {
        switch token.kind {
        case .openParen:
            let open = token.offset
            try advance()
            let e = try parseOr()
            guard token.kind == .closeParen else {
                throw error("')' to close the '(' at column \(open + 1)")
            }
            try advance()
            return e
        case .word(let word):
            let wordToken = token
            try advance()
            if token.kind == .openParen {
                switch word {
                case "all", "global":
                    try advance()
                    guard token.kind == .closeParen else { throw error("')' after '\(word)('", hint: "\(word)() takes no arguments") }
                    try advance()
                    return word == "all" ? .all : .global
                case "has":
                    try advance()
                    guard case .word(let key) = token.kind else {
                        var hint: String? = nil
                        if case .string(let s) = token.kind { hint = "the label name in has() is not quoted: has(\(s))" }
                        throw error("a label name", hint: hint)
                    }
                    try checkKey(key)
                    try advance()
                    guard token.kind == .closeParen else { throw error("')' to close 'has('") }
                    try advance()
                    return .has(key)
                default:
                    token = wordToken
                    throw error(Parser.startOfExpression, hint: "'\(word)(' is not a function; the functions are has(), all() and global()")
                }
            }
            try checkKey(word, at: wordToken)
            return try parseComparison(key: word, keyToken: wordToken)
        case .string(let s):
            throw error(Parser.startOfExpression, hint: "label names are not quoted: \(s)")
        default:
            throw error(Parser.startOfExpression)
        }
    }

    private func checkKey(_ key: String, at keyToken: Token? = nil) throws(SelectorParseError) {
        if key.unicodeScalars.count > Selector.maximumKeyLength {
            let t = keyToken ?? token
            throw SelectorParseError(selector: lexer.source, column: t.offset + 1,
                                     expected: "a label name of at most \(Selector.maximumKeyLength) characters",
                                     found: "one of \(key.unicodeScalars.count)")
        }
    }

    private static let operators = "an operator (==, !=, in, not in, contains, starts with, ends with)"

    private mutating func parseComparison(key: String, keyToken: Token) throws(SelectorParseError) -> Selector.Expression {
        switch token.kind {
        case .equal:
            try advance()
            return .equal(key, try parseString(key: key, op: "=="))
        case .notEqual:
            try advance()
            return .notEqual(key, try parseString(key: key, op: "!="))
        case .word("in"):
            try advance()
            return .in(key, try parseSet(key: key, op: "in"))
        case .word("not"):
            try advance()
            guard token.kind == .word("in") else { throw error("'in' after 'not'") }
            try advance()
            return .notIn(key, try parseSet(key: key, op: "not in"))
        case .word("contains"):
            try advance()
            return .contains(key, try parseString(key: key, op: "contains"))
        case .word("starts"), .word("ends"):
            let isStart = token.kind == .word("starts")
            try advance()
            guard token.kind == .word("with") else { throw error("'with' after '\(isStart ? "starts" : "ends")'") }
            try advance()
            let op = isStart ? "starts with" : "ends with"
            let s = try parseString(key: key, op: op)
            return isStart ? .startsWith(key, s) : .endsWith(key, s)
        case .end:
            throw error(Parser.operators + " after the label '\(key)'",
                        hint: "to test that the label exists, write has(\(key))")
        default:
            throw error(Parser.operators + " after the label '\(key)'")
        }
    }

    private mutating func parseString(key: String, op: String) throws(SelectorParseError) -> String {
        guard case .string(let s) = token.kind else {
            var hint: String? = nil
            if case .word(let w) = token.kind {
                hint = "label values must be quoted: \(key) \(op) '\(w)'"
            }
            throw error("a quoted string", hint: hint)
        }
        try advance()
        return s
    }

    private mutating func parseSet(key: String, op: String) throws(SelectorParseError) -> [String] {
        guard token.kind == .openBrace else {
            throw error("'{' to start the set of values", hint: "write \(key) \(op) {'a', 'b'}")
        }
        try advance()
        var values: [String] = []
        if token.kind == .closeBrace {
            try advance()
            return values
        }
        while true {
            guard case .string(let s) = token.kind else {
                var hint: String? = nil
                if case .word(let w) = token.kind { hint = "set members must be quoted: '\(w)'" }
                throw error("a quoted string", hint: hint)
            }
            values.append(s)
            try advance()
            if token.kind == .comma {
                try advance()
                continue
            }
            guard token.kind == .closeBrace else { throw error("',' or '}'") }
            try advance()
            return values
        }
    }
}
