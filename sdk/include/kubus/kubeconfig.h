/* kubus/kubeconfig.h — kubeconfig files for kubectl. */
#ifndef KUBUS_KUBECONFIG_H
#define KUBUS_KUBECONFIG_H

#ifdef __cplusplus
extern "C" {
#endif

/* The text of a kubeconfig with one cluster ("kubus", at `server`, trusting
 * the PEM CA `ca_pem`), one user authenticating with `token`, and a current
 * context joining them in namespace default. malloc'd; NULL on no memory. */
char *kb_kubeconfig_text(const char *server, const char *ca_pem,
    const char *user, const char *token);

#ifdef __cplusplus
}
#endif
#endif
