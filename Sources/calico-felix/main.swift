#if canImport(Glibc)
import Glibc
#endif
import Felix

var environment: [String: String] = [:]
var entry = environ
while let p = entry.pointee {
    let s = String(cString: p)
    if let eq = s.firstIndex(of: "=") { environment[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
    entry += 1
}
exit(FelixCommand.main(arguments: CommandLine.arguments, environment: environment))
