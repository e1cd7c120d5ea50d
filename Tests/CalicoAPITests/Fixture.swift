import Foundation
import JSON

/// The repository's `Fixtures/` directory, found from this file's path.
enum Fixture {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures").path
    }()

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: root + "/" + relative, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func json(_ relative: String) throws -> JSON {
        try JSON(parsing: try text(relative))
    }
}
