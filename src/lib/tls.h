/*
 * tls.h - OpenSSL contexts, and the self-signed certificate made at
 * first start (R7.8).
 */
#ifndef LIB_TLS_H
#define LIB_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Open the certificate and key files: 0, or -1 with err (naming the
 * file) and nothing left open. */
int	tls_open(const char *cert, const char *key, int *cert_fd, int *key_fd,
	    char *err, size_t errlen);

/*
 * A server context with the certificate chain and key (PEM) read from
 * these descriptors from their offset to the end, TLS 1.2 at least.
 * NULL with err filled (naming the file cert or key).
 */
SSL_CTX	*tls_server_ctx_fd(int cert_fd, int key_fd, const char *cert,
	    const char *key, char *err, size_t errlen);

/*
 * Make a self-signed certificate for cn (EC P-256, ten years, subject
 * alternative name DNS:cn) and write key (mode 0600) and cert (0644).
 * Returns 0, or -1 with err.
 */
int	tls_make_selfsigned(const char *cert, const char *key, const char *cn,
	    char *err, size_t errlen);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
void	tls_describe(SSL *ssl, char *buf, size_t size);
/* The same for a log line: "tls=TLSv1.3 cipher=NAME bits=256". */
void	tls_log_fields(SSL *ssl, char *buf, size_t size);

#endif
