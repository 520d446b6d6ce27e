/* plugins/apiserver/pki.c — a CA and a serving certificate, made once. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <kubus/kubeconfig.h>

#include "pki.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char *buf = malloc(65536);
	size_t n = buf ? fread(buf, 1, 65535, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static int write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	fchmod(fd, mode);
	int rc = (w == (ssize_t)n && fsync(fd) == 0) ? 0 : -1;
	close(fd);
	return rc;
}

static char *pem_of(int (*fn)(BIO *, void *), void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && fn(b, obj) == 1) {
		char *data;
		long n = BIO_get_mem_data(b, &data);
		out = strndup(data, (size_t)n);
	}
	BIO_free(b);
	return out;
}

static int key_pem(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int cert_pem(BIO *b, void *c)
{
	return PEM_write_bio_X509(b, c);
}

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	if (c && EVP_PKEY_keygen_init(c) == 1 &&
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_X9_62_prime256v1) == 1)
		EVP_PKEY_keygen(c, &k);
	EVP_PKEY_CTX_free(c);
	return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext) {
		X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
	}
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, long days)
{
	X509 *c = X509_new();
	unsigned char serial[16];
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_set_version(c, 2);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), days * 86400);
	X509_set_pubkey(c, key);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	return c;
}

int api_pki_load(const char *dir, const char *hosts, struct api_pki *out,
    char *err, size_t errlen)
{
	char ca_crt[4096], ca_key[4096], crt[4096], key[4096];
	memset(out, 0, sizeof(*out));
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
	snprintf(crt, sizeof(crt), "%s/server.crt", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	out->ca_pem = slurp(ca_crt);
	out->cert_pem = slurp(crt);
	out->key_pem = slurp(key);
	char *cakey_pem = slurp(ca_key);
	if (out->ca_pem && out->cert_pem && out->key_pem) {
		free(cakey_pem);
		return 0;
	}
	int rc = -1;
	EVP_PKEY *cak = NULL, *sk = NULL;
	X509 *ca = NULL, *sc = NULL;
	if (out->ca_pem && cakey_pem) {
		BIO *b = BIO_new_mem_buf(out->ca_pem, -1);
		ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		b = BIO_new_mem_buf(cakey_pem, -1);
		cak = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if (ca == NULL || cak == NULL) {
		/* A new CA: the old serving certificate (if any) goes too. */
		X509_free(ca);
		EVP_PKEY_free(cak);
		cak = new_key();
		ca = cak ? new_cert(cak, "kubus-ca", 3650) : NULL;
		if (ca == NULL)
			goto out;
		X509_set_issuer_name(ca, X509_get_subject_name(ca));
		add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
		add_ext(ca, ca, NID_subject_key_identifier, "hash");
		if (X509_sign(ca, cak, EVP_sha256()) == 0)
			goto out;
		free(out->ca_pem);
		free(cakey_pem);
		out->ca_pem = pem_of(cert_pem, ca);
		cakey_pem = pem_of(key_pem, cak);
		if (!out->ca_pem || !cakey_pem || write_file(ca_key, cakey_pem, 0600) ||
		    write_file(ca_crt, out->ca_pem, 0644))
			goto out;
	}
	sk = new_key();
	sc = sk ? new_cert(sk, "kube-apiserver", 365) : NULL;
	if (sc == NULL)
		goto out;
	X509_set_issuer_name(sc, X509_get_subject_name(ca));
	char san[2048] = "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
			 "DNS:kubernetes.default.svc,IP:127.0.0.1";
	/* Each extra host is a DNS name or an IP, whichever it parses as. */
	char *list = strdup(hosts ? hosts : ""), *save = NULL;
	for (char *h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(san);
		bool ip = strspn(h, "0123456789.") == strlen(h) || strchr(h, ':');
		snprintf(san + n, sizeof(san) - n, ",%s:%s", ip ? "IP" : "DNS", h);
	}
	free(list);
	add_ext(sc, ca, NID_subject_alt_name, san);
	add_ext(sc, ca, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(sc, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	add_ext(sc, ca, NID_ext_key_usage, "serverAuth");
	if (X509_sign(sc, cak, EVP_sha256()) == 0)
		goto out;
	free(out->cert_pem);
	free(out->key_pem);
	out->cert_pem = pem_of(cert_pem, sc);
	out->key_pem = pem_of(key_pem, sk);
	if (!out->cert_pem || !out->key_pem || write_file(key, out->key_pem, 0600) ||
	    write_file(crt, out->cert_pem, 0644))
		goto out;
	rc = 0;
out:
	if (rc) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		snprintf(err, errlen, "cannot make the API server's certificates in %s: %s", dir,
		    buf[0] ? buf : strerror(errno));
		api_pki_free(out);
	}
	if (cakey_pem) {
		memset(cakey_pem, 0, strlen(cakey_pem));
		free(cakey_pem);
	}
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	X509_free(ca);
	X509_free(sc);
	return rc;
}

void api_pki_free(struct api_pki *p)
{
	free(p->ca_pem);
	free(p->cert_pem);
	if (p->key_pem) {
		memset(p->key_pem, 0, strlen(p->key_pem));
		free(p->key_pem);
	}
	memset(p, 0, sizeof(*p));
}

int api_kubeconfig_write(const char *path, const char *server, const char *ca_pem,
    const char *user, const char *token, char *err, size_t errlen)
{
	char *text = kb_kubeconfig_text(server, ca_pem, user, token);
	int rc = text ? write_file(path, text, 0600) : -1;
	if (rc)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	if (text) {
		memset(text, 0, strlen(text));
		free(text);
	}
	return rc;
}
