/* core/certauth.c — client certificates proven by signing a nonce. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <kubus/err.h>

#include "certauth.h"
#include "pki.h"

int kb_cert_sign(const char *cert_file, const char *key_file,
    const uint8_t *nonce, size_t nlen, char **cert_pem, uint8_t **sig,
    size_t *siglen, char *err, size_t errlen)
{
	int rc = KB_EINVAL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	*cert_pem = kb_pki_read_file(cert_file, NULL);
	*sig = NULL;
	FILE *kf = fopen(key_file ? key_file : cert_file, "r");
	if (*cert_pem == NULL || kf == NULL) {
		snprintf(err, errlen, "cannot read %s", *cert_pem ? key_file : cert_file);
		goto out;
	}
	key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
	if (key == NULL) {
		kb_pki_ssl_err(err, errlen, "private key");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, siglen, nonce, nlen) != 1 ||
	    (*sig = malloc(*siglen)) == NULL ||
	    EVP_DigestSign(md, *sig, siglen, nonce, nlen) != 1) {
		kb_pki_ssl_err(err, errlen, "signing the nonce");
		goto out;
	}
	rc = 0;
out:
	if (kf)
		fclose(kf);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	if (rc) {
		free(*cert_pem);
		free(*sig);
		*cert_pem = NULL;
		*sig = NULL;
	}
	return rc;
}

static int subject_names(X509 *cert, char **user, char ***groups, size_t *ngroups)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return -1;
	const unsigned char *cn = ASN1_STRING_get0_data(
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	*user = strdup((const char *)cn);
	*ngroups = 0;
	*groups = calloc(17, sizeof(char *));
	for (i = -1; *groups && *ngroups < 16 &&
	     (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0;) {
		const unsigned char *o = ASN1_STRING_get0_data(
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
		(*groups)[(*ngroups)++] = strdup((const char *)o);
	}
	return *user && *groups ? 0 : -1;
}

int kb_cert_verify(const char *ca_file, const char *cert_pem, size_t cert_len,
    const uint8_t *nonce, size_t nlen, const uint8_t *sig, size_t siglen,
    char **user, char ***groups, size_t *ngroups, char *err, size_t errlen)
{
	int rc = KB_EUNAUTHORIZED;
	X509 *cert = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *sctx = NULL;
	EVP_MD_CTX *md = NULL;
	BIO *bio = BIO_new_mem_buf(cert_pem, (int)cert_len);
	*user = NULL;
	*groups = NULL;
	*ngroups = 0;
	if (bio == NULL || (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "the hello's certificate is not PEM");
		goto out;
	}
	store = X509_STORE_new();
	if (store == NULL || X509_STORE_load_locations(store, ca_file, NULL) != 1) {
		kb_pki_ssl_err(err, errlen, "loading bus.tls.ca");
		rc = KB_EINTERNAL;
		goto out;
	}
	sctx = X509_STORE_CTX_new();
	if (sctx == NULL || X509_STORE_CTX_init(sctx, store, cert, NULL) != 1)
		goto out;
	X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(sctx) != 1) {
		snprintf(err, errlen, "certificate not signed by the cluster CA: %s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) != 1 ||
	    EVP_DigestVerify(md, sig, siglen, nonce, nlen) != 1) {
		snprintf(err, errlen, "the nonce signature does not match the certificate");
		goto out;
	}
	if (subject_names(cert, user, groups, ngroups) != 0) {
		snprintf(err, errlen, "the certificate has no CN");
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		free(*user);
		for (size_t i = 0; *groups && i < *ngroups; i++)
			free((*groups)[i]);
		free(*groups);
		*user = NULL;
		*groups = NULL;
		*ngroups = 0;
	}
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	X509_free(cert);
	BIO_free(bio);
	return rc;
}
