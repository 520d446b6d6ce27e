/* plugins/apiserver/pki.h — the cluster CA, the serving certificate and
 * kubeconfig files (pki.c). */
#ifndef KUBUS_APISERVER_PKI_H
#define KUBUS_APISERVER_PKI_H

#include <stddef.h>

struct api_pki {
	char *ca_pem;     /* the CA certificate */
	char *cert_pem;   /* the serving certificate */
	char *key_pem;    /* its private key */
	char *reissued;   /* why the serving certificate was made again, or NULL */
};

/* What the serving certificate must name. Every field may be NULL. */
struct api_pki_names {
	const char *listen;         /* HOST:PORT or [V6]:PORT the API is served on */
	const char *hosts;          /* extra DNS names and IPs, comma-separated */
	const char *service_cidr;   /* its first IP is the `kubernetes` Service's */
	const char *cluster_domain; /* default cluster.local */
};

/* Load DIR/{ca,server}.{crt,key}, making whatever is missing: a CA valid
 * ten years, and a serving certificate valid one year, signed by it. Keys
 * are written 0600.
 *
 * The serving certificate names 127.0.0.1, ::1, localhost, kubernetes,
 * kubernetes.default, kubernetes.default.svc and
 * kubernetes.default.svc.DOMAIN, the first IP of the service CIDR, the
 * listen host (an IP SAN for an IP, a DNS SAN for a name; for 0.0.0.0 or
 * :: every address of the host and its host name) and `hosts`. A
 * certificate on disk that lacks one of them, does not match its key or
 * the CA, or expires within 30 days is made again from the same CA, so
 * kubeconfigs holding the CA stay valid; out->reissued then says why. */
int api_pki_load(const char *dir, const struct api_pki_names *want,
    struct api_pki *out, char *err, size_t errlen);
void api_pki_free(struct api_pki *p);

/* Write a kubeconfig (0600) for `user` with `token` against `server`,
 * the CA embedded. */
int api_kubeconfig_write(const char *path, const char *server,
    const char *ca_pem, const char *user, const char *token, char *err,
    size_t errlen);

#endif
