/* core/certauth.h — proving a TLS client certificate in the hello.
 *
 * nng 1.5's TLS does not tell us the peer certificate's subject, so the
 * identity is proven one level up: on a tls+tcp connection the host sends a
 * random nonce first; the peer's hello carries its certificate (PEM) and a
 * signature of the nonce made with the certificate's key. The host checks
 * the chain against bus.tls.ca and the signature, then takes CN as the user
 * and every O as a group, as kube-apiserver does for client certificates.
 */
#ifndef KUBUS_CORE_CERTAUTH_H
#define KUBUS_CORE_CERTAUTH_H

#include <stddef.h>
#include <stdint.h>

#define KB_NONCE_LEN 32

/* Sign `nonce` with the PEM private key in key_file (SHA-256). *sig is
 * malloc'd. Also returns the certificate PEM from cert_file (malloc'd). */
int kb_cert_sign(const char *cert_file, const char *key_file,
    const uint8_t *nonce, size_t nlen, char **cert_pem, uint8_t **sig,
    size_t *siglen, char *err, size_t errlen);

/* Check `cert_pem` against the CA file and `sig` over `nonce`. On success
 * *user is CN and groups[0..*ngroups) the O values (all malloc'd). */
int kb_cert_verify(const char *ca_file, const char *cert_pem, size_t cert_len,
    const uint8_t *nonce, size_t nlen, const uint8_t *sig, size_t siglen,
    char **user, char ***groups, size_t *ngroups, char *err, size_t errlen);

#endif
