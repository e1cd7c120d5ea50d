import CNetlinkShims

/// One rtnetlink request, built but not yet sent.
///
/// Requests are values so that several can go to the kernel in one `sendmsg`
/// (`NetlinkSocket.perform(_:)` with an array): the kernel runs them in order, each under
/// its own `rtnl_lock`, and acknowledges each. The builders live next to the object they
/// concern (`NetlinkRequest.addRoute(_:)` in Route.swift, ...), each naming its `ip`
/// equivalent.
public struct NetlinkRequest: Sendable {
    /// What this request does, in `ip` terms; errors carry it.
    public let operation: String

    enum Kind: Sendable {
        /// Changes state; success is an ACK.
        case command
        /// Reads one object; the reply precedes the ACK.
        case get
        /// Reads many objects (NLM_F_DUMP); replies end with NLMSG_DONE.
        case dump
    }

    var message: MessageBuilder
    let kind: Kind

    init(operation: String, type: Int, flags: Int32 = 0, kind: Kind = .command, header: [UInt8]) {
        self.operation = operation
        self.kind = kind
        var extra = Int32(NLM_F_REQUEST) | flags
        switch kind {
        case .command, .get: extra |= Int32(NLM_F_ACK)
        case .dump: extra |= Int32(NLM_F_DUMP)
        }
        message = MessageBuilder(type: type, flags: extra)
        message.appendHeader(header)
    }
}
