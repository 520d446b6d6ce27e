/* core/pki.h — the bus PKI (DATA_DIR/pki) and the certificate helpers the
 * join code shares. Certificates and keys are OpenSSL objects; every PEM
 * string returned is malloc'd (the caller frees it). */
#ifndef KUBUS_CORE_PKI_H
#define KUBUS_CORE_PKI_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The name in the bus listener's certificate; workers check it. */
#define KB_BUS_SERVER_NAME "kubus-bus"

enum kb_cert_kind { KB_CERT_CA, KB_CERT_SERVER, KB_CERT_CLIENT };

/* Make DATA_DIR/pki (ca.crt/ca.key: the bus CA; bus.crt/bus.key: the
 * listener's certificate, its chain carrying the CA) if it is missing. */
int kb_pki_ensure(const char *data_dir, char *err, size_t errlen);

/* "sha256:<hex>" of the SubjectPublicKeyInfo of the first certificate in
 * the PEM file (kubeadm's --discovery-token-ca-cert-hash). */
int kb_pki_ca_hash(const char *ca_file, char *out, size_t outlen, char *err,
    size_t errlen);
void kb_pki_spki_hash(X509 *c, char *out, size_t outlen);

/* An EC P-256 key. */
EVP_PKEY *kb_pki_gen_key(void);
/* A certificate for `pub` named CN=cn (and O=org when set), signed by
 * issuer/issuer_key (self-signed when issuer is NULL); `san` for servers. */
X509 *kb_pki_make_cert(enum kb_cert_kind kind, const char *cn, const char *org,
    EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key, int days, const char *san);
char *kb_pki_cert_pem(X509 *c);
char *kb_pki_key_pem(EVP_PKEY *k);
X509 *kb_pki_read_cert(const char *path);
EVP_PKEY *kb_pki_read_key(const char *path);

/* The whole file as a NUL-terminated malloc'd string (*len its length when
 * len is set); NULL when it cannot be read or memory runs out. */
char *kb_pki_read_file(const char *path, size_t *len);

/* Write atomically (temp file, fsync, rename) with `mode`. */
int kb_pki_write_file(const char *path, const char *data, size_t len, mode_t mode,
    char *err, size_t errlen);
int kb_pki_mkdir_p(const char *path, mode_t mode);
/* err = "what: <the OpenSSL error>"; clears the error queue. */
void kb_pki_ssl_err(char *err, size_t errlen, const char *what);

#endif
