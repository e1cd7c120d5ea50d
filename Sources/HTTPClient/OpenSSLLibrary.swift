#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

// OpenSSL's types are opaque here: every `SSL_CTX *`, `SSL *`, `BIO *`, `BIO_METHOD *`,
// `SSL_METHOD *` and `X509_VERIFY_PARAM *` is an OpaquePointer.
typealias BIOWrite = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32
typealias BIORead = @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int32) -> Int32
typealias BIOCtrl = @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
typealias BIOCreate = @convention(c) (OpaquePointer?) -> Int32
/// `int (*)(SSL *, void *)`: SSL_CTX_set_cert_cb.
typealias CertificateCallback = @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32
/// `int (*)(X509_STORE_CTX *, void *)`: SSL_CTX_set_cert_verify_callback.
typealias VerifyCallback = @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32

/// The libssl/libcrypto functions HTTPClient uses, resolved with dlopen/dlsym on first
/// use of TLS.
///
/// Why not link them: a binary linked against libssl and libcrypto loads and relocates
/// both at every start (measured here: +0.5–0.8 ms for a Swift binary), and the CNI plugin
/// starts once per container launch whether or not it talks TLS. Each field is the C
/// function of the same name.
struct OpenSSLLibrary: @unchecked Sendable {
    let TLS_client_method: @convention(c) () -> OpaquePointer?
    let SSL_CTX_new: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let SSL_CTX_free: @convention(c) (OpaquePointer?) -> Void
    let SSL_CTX_ctrl: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let SSL_CTX_set_options: @convention(c) (OpaquePointer?, UInt64) -> UInt64
    let SSL_CTX_set_verify: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer?) -> Void
    let SSL_CTX_load_verify_locations: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
    let SSL_CTX_set_default_verify_paths: @convention(c) (OpaquePointer?) -> Int32
    let SSL_CTX_use_certificate_chain_file: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_CTX_use_PrivateKey_file: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32
    let SSL_CTX_check_private_key: @convention(c) (OpaquePointer?) -> Int32
    let SSL_new: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let SSL_free: @convention(c) (OpaquePointer?) -> Void
    let SSL_set_bio: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?) -> Void
    let SSL_ctrl: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let SSL_set1_host: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_get0_param: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let X509_VERIFY_PARAM_set1_ip_asc: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_connect: @convention(c) (OpaquePointer?) -> Int32
    let SSL_read: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Int32
    let SSL_write: @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int32) -> Int32
    let SSL_get_error: @convention(c) (OpaquePointer?, Int32) -> Int32
    let SSL_get_verify_result: @convention(c) (OpaquePointer?) -> Int
    let X509_verify_cert_error_string: @convention(c) (Int) -> UnsafePointer<CChar>?
    let ERR_get_error: @convention(c) () -> UInt
    let ERR_peek_error: @convention(c) () -> UInt
    let ERR_clear_error: @convention(c) () -> Void
    let ERR_error_string_n: @convention(c) (UInt, UnsafeMutablePointer<CChar>?, Int) -> Void
    let BIO_get_new_index: @convention(c) () -> Int32
    let BIO_meth_new: @convention(c) (Int32, UnsafePointer<CChar>?) -> OpaquePointer?
    let BIO_meth_free: @convention(c) (OpaquePointer?) -> Void
    let BIO_meth_set_write: @convention(c) (OpaquePointer?, BIOWrite?) -> Int32
    let BIO_meth_set_read: @convention(c) (OpaquePointer?, BIORead?) -> Int32
    let BIO_meth_set_ctrl: @convention(c) (OpaquePointer?, BIOCtrl?) -> Int32
    let BIO_meth_set_create: @convention(c) (OpaquePointer?, BIOCreate?) -> Int32
    let BIO_new: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let BIO_set_data: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void
    let BIO_get_data: @convention(c) (OpaquePointer?) -> UnsafeMutableRawPointer?
    let BIO_set_init: @convention(c) (OpaquePointer?, Int32) -> Void
    let BIO_set_flags: @convention(c) (OpaquePointer?, Int32) -> Void
    let BIO_clear_flags: @convention(c) (OpaquePointer?, Int32) -> Void
    // Session resumption and deferred loading of the CA and the client certificate.
    let OPENSSL_init_ssl: @convention(c) (UInt64, OpaquePointer?) -> Int32
    let SSL_CTX_set_cert_cb: @convention(c) (OpaquePointer?, CertificateCallback?, UnsafeMutableRawPointer?) -> Void
    let SSL_CTX_set_cert_verify_callback: @convention(c) (OpaquePointer?, VerifyCallback?, UnsafeMutableRawPointer?) -> Void
    let SSL_CTX_get_cert_store: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let X509_STORE_load_locations: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
    let X509_verify_cert: @convention(c) (OpaquePointer?) -> Int32
    let SSL_use_certificate_chain_file: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_use_PrivateKey_file: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32
    let SSL_check_private_key: @convention(c) (OpaquePointer?) -> Int32
    let SSL_set_session: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32
    let SSL_get1_session: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let SSL_session_reused: @convention(c) (OpaquePointer?) -> Int32
    let SSL_SESSION_free: @convention(c) (OpaquePointer?) -> Void
    let SSL_SESSION_is_resumable: @convention(c) (OpaquePointer?) -> Int32
    let d2i_SSL_SESSION: @convention(c) (UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, Int) -> OpaquePointer?
    let i2d_SSL_SESSION: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32

    /// The library, loaded once per process (Swift initialises globals exactly once,
    /// thread-safely), or why it could not be.
    static let shared: Result<OpenSSLLibrary, HTTPError> = Result { () throws(HTTPError) in try load() }

    private static func load() throws(HTTPError) -> OpenSSLLibrary {
        var handle: UnsafeMutableRawPointer?
        for name in ["libssl.so.3", "libssl.so"] {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
        }
        guard let handle else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            throw .configuration("TLS: cannot load OpenSSL 3 (libssl.so.3): \(reason)")
        }
        // dlsym on libssl's handle also finds libcrypto's symbols (its dependency).
        func f<T>(_ name: String) throws(HTTPError) -> T {
            guard let p = dlsym(handle, name) else { throw .configuration("TLS: \(name) is missing from libssl") }
            return unsafeBitCast(p, to: T.self)
        }
        let lib = OpenSSLLibrary(
            TLS_client_method: try f("TLS_client_method"),
            SSL_CTX_new: try f("SSL_CTX_new"),
            SSL_CTX_free: try f("SSL_CTX_free"),
            SSL_CTX_ctrl: try f("SSL_CTX_ctrl"),
            SSL_CTX_set_options: try f("SSL_CTX_set_options"),
            SSL_CTX_set_verify: try f("SSL_CTX_set_verify"),
            SSL_CTX_load_verify_locations: try f("SSL_CTX_load_verify_locations"),
            SSL_CTX_set_default_verify_paths: try f("SSL_CTX_set_default_verify_paths"),
            SSL_CTX_use_certificate_chain_file: try f("SSL_CTX_use_certificate_chain_file"),
            SSL_CTX_use_PrivateKey_file: try f("SSL_CTX_use_PrivateKey_file"),
            SSL_CTX_check_private_key: try f("SSL_CTX_check_private_key"),
            SSL_new: try f("SSL_new"),
            SSL_free: try f("SSL_free"),
            SSL_set_bio: try f("SSL_set_bio"),
            SSL_ctrl: try f("SSL_ctrl"),
            SSL_set1_host: try f("SSL_set1_host"),
            SSL_get0_param: try f("SSL_get0_param"),
            X509_VERIFY_PARAM_set1_ip_asc: try f("X509_VERIFY_PARAM_set1_ip_asc"),
            SSL_connect: try f("SSL_connect"),
            SSL_read: try f("SSL_read"),
            SSL_write: try f("SSL_write"),
            SSL_get_error: try f("SSL_get_error"),
            SSL_get_verify_result: try f("SSL_get_verify_result"),
            X509_verify_cert_error_string: try f("X509_verify_cert_error_string"),
            ERR_get_error: try f("ERR_get_error"),
            ERR_peek_error: try f("ERR_peek_error"),
            ERR_clear_error: try f("ERR_clear_error"),
            ERR_error_string_n: try f("ERR_error_string_n"),
            BIO_get_new_index: try f("BIO_get_new_index"),
            BIO_meth_new: try f("BIO_meth_new"),
            BIO_meth_free: try f("BIO_meth_free"),
            BIO_meth_set_write: try f("BIO_meth_set_write"),
            BIO_meth_set_read: try f("BIO_meth_set_read"),
            BIO_meth_set_ctrl: try f("BIO_meth_set_ctrl"),
            BIO_meth_set_create: try f("BIO_meth_set_create"),
            BIO_new: try f("BIO_new"),
            BIO_set_data: try f("BIO_set_data"),
            BIO_get_data: try f("BIO_get_data"),
            BIO_set_init: try f("BIO_set_init"),
            BIO_set_flags: try f("BIO_set_flags"),
            BIO_clear_flags: try f("BIO_clear_flags"),
            OPENSSL_init_ssl: try f("OPENSSL_init_ssl"),
            SSL_CTX_set_cert_cb: try f("SSL_CTX_set_cert_cb"),
            SSL_CTX_set_cert_verify_callback: try f("SSL_CTX_set_cert_verify_callback"),
            SSL_CTX_get_cert_store: try f("SSL_CTX_get_cert_store"),
            X509_STORE_load_locations: try f("X509_STORE_load_locations"),
            X509_verify_cert: try f("X509_verify_cert"),
            SSL_use_certificate_chain_file: try f("SSL_use_certificate_chain_file"),
            SSL_use_PrivateKey_file: try f("SSL_use_PrivateKey_file"),
            SSL_check_private_key: try f("SSL_check_private_key"),
            SSL_set_session: try f("SSL_set_session"),
            SSL_get1_session: try f("SSL_get1_session"),
            SSL_session_reused: try f("SSL_session_reused"),
            SSL_SESSION_free: try f("SSL_SESSION_free"),
            SSL_SESSION_is_resumable: try f("SSL_SESSION_is_resumable"),
            d2i_SSL_SESSION: try f("d2i_SSL_SESSION"),
            i2d_SSL_SESSION: try f("i2d_SSL_SESSION"))
        // The first initialisation decides: the configuration file as usual, but no
        // OPENSSL_cleanup at exit. A plugin process is about to end when it exits; freeing
        // every provider and table first costs ~0.5 ms and changes nothing outside it.
        _ = lib.OPENSSL_init_ssl(UInt64(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT), nil)
        return lib
    }
}
