/* core/pki.c — the bus PKI: the cluster's bus CA and the listener's
 * certificate in DATA_DIR/pki, certificates for joining nodes, and the CA
 * hash a worker pins (see pki.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <kubus/err.h>

#include "log.h"
#include "pki.h"

#define CA_DAYS 3650

/* --- files ------------------------------------------------------------------------- */


/* Write atomically (temp file + rename) with `mode`. */
int kb_pki_write_file(const char *path, const char *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%.300s: %s", tmp, strerror(errno));
		return KB_ESYS;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w <= 0) {
			snprintf(err, errlen, "%.300s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return KB_ESYS;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		snprintf(err, errlen, "%.300s: %s", path, strerror(errno));
		unlink(tmp);
		return KB_ESYS;
	}
	return 0;
}

int kb_pki_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

char *kb_pki_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

void kb_pki_ssl_err(char *err, size_t errlen, const char *what)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

/* --- certificates -------------------------------------------------------------------- */

EVP_PKEY *kb_pki_gen_key(void)
{
	return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex == NULL)
		return -1;
	int ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

static int set_serial(X509 *cert)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}


/* A certificate for `pub` named CN=cn (and O=org when set), signed by
 * issuer/issuer_key (itself when issuer is NULL). `san` for servers. */
X509 *kb_pki_make_cert(enum kb_cert_kind kind, const char *cn, const char *org,
    EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key, int days, const char *san)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	if (c == NULL || name == NULL)
		goto fail;
	if (org && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	        (const unsigned char *)org, -1, -1, 0))
		goto fail;
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	        (const unsigned char *)cn, -1, -1, 0))
		goto fail;
	if (!X509_set_version(c, 2) || set_serial(c) || !X509_set_subject_name(c, name) ||
	    !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(c), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400) ||
	    !X509_set_pubkey(c, pub))
		goto fail;
	X509 *iss = issuer ? issuer : c;
	int rc = add_ext(c, iss, NID_subject_key_identifier, "hash");
	if (kind == KB_CERT_CA) {
		rc |= add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
		rc |= add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
	} else {
		rc |= add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
		rc |= add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
		rc |= add_ext(c, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		rc |= add_ext(c, iss, NID_ext_key_usage,
		    kind == KB_CERT_SERVER ? "serverAuth,clientAuth" : "clientAuth");
		if (san)
			rc |= add_ext(c, iss, NID_subject_alt_name, san);
	}
	if (rc || X509_sign(c, issuer_key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	return c;
fail:
	X509_NAME_free(name);
	X509_free(c);
	return NULL;
}

char *kb_pki_cert_pem(X509 *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	if (b && PEM_write_bio_X509(b, c)) {
		long n = BIO_get_mem_data(b, &p);
		out = n > 0 ? strndup(p, (size_t)n) : NULL;
	}
	BIO_free(b);
	return out;
}

char *kb_pki_key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
		long n = BIO_get_mem_data(b, &p);
		out = n > 0 ? strndup(p, (size_t)n) : NULL;
	}
	BIO_free(b);
	return out;
}

X509 *kb_pki_read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	return c;
}

EVP_PKEY *kb_pki_read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	return k;
}

void kb_pki_spki_hash(X509 *c, char *out, size_t outlen)
{
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &der);
	if (n <= 0) {
		snprintf(out, outlen, "sha256:?");
		return;
	}
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	size_t off = (size_t)snprintf(out, outlen, "sha256:");
	for (int i = 0; i < SHA256_DIGEST_LENGTH && off + 2 < outlen; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%02x", md[i]);
}

int kb_pki_ca_hash(const char *ca_file, char *out, size_t outlen, char *err,
    size_t errlen)
{
	X509 *c = kb_pki_read_cert(ca_file);
	if (c == NULL) {
		snprintf(err, errlen, "%s: no PEM certificate", ca_file);
		ERR_clear_error();
		return KB_ENOENT;
	}
	kb_pki_spki_hash(c, out, outlen);
	X509_free(c);
	return 0;
}

static int write_pair(const char *dir, const char *base, X509 *c, X509 *chain,
    EVP_PKEY *k, char *err, size_t errlen)
{
	char path[PATH_MAX];
	char *kp = kb_pki_key_pem(k), *cp = kb_pki_cert_pem(c), *chp = chain ? kb_pki_cert_pem(chain) : NULL;
	int rc = KB_ENOMEM;
	if (kp && cp && (chain == NULL || chp)) {
		snprintf(path, sizeof(path), "%s/%s.key", dir, base);
		rc = kb_pki_write_file(path, kp, strlen(kp), 0600, err, errlen);
		if (rc == 0) {
			/* The serving chain carries the CA so a joiner can pin it. */
			size_t n = strlen(cp) + (chp ? strlen(chp) : 0) + 1;
			char *all = malloc(n);
			if (all == NULL) {
				rc = KB_ENOMEM;
			} else {
				snprintf(all, n, "%s%s", cp, chp ? chp : "");
				snprintf(path, sizeof(path), "%s/%s.crt", dir, base);
				rc = kb_pki_write_file(path, all, strlen(all), 0644, err, errlen);
				free(all);
			}
		}
	}
	if (kp)
		explicit_bzero(kp, strlen(kp));
	free(kp);
	free(cp);
	free(chp);
	if (rc == KB_ENOMEM)
		snprintf(err, errlen, "out of memory writing %s/%s", dir, base);
	return rc;
}

static pthread_mutex_t pki_mu = PTHREAD_MUTEX_INITIALIZER;

int kb_pki_ensure(const char *data_dir, char *err, size_t errlen)
{
	char dir[PATH_MAX], ca_crt[PATH_MAX + 16], ca_key[PATH_MAX + 16], bus_crt[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/pki", data_dir);
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
	snprintf(bus_crt, sizeof(bus_crt), "%s/bus.crt", dir);
	pthread_mutex_lock(&pki_mu);
	int rc = 0;
	EVP_PKEY *cak = NULL, *bk = NULL;
	X509 *ca = NULL, *bc = NULL;
	if (access(ca_crt, R_OK) == 0 && access(ca_key, R_OK) == 0 && access(bus_crt, R_OK) == 0)
		goto out;
	if (kb_pki_mkdir_p(dir, 0700) != 0) {
		snprintf(err, errlen, "%.300s: %s", dir, strerror(errno));
		rc = KB_ESYS;
		goto out;
	}
	if (access(ca_crt, R_OK) == 0 && access(ca_key, R_OK) == 0) {
		ca = kb_pki_read_cert(ca_crt);
		cak = kb_pki_read_key(ca_key);
		if (ca == NULL || cak == NULL) {
			kb_pki_ssl_err(err, errlen, "reading the bus CA in DATA_DIR/pki");
			rc = KB_EINVAL;
			goto out;
		}
	} else {
		cak = kb_pki_gen_key();
		ca = cak ? kb_pki_make_cert(KB_CERT_CA, "kubus-bus-ca", NULL, cak, NULL, cak, CA_DAYS, NULL) : NULL;
		if (ca == NULL) {
			kb_pki_ssl_err(err, errlen, "making the bus CA");
			rc = KB_EINTERNAL;
			goto out;
		}
		if ((rc = write_pair(dir, "ca", ca, NULL, cak, err, errlen)))
			goto out;
	}
	char hn[256] = "localhost", san[600];
	gethostname(hn, sizeof(hn) - 1);
	for (char *p = hn; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,DNS:%s,IP:127.0.0.1",
	    KB_BUS_SERVER_NAME, hn);
	bk = kb_pki_gen_key();
	bc = bk ? kb_pki_make_cert(KB_CERT_SERVER, KB_BUS_SERVER_NAME, NULL, bk, ca, cak, CA_DAYS, san) : NULL;
	if (bc == NULL) {
		kb_pki_ssl_err(err, errlen, "making the bus serving certificate");
		rc = KB_EINTERNAL;
		goto out;
	}
	rc = write_pair(dir, "bus", bc, ca, bk, err, errlen);
	if (rc == 0)
		kb_clog(KB_LOG_INFO, "bus PKI made", "dir=%s", dir);
out:
	pthread_mutex_unlock(&pki_mu);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(bk);
	X509_free(ca);
	X509_free(bc);
	return rc;
}
