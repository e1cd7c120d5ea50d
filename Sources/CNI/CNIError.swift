import JSON

/// The one error type of the CNI wire protocol: printed on stdout as
/// `{"cniVersion":..,"code":N,"msg":..,"details":..}` with a non-zero exit.
///
/// Plugins throw it from every operation. An error received from a delegated plugin (IPAM)
/// is rethrown as it is — never wrapped in another one — so the runtime sees the code and
/// message of the plugin that failed.
public struct CNIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The numbered code: 1–99 are the specification's, 100 and up the plugin's own.
    public var code: Int
    /// A short message for people.
    public var msg: String
    /// Longer context; omitted from the JSON when empty.
    public var details: String

    public init(code: Int, msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    public var description: String {
        details.isEmpty ? "CNI error \(code): \(msg)" : "CNI error \(code): \(msg) (\(details))"
    }

    /// The error codes the specification defines, plus the ones our plugins share.
    public enum Code {
        /// Incompatible CNI version.
        public static let incompatibleVersion = 1
        /// Unsupported field in the network configuration.
        public static let unsupportedField = 2
        /// Container unknown or does not exist.
        public static let unknownContainer = 3
        /// Invalid or missing environment variables (the message names them).
        public static let invalidEnvironment = 4
        /// I/O failure (e.g. reading stdin).
        public static let ioFailure = 5
        /// Failed to decode content (stdin, a result, CNI_ARGS values).
        public static let decodingFailure = 6
        /// Invalid network configuration.
        public static let invalidNetworkConfig = 7
        /// Try again later: a transient condition (a datastore that timed out, a lock).
        public static let tryAgainLater = 11
        /// STATUS: the plugin cannot serve ADD now.
        public static let pluginNotAvailable = 50
        /// STATUS: the plugin cannot serve ADD, and existing attachments may have limited
        /// connectivity.
        public static let pluginNotAvailableLimitedConnectivity = 51
        /// Our IPAM plugin's refusal: the handle (`<network>.<containerID>`) already holds an
        /// allocation, so this ADD is a duplicate. Callers must not answer it with a
        /// rollback DEL, which would free the address of a live attachment.
        public static let alreadyAllocated = 100
    }

    public static func incompatibleVersion(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.incompatibleVersion, msg: msg, details: details)
    }
    public static func unsupportedField(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.unsupportedField, msg: msg, details: details)
    }
    public static func unknownContainer(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.unknownContainer, msg: msg, details: details)
    }
    public static func invalidEnvironment(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.invalidEnvironment, msg: msg, details: details)
    }
    public static func ioFailure(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.ioFailure, msg: msg, details: details)
    }
    public static func decodingFailure(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.decodingFailure, msg: msg, details: details)
    }
    public static func invalidNetworkConfig(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.invalidNetworkConfig, msg: msg, details: details)
    }
    public static func tryAgainLater(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.tryAgainLater, msg: msg, details: details)
    }
    public static func pluginNotAvailable(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.pluginNotAvailable, msg: msg, details: details)
    }
    public static func pluginNotAvailableLimitedConnectivity(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.pluginNotAvailableLimitedConnectivity, msg: msg, details: details)
    }
    public static func alreadyAllocated(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: Code.alreadyAllocated, msg: msg, details: details)
    }
}

extension CNIError {
    /// The wire object. `details` is left out when empty.
    public func json(cniVersion: String) -> JSON {
        var o: [String: JSON] = ["cniVersion": .string(cniVersion), "code": .int(code), "msg": .string(msg)]
        if !details.isEmpty { o["details"] = .string(details) }
        return .object(o)
    }

    /// Reads an error object another plugin printed: an object with an integer `code`.
    /// Returns nil for anything else (the caller then describes the failure itself).
    public init?(parsing json: JSON) {
        guard let code = json["code"]?.intValue else { return nil }
        self.init(code: code, msg: json["msg"]?.stringValue ?? "", details: json["details"]?.stringValue ?? "")
    }
}
