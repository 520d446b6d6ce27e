/* sdk/src/kubeconfig.c — kubeconfig text, shared by the API server (which
 * writes admin.kubeconfig) and `kubus kubeconfig`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubeconfig.h>

static char *base64(const char *s)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; out && i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
		    (i + 2 < n ? p[i + 2] : 0);
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	if (out)
		*o = '\0';
	return out;
}

char *kb_kubeconfig_text(const char *server, const char *ca_pem,
    const char *user, const char *token)
{
	char *ca = base64(ca_pem ? ca_pem : "");
	char *text = NULL;
	if (ca && asprintf(&text,
	              "apiVersion: v1\n"
	              "kind: Config\n"
	              "clusters:\n"
	              "- name: kubus\n"
	              "  cluster:\n"
	              "    server: %s\n"
	              "    certificate-authority-data: %s\n"
	              "users:\n"
	              "- name: %s\n"
	              "  user:\n"
	              "    token: %s\n"
	              "contexts:\n"
	              "- name: kubus\n"
	              "  context:\n"
	              "    cluster: kubus\n"
	              "    user: %s\n"
	              "    namespace: default\n"
	              "current-context: kubus\n",
	              server, ca, user, token, user) < 0)
		text = NULL;
	free(ca);
	return text;
}
