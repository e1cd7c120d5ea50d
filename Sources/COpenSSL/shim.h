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
