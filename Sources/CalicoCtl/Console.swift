import Foundation

/// Where calicoctl writes and reads: injected so tests and the executable share one path.
public struct Console {
    public var writeOut: (String) -> Void
    public var writeErr: (String) -> Void
    public var readIn: () throws -> [UInt8]

    public init(writeOut: @escaping (String) -> Void, writeErr: @escaping (String) -> Void,
                readIn: @escaping () throws -> [UInt8]) {
        self.writeOut = writeOut
        self.writeErr = writeErr
        self.readIn = readIn
    }

    /// The process's stdout, stderr and stdin.
    public static var standard: Console {
        Console(
            writeOut: { FileHandle.standardOutput.write(Data($0.utf8)) },
            writeErr: { FileHandle.standardError.write(Data($0.utf8)) },
            readIn: { [UInt8](FileHandle.standardInput.readDataToEndOfFile()) })
    }

    func out(_ line: String) { writeOut(line.hasSuffix("\n") ? line : line + "\n") }
    func err(_ line: String) { writeErr(line.hasSuffix("\n") ? line : line + "\n") }
}
