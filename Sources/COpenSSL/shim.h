// OpenSSL's declarations and constants for HTTPClient. Below, the constants Swift cannot
// import because their macros contain casts.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>

/// SSL_OP_IGNORE_UNEXPECTED_EOF: a peer that closes without close_notify reads as end
/// of stream.
static inline uint64_t copenssl_op_ignore_unexpected_eof(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }

/// SSL_OP_NO_TICKET: no session tickets (a plugin process never resumes a session).
static inline uint64_t copenssl_op_no_ticket(void) { return SSL_OP_NO_TICKET; }

/// SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE.
static inline long copenssl_mode_partial_moving_write(void) {
    return (long)(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

/// libcrypto's and libssl's error texts. The plugin initialises OpenSSL without them
/// (OPENSSL_INIT_NO_LOAD_*_STRINGS: ~0.25 ms per process) and loads them only to render an
/// error. The public switch (OPENSSL_INIT_LOAD_*_STRINGS) cannot undo that choice, so these
/// are the loaders it calls, which the static libraries export.
int ossl_err_load_crypto_strings(void);
int ossl_err_load_SSL_strings(void);
static inline int copenssl_load_error_strings(void) {
    return ossl_err_load_crypto_strings() && ossl_err_load_SSL_strings();
}
