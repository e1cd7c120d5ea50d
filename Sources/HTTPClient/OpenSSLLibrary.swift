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

/// The libssl/libcrypto functions HTTPClient uses. Each field is the C function of the same
/// name.
///
/// OpenSSL is linked statically (Debian's `libssl.a`/`libcrypto.a`, see Package.swift), so
/// nothing is loaded or relocated at start: the plugin binary is position-dependent, and an
/// untouched library page costs nothing. Debian's shared libssl/libcrypto are built
/// `BIND_NOW`, and loading them (at start, or with dlopen on first use of TLS) cost
/// ~3 ms of symbol binding and relocation per process, a third of an ADD over TLS. The
/// price: an OpenSSL security update reaches the plugins when they are rebuilt.
/// (The table stays, rather than direct calls everywhere, so the TLS code reads one way
/// and tests can tell the library's state.)
struct OpenSSLLibrary: @unchecked Sendable {
    let TLS_client_method: () -> OpaquePointer?
    let SSL_CTX_new: (OpaquePointer?) -> OpaquePointer?
    let SSL_CTX_free: (OpaquePointer?) -> Void
    let SSL_CTX_ctrl: (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let SSL_CTX_set_options: (OpaquePointer?, UInt64) -> UInt64
    let SSL_CTX_set_verify: (OpaquePointer?, Int32, SSL_verify_cb?) -> Void
    let SSL_CTX_load_verify_locations: (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
    let SSL_CTX_set_default_verify_paths: (OpaquePointer?) -> Int32
    let SSL_CTX_use_certificate_chain_file: (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_CTX_use_PrivateKey_file: (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32
    let SSL_CTX_check_private_key: (OpaquePointer?) -> Int32
    let SSL_new: (OpaquePointer?) -> OpaquePointer?
    let SSL_free: (OpaquePointer?) -> Void
    let SSL_set_bio: (OpaquePointer?, OpaquePointer?, OpaquePointer?) -> Void
    let SSL_ctrl: (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let SSL_set1_host: (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_get0_param: (OpaquePointer?) -> OpaquePointer?
    let X509_VERIFY_PARAM_set1_ip_asc: (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_connect: (OpaquePointer?) -> Int32
    let SSL_read: (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Int32
    let SSL_write: (OpaquePointer?, UnsafeRawPointer?, Int32) -> Int32
    let SSL_get_error: (OpaquePointer?, Int32) -> Int32
    let SSL_get_verify_result: (OpaquePointer?) -> Int
    let X509_verify_cert_error_string: (Int) -> UnsafePointer<CChar>?
    let ERR_get_error: () -> UInt
    let ERR_peek_error: () -> UInt
    let ERR_clear_error: () -> Void
    let ERR_error_string_n: (UInt, UnsafeMutablePointer<CChar>?, Int) -> Void
    let BIO_get_new_index: () -> Int32
    let BIO_meth_new: (Int32, UnsafePointer<CChar>?) -> OpaquePointer?
    let BIO_meth_free: (OpaquePointer?) -> Void
    let BIO_meth_set_write: (OpaquePointer?, BIOWrite?) -> Int32
    let BIO_meth_set_read: (OpaquePointer?, BIORead?) -> Int32
    let BIO_meth_set_ctrl: (OpaquePointer?, BIOCtrl?) -> Int32
    let BIO_meth_set_create: (OpaquePointer?, BIOCreate?) -> Int32
    let BIO_new: (OpaquePointer?) -> OpaquePointer?
    let BIO_set_data: (OpaquePointer?, UnsafeMutableRawPointer?) -> Void
    let BIO_get_data: (OpaquePointer?) -> UnsafeMutableRawPointer?
    let BIO_set_init: (OpaquePointer?, Int32) -> Void
    let BIO_set_flags: (OpaquePointer?, Int32) -> Void
    let BIO_clear_flags: (OpaquePointer?, Int32) -> Void
    // Session resumption and deferred loading of the CA and the client certificate.
    let OPENSSL_init_ssl: (UInt64, OpaquePointer?) -> Int32
    let SSL_CTX_set_cert_cb: (OpaquePointer?, CertificateCallback?, UnsafeMutableRawPointer?) -> Void
    let SSL_CTX_set_cert_verify_callback: (OpaquePointer?, VerifyCallback?, UnsafeMutableRawPointer?) -> Void
    let SSL_CTX_get_cert_store: (OpaquePointer?) -> OpaquePointer?
    let X509_STORE_load_locations: (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
    let X509_verify_cert: (OpaquePointer?) -> Int32
    let SSL_use_certificate_chain_file: (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_use_PrivateKey_file: (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32
    let SSL_check_private_key: (OpaquePointer?) -> Int32
    let SSL_set_session: (OpaquePointer?, OpaquePointer?) -> Int32
    let SSL_get1_session: (OpaquePointer?) -> OpaquePointer?
    let SSL_session_reused: (OpaquePointer?) -> Int32
    let SSL_SESSION_free: (OpaquePointer?) -> Void
    let SSL_SESSION_is_resumable: (OpaquePointer?) -> Int32
    let d2i_SSL_SESSION: (UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, Int) -> OpaquePointer?
    let i2d_SSL_SESSION: (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32

    /// The library, loaded once per process (Swift initialises globals exactly once,
    /// thread-safely), or why it could not be.
    static let shared: Result<OpenSSLLibrary, HTTPError> = Result { () throws(HTTPError) in try load() }

    private static func load() throws(HTTPError) -> OpenSSLLibrary {
        let lib = OpenSSLLibrary(
            TLS_client_method: COpenSSL.TLS_client_method,
            SSL_CTX_new: COpenSSL.SSL_CTX_new,
            SSL_CTX_free: COpenSSL.SSL_CTX_free,
            SSL_CTX_ctrl: COpenSSL.SSL_CTX_ctrl,
            SSL_CTX_set_options: COpenSSL.SSL_CTX_set_options,
            SSL_CTX_set_verify: COpenSSL.SSL_CTX_set_verify,
            SSL_CTX_load_verify_locations: COpenSSL.SSL_CTX_load_verify_locations,
            SSL_CTX_set_default_verify_paths: COpenSSL.SSL_CTX_set_default_verify_paths,
            SSL_CTX_use_certificate_chain_file: COpenSSL.SSL_CTX_use_certificate_chain_file,
            SSL_CTX_use_PrivateKey_file: COpenSSL.SSL_CTX_use_PrivateKey_file,
            SSL_CTX_check_private_key: COpenSSL.SSL_CTX_check_private_key,
            SSL_new: COpenSSL.SSL_new,
            SSL_free: COpenSSL.SSL_free,
            SSL_set_bio: COpenSSL.SSL_set_bio,
            SSL_ctrl: COpenSSL.SSL_ctrl,
            SSL_set1_host: COpenSSL.SSL_set1_host,
            SSL_get0_param: COpenSSL.SSL_get0_param,
            X509_VERIFY_PARAM_set1_ip_asc: COpenSSL.X509_VERIFY_PARAM_set1_ip_asc,
            SSL_connect: COpenSSL.SSL_connect,
            SSL_read: COpenSSL.SSL_read,
            SSL_write: COpenSSL.SSL_write,
            SSL_get_error: COpenSSL.SSL_get_error,
            SSL_get_verify_result: COpenSSL.SSL_get_verify_result,
            X509_verify_cert_error_string: COpenSSL.X509_verify_cert_error_string,
            ERR_get_error: COpenSSL.ERR_get_error,
            ERR_peek_error: COpenSSL.ERR_peek_error,
            ERR_clear_error: COpenSSL.ERR_clear_error,
            ERR_error_string_n: COpenSSL.ERR_error_string_n,
            BIO_get_new_index: COpenSSL.BIO_get_new_index,
            BIO_meth_new: COpenSSL.BIO_meth_new,
            BIO_meth_free: COpenSSL.BIO_meth_free,
            BIO_meth_set_write: COpenSSL.BIO_meth_set_write,
            BIO_meth_set_read: COpenSSL.BIO_meth_set_read,
            BIO_meth_set_ctrl: COpenSSL.BIO_meth_set_ctrl,
            BIO_meth_set_create: COpenSSL.BIO_meth_set_create,
            BIO_new: COpenSSL.BIO_new,
            BIO_set_data: COpenSSL.BIO_set_data,
            BIO_get_data: COpenSSL.BIO_get_data,
            BIO_set_init: COpenSSL.BIO_set_init,
            BIO_set_flags: COpenSSL.BIO_set_flags,
            BIO_clear_flags: COpenSSL.BIO_clear_flags,
            OPENSSL_init_ssl: COpenSSL.OPENSSL_init_ssl,
            SSL_CTX_set_cert_cb: COpenSSL.SSL_CTX_set_cert_cb,
            SSL_CTX_set_cert_verify_callback: COpenSSL.SSL_CTX_set_cert_verify_callback,
            SSL_CTX_get_cert_store: COpenSSL.SSL_CTX_get_cert_store,
            X509_STORE_load_locations: COpenSSL.X509_STORE_load_locations,
            X509_verify_cert: COpenSSL.X509_verify_cert,
            SSL_use_certificate_chain_file: COpenSSL.SSL_use_certificate_chain_file,
            SSL_use_PrivateKey_file: COpenSSL.SSL_use_PrivateKey_file,
            SSL_check_private_key: COpenSSL.SSL_check_private_key,
            SSL_set_session: COpenSSL.SSL_set_session,
            SSL_get1_session: COpenSSL.SSL_get1_session,
            SSL_session_reused: COpenSSL.SSL_session_reused,
            SSL_SESSION_free: COpenSSL.SSL_SESSION_free,
            SSL_SESSION_is_resumable: COpenSSL.SSL_SESSION_is_resumable,
            d2i_SSL_SESSION: COpenSSL.d2i_SSL_SESSION,
            i2d_SSL_SESSION: COpenSSL.i2d_SSL_SESSION)
        // The first initialisation decides what a process pays for (measured here, OpenSSL
        // 3.0: ~2.2 ms with everything, ~1.2 ms like this; SSL_CTX_new is most of the rest):
        // - no openssl.cnf: the TLS settings are ours (TLS 1.2+, the library's built-in
        //   security level, which Debian compiles as 2), as upstream Calico's Go client
        //   never reads openssl.cnf either;
        // - no legacy cipher-name table: libssl fetches its ciphers from the provider (the
        //   digest table stays: certificate checks look digests up by NID);
        // - error strings only when an error is rendered (`loadErrorStrings`);
        // - no OPENSSL_cleanup at exit: a plugin process is about to end, and freeing every
        //   provider and table first costs ~0.5 ms and changes nothing outside it.
        _ = lib.OPENSSL_init_ssl(
            UInt64(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_NO_ADD_ALL_CIPHERS
                | OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS), nil)
        return lib
    }

    /// Loads libcrypto's and libssl's error texts, once, before an error is rendered (they
    /// are not loaded at start: most processes never see an OpenSSL error).
    static let loadErrorStrings: Void = {
        _ = copenssl_load_error_strings()
    }()
}
