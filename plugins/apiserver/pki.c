/* plugins/apiserver/pki.c — a CA, made once, and a serving certificate
 * for every name the API server answers to, made again from that CA when
 * the names change. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
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

/* --- the names the serving certificate must carry -------------------------------- */

struct names {
	char **v;         /* "IP:…" or "DNS:…", IPs in their canonical text */
	size_t n, cap;
};

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static bool names_has(const struct names *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strcasecmp(ns->v[i], name))
			return true;
	return false;
}

static int names_add(struct names *ns, const char *kind, const char *value)
{
	char buf[300];
	if (value == NULL || value[0] == '\0' || strlen(value) > 253)
		return 0;
	snprintf(buf, sizeof(buf), "%s:%s", kind, value);
	if (names_has(ns, buf))
		return 0;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **v = realloc(ns->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		ns->v = v;
		ns->cap = cap;
	}
	if ((ns->v[ns->n] = strdup(buf)) == NULL)
		return -1;
	ns->n++;
	return 0;
}

/* An IP in canonical text (so "::0001" and "::1" compare equal). */
static int names_add_ip(struct names *ns, int af, const void *addr)
{
	char text[INET6_ADDRSTRLEN];
	if (inet_ntop(af, addr, text, sizeof(text)) == NULL)
		return 0;
	return names_add(ns, "IP", text);
}

/* HOST as an IP SAN if it parses as one, else as a DNS SAN. */
static int names_add_host(struct names *ns, const char *host)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1)
		return names_add_ip(ns, AF_INET, a);
	if (inet_pton(AF_INET6, host, a) == 1)
		return names_add_ip(ns, AF_INET6, a);
	/* A DNS SAN holds only letters, digits, '-', '.' (and a leading '*'). */
	if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.*") !=
	    strlen(host))
		return 0;
	return names_add(ns, "DNS", host);
}

/* A wildcard listen address serves every address of the host: each one
 * (IPv4 only for 0.0.0.0), and the host name. */
static int names_add_host_addrs(struct names *ns, bool v6)
{
	struct ifaddrs *ifa = NULL;
	int rc = 0;
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i && rc == 0; i = i->ifa_next) {
			if (i->ifa_addr == NULL)
				continue;
			if (i->ifa_addr->sa_family == AF_INET) {
				rc = names_add_ip(ns, AF_INET,
				    &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr);
			} else if (v6 && i->ifa_addr->sa_family == AF_INET6) {
				struct in6_addr *a = &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
				/* A link-local address needs a zone, which no URL to
				 * the API server carries. */
				if (!IN6_IS_ADDR_LINKLOCAL(a))
					rc = names_add_ip(ns, AF_INET6, a);
			}
		}
		freeifaddrs(ifa);
	}
	char hn[256] = "";
	if (rc == 0 && gethostname(hn, sizeof(hn) - 1) == 0)
		rc = names_add_host(ns, hn);
	return rc;
}

/* The first address of CIDR (network + 1): the `kubernetes` Service's. */
static int names_add_first_ip(struct names *ns, const char *cidr)
{
	char buf[64];
	unsigned char a[16];
	snprintf(buf, sizeof(buf), "%s", cidr ? cidr : "");
	char *slash = strchr(buf, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	int af = strchr(buf, ':') ? AF_INET6 : AF_INET;
	int len = af == AF_INET ? 4 : 16;
	if (*end || bits < 0 || bits >= len * 8 || inet_pton(af, buf, a) != 1)
		return 0;
	for (int i = 0; i < len; i++) {
		long keep = bits - i * 8;
		a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
	for (int i = len - 1; i >= 0 && ++a[i] == 0; i--)
		;
	return names_add_ip(ns, af, a);
}

static int names_of(const struct api_pki_names *want, struct names *ns)
{
	static const char *const fixed[] = { "IP:127.0.0.1", "IP:::1", "DNS:localhost",
		"DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc" };
	char buf[300];
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(fixed) / sizeof(fixed[0]); i++)
		rc = names_add(ns, fixed[i][0] == 'I' ? "IP" : "DNS", strchr(fixed[i], ':') + 1);
	const char *domain = want->cluster_domain && want->cluster_domain[0] ?
	    want->cluster_domain : "cluster.local";
	snprintf(buf, sizeof(buf), "kubernetes.default.svc.%s", domain);
	if (rc == 0)
		rc = names_add_host(ns, buf);
	if (rc == 0)
		rc = names_add_first_ip(ns, want->service_cidr);
	/* The listen address: HOST:PORT or [V6]:PORT. */
	if (rc == 0 && want->listen && want->listen[0]) {
		snprintf(buf, sizeof(buf), "%s", want->listen);
		char *host = buf, *colon = strrchr(buf, ':');
		if (buf[0] == '[') {
			host = buf + 1;
			char *close = strchr(host, ']');
			if (close)
				*close = '\0';
		} else if (colon && strchr(buf, ':') == colon) {
			*colon = '\0';
		}
		if (!strcmp(host, "0.0.0.0") || host[0] == '\0')
			rc = names_add_host_addrs(ns, false);
		else if (!strcmp(host, "::"))
			rc = names_add_host_addrs(ns, true);
		else
			rc = names_add_host(ns, host);
	}
	/* Each extra host is a DNS name or an IP, whichever it parses as. */
	char *list = strdup(want->hosts ? want->hosts : ""), *save = NULL;
	if (list == NULL)
		return -1;
	for (char *h = strtok_r(list, ", ", &save); rc == 0 && h; h = strtok_r(NULL, ", ", &save))
		rc = names_add_host(ns, h);
	free(list);
	return rc;
}

/* The SANs of CERT, in the form names_of makes. */
static int names_in_cert(X509 *cert, struct names *ns)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int rc = 0;
	for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
			int len = ASN1_STRING_length(g->d.dNSName);
			char *s = len >= 0 ? strndup((const char *)d, (size_t)len) : NULL;
			if (s && strlen(s) == (size_t)len)
				rc = names_add(ns, "DNS", s);
			free(s);
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
			if (len == 4 || len == 16)
				rc = names_add_ip(ns, len == 4 ? AF_INET : AF_INET6, d);
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

static X509 *cert_of(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return c;
}

static EVP_PKEY *key_of(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return k;
}

/* Why the serving certificate on disk will not do (NULL: it will): it
 * does not parse, was not signed by CA, does not go with its key,
 * expires within 30 days, or lacks one of the names WANT. */
static char *unfit(const char *crt_pem, const char *key_pem, X509 *ca, const struct names *want)
{
	char why[1024] = "";
	X509 *c = cert_of(crt_pem);
	EVP_PKEY *k = key_of(key_pem);
	EVP_PKEY *cak = ca ? X509_get0_pubkey(ca) : NULL;
	time_t soon = time(NULL) + 30 * 86400;
	if (c == NULL || k == NULL) {
		snprintf(why, sizeof(why), "it does not parse");
	} else if (cak == NULL || X509_verify(c, cak) != 1) {
		snprintf(why, sizeof(why), "the CA did not sign it");
	} else if (X509_check_private_key(c, k) != 1) {
		snprintf(why, sizeof(why), "its key does not match it");
	} else if (X509_cmp_time(X509_get0_notAfter(c), &soon) <= 0) {
		snprintf(why, sizeof(why), "it expires within 30 days");
	} else {
		struct names have = { 0 };
		if (names_in_cert(c, &have) != 0) {
			snprintf(why, sizeof(why), "out of memory reading its names");
		} else {
			for (size_t i = 0; i < want->n; i++) {
				if (names_has(&have, want->v[i]))
					continue;
				size_t n = strlen(why);
				if (n == 0)
					n = (size_t)snprintf(why, sizeof(why), "it lacks");
				if (n + strlen(want->v[i]) + 8 >= sizeof(why)) {
					snprintf(why + n, sizeof(why) - n, " …");
					break;
				}
				snprintf(why + n, sizeof(why) - n, "%s %s", n > 8 ? "," : "", want->v[i]);
			}
		}
		names_free(&have);
	}
	X509_free(c);
	EVP_PKEY_free(k);
	return why[0] ? strdup(why) : NULL;
}

int api_pki_load(const char *dir, const struct api_pki_names *want, struct api_pki *out,
    char *err, size_t errlen)
{
	char ca_crt[4096], ca_key[4096], crt[4096], key[4096];
	struct names sans = { 0 };
	memset(out, 0, sizeof(*out));
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
	snprintf(crt, sizeof(crt), "%s/server.crt", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	if (names_of(want, &sans) != 0) {
		snprintf(err, errlen, "out of memory listing the serving certificate's names");
		return -1;
	}
	out->ca_pem = slurp(ca_crt);
	out->cert_pem = slurp(crt);
	out->key_pem = slurp(key);
	char *cakey_pem = slurp(ca_key);
	int rc = -1;
	EVP_PKEY *cak = NULL, *sk = NULL;
	X509 *ca = NULL, *sc = NULL;
	if (out->ca_pem)
		ca = cert_of(out->ca_pem);
	if (out->cert_pem && out->key_pem) {
		char *why = unfit(out->cert_pem, out->key_pem, ca, &sans);
		if (why == NULL) {
			rc = 0;
			goto out;
		}
		out->reissued = why;
	}
	if (ca && cakey_pem)
		cak = key_of(cakey_pem);
	if (ca == NULL || cak == NULL || X509_check_private_key(ca, cak) != 1) {
		/* A new CA: the old serving certificate (if any) goes too, and
		 * kubeconfigs holding the old CA must be written again. */
		if (out->ca_pem) {
			char *why = NULL;
			if (asprintf(&why, "%s; the CA's key is missing or does not match, so the CA "
			                   "was made again",
			        out->reissued ? out->reissued : "no serving certificate") < 0)
				why = NULL;
			free(out->reissued);
			out->reissued = why;
		}
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
	size_t sanlen = 1;
	for (size_t i = 0; i < sans.n; i++)
		sanlen += strlen(sans.v[i]) + 1;
	char *san = malloc(sanlen);
	if (san == NULL)
		goto out;
	san[0] = '\0';
	for (size_t i = 0; i < sans.n; i++) {
		if (i)
			strcat(san, ",");
		strcat(san, sans.v[i]);
	}
	add_ext(sc, ca, NID_subject_alt_name, san);
	free(san);
	add_ext(sc, ca, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(sc, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	add_ext(sc, ca, NID_ext_key_usage, "serverAuth");
	if (X509_sign(sc, cak, EVP_sha256()) == 0)
		goto out;
	free(out->cert_pem);
	if (out->key_pem)
		memset(out->key_pem, 0, strlen(out->key_pem));
	free(out->key_pem);
	out->cert_pem = pem_of(cert_pem, sc);
	out->key_pem = pem_of(key_pem, sk);
	/* The key first: a crash between the two leaves a pair that does
	 * not match, which the next start notices and re-issues. */
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
	names_free(&sans);
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
	free(p->reissued);
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
