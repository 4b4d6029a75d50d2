/*
 * tls.c - OpenSSL server contexts and the self-signed certificate.
 *
 * Runs in the parent (certificate generation, as root before any
 * privilege is dropped; checking a reloaded certificate) and in net
 * (contexts: from the files before chroot, from descriptors the parent
 * passes on reload).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

static void
tls_error(char *err, size_t errlen, const char *what, const char *file)
{
	char	ossl[256];

	ERR_error_string_n(ERR_get_error(), ossl, sizeof(ossl));
	snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "",
	    file ? file : "", ossl);
}

/* Keys are never encrypted here: no prompt on a terminal, ever. */
static int
no_password(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

/* The leaf certificate, then any chain certificates after it. */
static int
use_chain(SSL_CTX *ctx, BIO *bio)
{
	X509	*x;
	int	 ok;

	if ((x = PEM_read_bio_X509_AUX(bio, NULL, no_password, NULL)) == NULL)
		return 0;
	ok = SSL_CTX_use_certificate(ctx, x);
	X509_free(x);
	if (ok != 1 || SSL_CTX_clear_chain_certs(ctx) != 1)
		return 0;
	while ((x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			return 0;
		}
	/* The loop ends at the end of the file: not an error. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
		return 0;
	ERR_clear_error();
	return 1;
}

static int
use_key(SSL_CTX *ctx, BIO *bio)
{
	EVP_PKEY	*pkey;
	int		 ok;

	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL))
	    == NULL)
		return 0;
	ok = SSL_CTX_use_PrivateKey(ctx, pkey);
	EVP_PKEY_free(pkey);
	return ok;
}

SSL_CTX *
tls_server_ctx_fd(int cert_fd, int key_fd, const char *cert,
    const char *key, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	BIO	*cb = NULL, *kb = NULL;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_error(err, errlen, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	if ((cb = BIO_new_fd(cert_fd, BIO_NOCLOSE)) == NULL ||
	    (kb = BIO_new_fd(key_fd, BIO_NOCLOSE)) == NULL) {
		tls_error(err, errlen, "BIO_new_fd", NULL);
		goto fail;
	}
	if (!use_chain(ctx, cb)) {
		tls_error(err, errlen, "cannot load certificate", cert);
		goto fail;
	}
	if (use_key(ctx, kb) != 1) {
		tls_error(err, errlen, "cannot load key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "key does not match certificate", cert);
		goto fail;
	}
	BIO_free(cb);
	BIO_free(kb);
	return ctx;
fail:
	BIO_free(cb);
	BIO_free(kb);
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_open(const char *cert, const char *key, int *cfd, int *kfd, char *err,
    size_t errlen)
{
	*kfd = -1;
	if ((*cfd = open(cert, O_RDONLY | O_CLOEXEC)) != -1 &&
	    (*kfd = open(key, O_RDONLY | O_CLOEXEC)) != -1)
		return 0;
	snprintf(err, errlen, "cannot open %s: %s", *cfd == -1 ? cert : key,
	    strerror(errno));
	if (*cfd != -1)
		close(*cfd);
	*cfd = -1;
	return -1;
}

static int
write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x509)
{
	FILE	*f;
	int	 fd, ok;

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode))
	    == -1)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	ok = pkey ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)
	    : PEM_write_X509(f, x509);
	if (fflush(f) != 0 || fsync(fd) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int
tls_make_selfsigned(const char *cert, const char *key, const char *cn,
    char *err, size_t errlen)
{
	EVP_PKEY	*pkey;
	X509		*x;
	X509_NAME	*name;
	X509_EXTENSION	*ext;
	X509V3_CTX	 v3;
	char		 san[300];
	int		 r = -1;

	if ((pkey = EVP_EC_gen("P-256")) == NULL) {
		tls_error(err, errlen, "cannot make a key", NULL);
		return -1;
	}
	if ((x = X509_new()) == NULL)
		goto out_key;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	snprintf(san, sizeof(san), "DNS:%s", cn);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext != NULL) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, pkey, EVP_sha256()) == 0) {
		tls_error(err, errlen, "cannot sign certificate", cert);
		goto out_x509;
	}
	if (write_pem(key, 0600, pkey, NULL) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", key,
		    strerror(errno));
		goto out_x509;
	}
	if (write_pem(cert, 0644, NULL, x) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", cert,
		    strerror(errno));
		goto out_x509;
	}
	r = 0;
out_x509:
	X509_free(x);
out_key:
	EVP_PKEY_free(pkey);
	return r;
}

void
tls_describe(SSL *ssl, char *buf, size_t size)
{
	const SSL_CIPHER	*c = SSL_get_current_cipher(ssl);
	int			 alg = 0, bits;

	bits = SSL_CIPHER_get_bits(c, &alg);
	snprintf(buf, size, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(ssl), SSL_CIPHER_get_name(c), bits, alg);
}

void
tls_log_fields(SSL *ssl, char *buf, size_t size)
{
	const SSL_CIPHER	*c = SSL_get_current_cipher(ssl);

	snprintf(buf, size, "tls=%s cipher=%s bits=%d", SSL_get_version(ssl),
	    SSL_CIPHER_get_name(c), SSL_CIPHER_get_bits(c, NULL));
}
