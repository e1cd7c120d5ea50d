import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import POSIX

/// Files for TLS with `https` endpoints, as Calico's `etcd_ca_cert_file`,
/// `etcd_cert_file` and `etcd_key_file`.
public struct TLSFiles: Sendable, Hashable {
    /// PEM CA bundle that signs the server's certificate; nil uses the system's trust store.
    public var caCertFile: String?
    /// PEM client certificate (chain) presented to the server, with `keyFile`.
    public var certFile: String?
    /// PEM private key of `certFile`. Its directory also holds the TLS sessions saved for
    /// later processes (`.calico-tls-session-*`, 0600; see `TLSSessionCache`).
    public var keyFile: String?

    public init(caCertFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caCertFile = caCertFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

/// An OpenSSL client context (`SSL_CTX`): TLS 1.2 or later, the server's certificate
/// verified against the CA file, our certificate and key. Thread-safe once built
/// (OpenSSL allows creating sessions from one context on many threads).
///
/// With a client key, sessions are kept on disk (`TLSSessionCache`) and a later process
/// resumes them. When a saved session exists for one of `endpoints`, the CA file and the
/// client certificate are loaded only if a full handshake needs them (a resumed one does
/// not): their readability is still checked here, so a missing file fails at once.
final class TLSContext: @unchecked Sendable {
    let lib: OpenSSLLibrary
    let ctx: OpaquePointer
    /// Socket I/O for OpenSSL without SIGPIPE (see `noSignalMethod`).
    let bioMethod: OpaquePointer
    let files: TLSFiles
    /// Sessions on disk; nil without a client key.
    let sessionCache: TLSSessionCache?
    /// Set once the CA file is in the context's store (deferred loading).
    private let caLoaded = Mutex(false)

    init(files: TLSFiles, endpoints: [HTTPEndpoint] = []) throws(HTTPError) {
        let lib = try OpenSSLLibrary.shared.get()
        guard let ctx = lib.SSL_CTX_new(lib.TLS_client_method()) else {
            throw .configuration("TLS: cannot create a context: \(openSSLErrors(lib))")
        }
        guard let method = Self.noSignalMethod(lib) else {
            lib.SSL_CTX_free(ctx)
            throw .configuration("TLS: cannot create a BIO method")
        }
        self.lib = lib
        self.ctx = ctx
        self.bioMethod = method
        self.files = files
        let cache = TLSSessionCache(files: files)
        self.sessionCache = cache
        _ = lib.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        // SSL_write may be retried with a buffer that moved (Swift arrays).
        _ = lib.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, copenssl_mode_partial_moving_write(), nil)
        // etcd closes idle connections without close_notify: read that as end of stream.
        // Tickets only when they are kept for a later process.
        let ticket = cache == nil ? copenssl_op_no_ticket() : 0
        _ = lib.SSL_CTX_set_options(ctx, copenssl_op_ignore_unexpected_eof() | ticket)
        lib.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        let deferred = cache.map { c in endpoints.contains { $0.isSecure && c.hasSession(for: $0) } } ?? false
        let me = Unmanaged.passUnretained(self).toOpaque()
        if let ca = files.caCertFile {
            guard readable(ca) else { throw .configuration("TLS: cannot read the CA file \(ca)") }
            if deferred {
                lib.SSL_CTX_set_cert_verify_callback(ctx, { store, arg in
                    let context = Unmanaged<TLSContext>.fromOpaque(arg!).takeUnretainedValue()
                    // Should the CA not load, verification against the empty store fails
                    // with the usual "unable to get local issuer certificate".
                    context.loadCAIfNeeded()
                    return context.lib.X509_verify_cert(store)
                }, me)
            } else {
                guard lib.SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                    throw .configuration("TLS: cannot load the CA file \(ca): \(openSSLErrors(lib))")
                }
                caLoaded.withLock { $0 = true }
            }
        } else if lib.SSL_CTX_set_default_verify_paths(ctx) != 1 {
            throw .configuration("TLS: cannot load the system CA store: \(openSSLErrors(lib))")
        }
        switch (files.certFile, files.keyFile) {
        case (nil, nil): break
        case (let cert?, let key?):
            guard readable(cert) else { throw .configuration("TLS: cannot read the certificate file \(cert)") }
            guard readable(key) else { throw .configuration("TLS: cannot read the key file \(key)") }
            if deferred {
                // Called when the server asks for our certificate: only in a full handshake.
                lib.SSL_CTX_set_cert_cb(ctx, { ssl, arg in
                    let context = Unmanaged<TLSContext>.fromOpaque(arg!).takeUnretainedValue()
                    let lib = context.lib
                    guard let cert = context.files.certFile, let key = context.files.keyFile,
                          lib.SSL_use_certificate_chain_file(ssl, cert) == 1,
                          lib.SSL_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) == 1,
                          lib.SSL_check_private_key(ssl) == 1
                    else { return 0 }
                    return 1
                }, me)
                break
            }
            guard lib.SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else {
                throw .configuration("TLS: cannot load the certificate \(cert): \(openSSLErrors(lib))")
            }
            guard lib.SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
                throw .configuration("TLS: cannot load the key \(key): \(openSSLErrors(lib))")
            }
            guard lib.SSL_CTX_check_private_key(ctx) == 1 else {
                throw .configuration("TLS: the key \(key) does not match the certificate \(cert)")
            }
        default:
            throw .configuration("TLS: a client certificate needs both a certificate file and a key file")
        }
    }

    /// Loads the CA file into the context's store once (deferred loading); false when it
    /// cannot be loaded, which fails verification.
    @discardableResult
    private func loadCAIfNeeded() -> Bool {
        caLoaded.withLock { loaded in
            if loaded { return true }
            guard let ca = files.caCertFile, let store = lib.SSL_CTX_get_cert_store(ctx),
                  lib.X509_STORE_load_locations(store, ca, nil) == 1
            else { return false }
            loaded = true
            return true
        }
    }

    deinit {
        lib.SSL_CTX_free(ctx)
        lib.BIO_meth_free(bioMethod)
    }

    /// A BIO method over our non-blocking socket using send(MSG_NOSIGNAL) and recv.
    /// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE (killing the
    /// process) when the peer closed; a library must not change the process's signal
    /// handling to avoid that. The BIO's data pointer holds the descriptor.
    private static func noSignalMethod(_ lib: OpenSSLLibrary) -> OpaquePointer? {
        guard let m = lib.BIO_meth_new(lib.BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "socket without SIGPIPE") else { return nil }
        _ = lib.BIO_meth_set_write(m) { bio, buf, len in
            guard case .success(let lib) = OpenSSLLibrary.shared else { return -1 }
            let fd = Int32(truncatingIfNeeded: Int(bitPattern: lib.BIO_get_data(bio)))
            let n = send(fd, buf, Int(len), Int32(MSG_NOSIGNAL))
            lib.BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { lib.BIO_set_flags(bio, BIO_FLAGS_WRITE | BIO_FLAGS_SHOULD_RETRY) }
                return -1
            }
            return Int32(n)
        }
        _ = lib.BIO_meth_set_read(m) { bio, buf, len in
            guard case .success(let lib) = OpenSSLLibrary.shared else { return -1 }
            let fd = Int32(truncatingIfNeeded: Int(bitPattern: lib.BIO_get_data(bio)))
            let n = recv(fd, buf, Int(len), 0)
            lib.BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { lib.BIO_set_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY) }
                return -1
            }
            return Int32(n)
        }
        _ = lib.BIO_meth_set_ctrl(m) { _, cmd, _, _ in cmd == BIO_CTRL_FLUSH ? 1 : 0 }
        _ = lib.BIO_meth_set_create(m) { bio in
            guard case .success(let lib) = OpenSSLLibrary.shared else { return 0 }
            lib.BIO_set_init(bio, 1)
            return 1
        }
        return m
    }
}

/// One TLS session over a connected non-blocking socket.
struct TLSSession {
    let lib: OpenSSLLibrary
    let ssl: OpaquePointer
    let fd: Int32
    /// Where this connection's session is kept for later processes, if anywhere.
    var cache: (store: TLSSessionCache, endpoint: HTTPEndpoint)?

    /// Runs the handshake, verifying the server's certificate for `host` (a DNS name, or an
    /// IP address matched against the certificate's IP SANs).
    static func handshake(context: TLSContext, fd: Int32, endpoint: HTTPEndpoint, deadline: Deadline) throws(TransportError) -> TLSSession {
        let lib = context.lib
        let host = endpoint.host
        guard let ssl = lib.SSL_new(context.ctx) else { throw .tls("SSL_new: \(openSSLErrors(lib))", certificate: false) }
        var session = TLSSession(lib: lib, ssl: ssl, fd: fd)
        guard let bio = lib.BIO_new(context.bioMethod) else {
            lib.SSL_free(ssl)
            throw .tls("BIO_new failed", certificate: false)
        }
        lib.BIO_set_data(bio, UnsafeMutableRawPointer(bitPattern: Int(fd)))
        lib.SSL_set_bio(ssl, bio, bio)
        if isIPAddress(host) {
            _ = lib.X509_VERIFY_PARAM_set1_ip_asc(lib.SSL_get0_param(ssl), host)
        } else {
            // SNI (SSL_set_tlsext_host_name), then the name the certificate must carry.
            _ = host.withCString { lib.SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
            _ = lib.SSL_set1_host(ssl, host)
        }
        if let store = context.sessionCache {
            session.cache = (store, endpoint)
            // Offer the session a previous process saved; the server may refuse it, and
            // then the handshake is simply a full one.
            if let bytes = store.load(for: endpoint) {
                let saved = bytes.withUnsafeBufferPointer { buffer -> OpaquePointer? in
                    var p = buffer.baseAddress
                    return lib.d2i_SSL_SESSION(nil, &p, buffer.count)
                }
                if let saved {
                    _ = lib.SSL_set_session(ssl, saved)
                    lib.SSL_SESSION_free(saved)
                }
                lib.ERR_clear_error()
            }
        }
        do {
            _ = try session.retrying(deadline) { lib.SSL_connect(ssl) }
        } catch {
            let verify = lib.SSL_get_verify_result(ssl)
            lib.SSL_free(ssl)
            if verify != Int(X509_V_OK) {
                let reason = lib.X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "error \(verify)"
                throw .tls("server certificate: \(reason)", certificate: true)
            }
            throw error
        }
        return session
    }

    /// Reads up to `count` bytes; returns 0 at end of stream.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, deadline: Deadline) throws(TransportError) -> Int {
        do {
            return Int(try retrying(deadline) { lib.SSL_read(ssl, buffer, Int32(min(count, Int(Int32.max)))) })
        } catch .closed {
            return 0
        }
    }

    /// Writes some of `count` bytes; returns how many.
    func write(_ buffer: UnsafeRawPointer, count: Int, deadline: Deadline) throws(TransportError) -> Int {
        Int(try retrying(deadline) { lib.SSL_write(ssl, buffer, Int32(min(count, Int(Int32.max)))) })
    }

    /// Whether the connection still looks usable without blocking: consumes TLS records
    /// that carry no data; false on end of stream, an alert, or data nobody asked for.
    func isIdleAndOpen() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 0) == 1 else { return true }
        var byte: UInt8 = 0
        lib.ERR_clear_error()
        let n = lib.SSL_read(ssl, &byte, 1)
        if n > 0 { return false }
        return lib.SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ
    }

    /// Frees the connection's TLS state, first saving its session for later processes
    /// when this one was not resumed (a resumed one is already on disk). Under TLS 1.3 the
    /// server's ticket arrives after the handshake, with the first answer: a connection
    /// that served no request has nothing resumable, and nothing is written.
    func free() {
        if let (store, endpoint) = cache, lib.SSL_session_reused(ssl) == 0, let current = lib.SSL_get1_session(ssl) {
            if lib.SSL_SESSION_is_resumable(current) == 1 {
                let length = lib.i2d_SSL_SESSION(current, nil)
                if length > 0 && Int(length) <= TLSSessionCache.maxSize {
                    var bytes = [UInt8](repeating: 0, count: Int(length))
                    let written = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
                        var p = buffer.baseAddress
                        return lib.i2d_SSL_SESSION(current, &p)
                    }
                    if written == length { store.save(bytes, for: endpoint) }
                }
            }
            lib.SSL_SESSION_free(current)
        }
        lib.SSL_free(ssl)
    }

    /// Calls an OpenSSL I/O function until it succeeds, waiting on the socket for what it
    /// wants (non-blocking I/O) within `deadline`.
    private func retrying(_ deadline: Deadline, _ call: () -> Int32) throws(TransportError) -> Int32 {
        while true {
            lib.ERR_clear_error()
            errno = 0
            let r = call()
            if r > 0 { return r }
            switch lib.SSL_get_error(ssl, r) {
            case SSL_ERROR_WANT_READ:
                guard try wait(fd: fd, events: Int16(POLLIN), deadline: deadline) else { throw .timedOut }
            case SSL_ERROR_WANT_WRITE:
                guard try wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) else { throw .timedOut }
            case SSL_ERROR_ZERO_RETURN:
                throw .closed
            case SSL_ERROR_SYSCALL:
                let code = errno
                if code == 0 || code == ECONNRESET { throw .closed }
                throw .system("TLS I/O: " + String(cString: strerror(code)))
            default:
                // A server alert about our certificate (client-cert-auth) arrives as an
                // SSL error after our side of the handshake completed.
                let certificate = certificateReasons.contains(errorReason(lib.ERR_peek_error()))
                throw .tls(openSSLErrors(lib), certificate: certificate)
            }
        }
    }
}

/// The reason part of a packed OpenSSL error code (ERR_GET_REASON, inline in the header:
/// bit arithmetic, no call into the library).
private func errorReason(_ code: UInt) -> Int32 { ERR_GET_REASON(code) }

/// OpenSSL reasons that mean a certificate was refused, by us or by the server.
private let certificateReasons: Set<Int32> = [
    SSL_R_CERTIFICATE_VERIFY_FAILED, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED,
    SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN,
    SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED,
    SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_TLSV1_ALERT_ACCESS_DENIED,
]

/// The calling thread's OpenSSL error queue as text (and emptied).
func openSSLErrors(_ lib: OpenSSLLibrary) -> String {
    OpenSSLLibrary.loadErrorStrings
    var parts: [String] = []
    while true {
        let code = lib.ERR_get_error()
        if code == 0 { break }
        var buf = [CChar](repeating: 0, count: 256)
        lib.ERR_error_string_n(code, &buf, buf.count)
        parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return parts.isEmpty ? "unknown error" : parts.joined(separator: "; ")
}

/// Whether `host` is an IPv4 or IPv6 address literal.
func isIPAddress(_ host: String) -> Bool {
    var a4 = in_addr()
    var a6 = in6_addr()
    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1
}

private func readable(_ path: String) -> Bool { access(path, R_OK) == 0 }
