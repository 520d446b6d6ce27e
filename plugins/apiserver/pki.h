/* plugins/apiserver/pki.h — the cluster CA, the serving certificate and
 * kubeconfig files (pki.c). */
#ifndef KUBUS_APISERVER_PKI_H
#define KUBUS_APISERVER_PKI_H

#include <stddef.h>

struct api_pki {
	char *ca_pem;     /* the CA certificate */
	char *cert_pem;   /* the serving certificate */
	char *key_pem;    /* its private key */
};

/* Load DIR/{ca,server}.{crt,key}, making whatever is missing: a CA valid
 * ten years, and a serving certificate for `hosts` (comma-separated DNS
 * names and IPs; localhost, 127.0.0.1 and kubernetes.default.svc are always
 * in) valid one year, signed by it. Keys are written 0600. */
int api_pki_load(const char *dir, const char *hosts, struct api_pki *out,
    char *err, size_t errlen);
void api_pki_free(struct api_pki *p);

/* Write a kubeconfig (0600) for `user` with `token` against `server`,
 * the CA embedded. */
int api_kubeconfig_write(const char *path, const char *server,
    const char *ca_pem, const char *user, const char *token, char *err,
    size_t errlen);

#endif
