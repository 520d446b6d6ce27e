/* core/join.c — the control plane's side of joining: bootstrap tokens and
 * the `join` service (see join.h; certificates are pki.c's, the worker's
 * side and the command line join_cli.c's). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <kubus/kubus.h>

#include "auth.h"
#include "host.h"
#include "join.h"
#include "log.h"
#include "pki.h"

#define BOOTSTRAP_GROUP "system:bootstrappers"
#define BOOTSTRAP_USER "system:bootstrap:"
#define NODE_CERT_DAYS 365

static pthread_mutex_t join_mu = PTHREAD_MUTEX_INITIALIZER;

/* --- bootstrap tokens -------------------------------------------------------------- */
/* DATA_DIR/bootstrap-tokens.csv: id,secret,expires (unix seconds, 0 never). */

struct btok {
	char id[7], secret[17];
	long long expires;
};

static bool token_shape(const char *t, struct btok *out)
{
	if (strlen(t) != 23 || t[6] != '.')
		return false;
	for (int i = 0; i < 23; i++) {
		if (i == 6)
			continue;
		if (!(islower((unsigned char)t[i]) || isdigit((unsigned char)t[i])))
			return false;
	}
	if (out) {
		memcpy(out->id, t, 6);
		out->id[6] = '\0';
		memcpy(out->secret, t + 7, 16);
		out->secret[16] = '\0';
	}
	return true;
}

bool kb_join_token_shape(const char *t)
{
	return token_shape(t, NULL);
}

/* Every token in the file; *n of them (malloc'd array). */
static int btok_load(const char *path, struct btok **out, size_t *n, char *err,
    size_t errlen)
{
	*out = NULL;
	*n = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%.300s: %s", path, strerror(errno));
		return KB_ESYS;
	}
	char line[256];
	size_t cap = 0;
	while (fgets(line, sizeof(line), f)) {
		struct btok t;
		char tok[32];
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%6[a-z0-9],%16[a-z0-9],%lld", t.id, t.secret, &t.expires) != 3)
			continue;
		snprintf(tok, sizeof(tok), "%s.%s", t.id, t.secret);
		if (!token_shape(tok, NULL))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			struct btok *nb = realloc(*out, cap * sizeof(**out));
			if (nb == NULL) {
				fclose(f);
				free(*out);
				*out = NULL;
				snprintf(err, errlen, "out of memory");
				return KB_ENOMEM;
			}
			*out = nb;
		}
		(*out)[(*n)++] = t;
	}
	fclose(f);
	return 0;
}

static int btok_save(const char *path, const struct btok *t, size_t n, char *err,
    size_t errlen)
{
	size_t cap = 128 + n * 64, len = 0;
	char *buf = malloc(cap);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return KB_ENOMEM;
	}
	len += (size_t)snprintf(buf, cap, "# kubus bootstrap tokens: id,secret,expires (unix s, 0 = never)\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s,%s,%lld\n", t[i].id,
		    t[i].secret, t[i].expires);
	int rc = kb_pki_write_file(path, buf, len, 0600, err, errlen);
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

static int random_chars(char *out, size_t n)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[64];
	if (n > sizeof(r) || getrandom(r, n, 0) != (ssize_t)n)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = alpha[r[i] % 36]; /* 256 % 36 bias: negligible for a bootstrap secret */
	out[n] = '\0';
	return 0;
}

/* "24h", "90m", "1h30m", "45s", "2d", "0" (never). */
int kb_join_parse_ttl(const char *s, long long *out)
{
	long long total = 0;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	while (*s) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (end == s || errno || v < 0)
			return -1;
		long long mul;
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return -1;
		}
		if (v > (1LL << 40) / mul)
			return -1;
		total += v * mul;
		s = end + 1;
	}
	if (total <= 0)
		return -1;
	*out = total;
	return 0;
}

static void fmt_time(long long t, char *out, size_t outlen)
{
	if (t == 0) {
		snprintf(out, outlen, "never");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int append_token_line(const char *token_file, const struct btok *t, char *err,
    size_t errlen)
{
	int fd = open(token_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%.300s: %s", token_file, strerror(errno));
		return KB_ESYS;
	}
	char line[256];
	int n = snprintf(line, sizeof(line), "%s.%s,%s%s,%s%s,\"%s\"\n", t->id, t->secret,
	    BOOTSTRAP_USER, t->id, BOOTSTRAP_USER, t->id, BOOTSTRAP_GROUP);
	int rc = write(fd, line, (size_t)n) == n ? 0 : KB_ESYS;
	if (rc)
		snprintf(err, errlen, "%.300s: %s", token_file, strerror(errno));
	explicit_bzero(line, sizeof(line));
	close(fd);
	return rc;
}

int kb_join_token_create(const char *data_dir, const char *token_file, long long ttl,
    char *err, size_t errlen)
{
	char path[PATH_MAX + 32], hash[80];
	int rc = kb_pki_ensure(data_dir, err, errlen);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/pki/ca.crt", data_dir);
	if ((rc = kb_pki_ca_hash(path, hash, sizeof(hash), err, errlen)))
		return rc;
	struct btok *all, t;
	size_t n;
	snprintf(path, sizeof(path), "%s/bootstrap-tokens.csv", data_dir);
	pthread_mutex_lock(&join_mu);
	rc = btok_load(path, &all, &n, err, errlen);
	if (rc) {
		pthread_mutex_unlock(&join_mu);
		return rc;
	}
	if (random_chars(t.id, 6) || random_chars(t.secret, 16)) {
		snprintf(err, errlen, "no randomness");
		rc = KB_EINTERNAL;
		goto out;
	}
	t.expires = ttl ? (long long)time(NULL) + ttl : 0;
	struct btok *nb = realloc(all, (n + 1) * sizeof(*all));
	if (nb == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = KB_ENOMEM;
		goto out;
	}
	all = nb;
	all[n++] = t;
	if ((rc = btok_save(path, all, n, err, errlen)) == 0 &&
	    (rc = append_token_line(token_file, &t, err, errlen)) == 0) {
		char exp[64];
		fmt_time(t.expires, exp, sizeof(exp));
		printf("%s.%s\n%s\n", t.id, t.secret, hash);
		fprintf(stderr, "# expires %s; on a worker:\n#   kubus join HOST:PORT --token %s.%s --ca-hash %s\n",
		    exp, t.id, t.secret, hash);
	}
out:
	pthread_mutex_unlock(&join_mu);
	if (all)
		explicit_bzero(all, n * sizeof(*all));
	free(all);
	explicit_bzero(&t, sizeof(t));
	return rc;
}

int kb_join_token_list(const char *data_dir, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/bootstrap-tokens.csv", data_dir);
	struct btok *all;
	size_t n;
	int rc = btok_load(path, &all, &n, err, errlen);
	if (rc)
		return rc;
	long long now = (long long)time(NULL);
	printf("%-8s %-22s %s\n", "ID", "EXPIRES", "STATUS");
	for (size_t i = 0; i < n; i++) {
		char exp[64];
		fmt_time(all[i].expires, exp, sizeof(exp));
		printf("%-8s %-22s %s\n", all[i].id, exp,
		    all[i].expires && all[i].expires <= now ? "expired" : "valid");
	}
	free(all);
	return 0;
}

int kb_join_token_revoke(const char *data_dir, const char *token_file, const char *what,
    char *err, size_t errlen)
{
	char path[PATH_MAX + 32], id[8];
	snprintf(id, sizeof(id), "%.6s", what);
	if (!(strlen(what) == 6 || token_shape(what, NULL))) {
		snprintf(err, errlen, "`%s` is neither a token id ([a-z0-9]{6}) nor a token", what);
		return KB_EINVAL;
	}
	snprintf(path, sizeof(path), "%s/bootstrap-tokens.csv", data_dir);
	pthread_mutex_lock(&join_mu);
	struct btok *all;
	size_t n, kept = 0;
	int rc = btok_load(path, &all, &n, err, errlen);
	if (rc) {
		pthread_mutex_unlock(&join_mu);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].id, id) != 0)
			all[kept++] = all[i];
	if (kept == n) {
		snprintf(err, errlen, "no bootstrap token with id %s", id);
		rc = KB_ENOTFOUND;
	} else {
		rc = btok_save(path, all, kept, err, errlen);
	}
	pthread_mutex_unlock(&join_mu);
	free(all);
	if (rc)
		return rc;
	char user[64];
	snprintf(user, sizeof(user), "%s%s", BOOTSTRAP_USER, id);
	rc = kb_tokens_revoke(token_file, user, err, errlen);
	if (rc == KB_ENOTFOUND || rc == KB_ENOENT)
		rc = 0; /* gone from the token file already */
	if (rc == 0)
		printf("revoked %s\n", id);
	return rc;
}

/* --- the `join` service ------------------------------------------------------------- */

bool kb_join_node_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
		        s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* Who holds `node` in DATA_DIR/pki/nodes.csv (name,keyhash): 1 same key,
 * 0 nobody (recorded now), -1 another key. */
static int node_claim(const char *data_dir, const char *node, const char *keyhash,
    char *err, size_t errlen)
{
	char path[PATH_MAX + 32], line[512];
	snprintf(path, sizeof(path), "%s/pki/nodes.csv", data_dir);
	FILE *f = fopen(path, "r");
	int found = 0;
	while (f && found == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *comma = strchr(line, ',');
		if (comma == NULL)
			continue;
		*comma = '\0';
		if (strcmp(line, node) == 0)
			found = strcmp(comma + 1, keyhash) == 0 ? 1 : -1;
	}
	if (f)
		fclose(f);
	if (found)
		return found;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int n = snprintf(line, sizeof(line), "%s,%s\n", node, keyhash);
	if (fd < 0 || write(fd, line, (size_t)n) != n) {
		snprintf(err, errlen, "%.300s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -2;
	}
	close(fd);
	return 0;
}

static void join_csr(struct kb_host *h, kb_msg *req)
{
	const char *who = kb_msg_principal(req);
	char err[512] = "", path[PATH_MAX + 32], keyhash[80];
	if (!kb_msg_in_group(req, BOOTSTRAP_GROUP) ||
	    strncmp(who, BOOTSTRAP_USER, strlen(BOOTSTRAP_USER)) != 0) {
		kb_reply_err(req, KB_EFORBIDDEN, "%s may not join nodes: only a bootstrap token may", who);
		return;
	}
	const char *id = who + strlen(BOOTSTRAP_USER);
	/* Expiry and revocation are the join service's to check: the token
	 * file that let the hello in knows neither. */
	struct btok *all;
	size_t n;
	snprintf(path, sizeof(path), "%s/bootstrap-tokens.csv", h->data_dir);
	pthread_mutex_lock(&join_mu);
	int rc = btok_load(path, &all, &n, err, sizeof(err));
	pthread_mutex_unlock(&join_mu);
	if (rc) {
		kb_reply_err(req, KB_EINTERNAL, "bootstrap tokens: %s", err);
		return;
	}
	long long expires = -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].id, id) == 0)
			expires = all[i].expires;
	explicit_bzero(all, n * sizeof(*all));
	free(all);
	if (expires < 0) {
		kb_reply_err(req, KB_EUNAUTHORIZED, "bootstrap token %s was revoked", id);
		return;
	}
	if (expires && expires <= (long long)time(NULL)) {
		char t[64];
		fmt_time(expires, t, sizeof(t));
		kb_reply_err(req, KB_EUNAUTHORIZED, "bootstrap token %s expired at %s", id, t);
		return;
	}
	const msgpack_object *b = kb_msg_body(req);
	char *node = kb_mp_strdup(b, "node"), *csr = kb_mp_strdup(b, "csr");
	X509_REQ *r = NULL;
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *cak = NULL;
	char *pem = NULL, *ca_pem = NULL;
	if (node == NULL || csr == NULL) {
		kb_reply_err(req, KB_EBADREQUEST, "join csr needs {node, csr} strings");
		goto out;
	}
	if (!kb_join_node_name_ok(node)) {
		kb_reply_err(req, KB_EINVAL,
		    "node name `%.80s` is not a DNS-1123 name (lower case, digits, '-', '.', at most 63)", node);
		goto out;
	}
	BIO *bio = BIO_new_mem_buf(csr, -1);
	r = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	EVP_PKEY *pub = r ? X509_REQ_get0_pubkey(r) : NULL;
	if (r == NULL || pub == NULL || X509_REQ_verify(r, pub) != 1) {
		kb_reply_err(req, KB_EBADREQUEST, "the csr is not a PEM certificate request signed by its own key");
		goto out;
	}
	{
		unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
		int dl = i2d_PUBKEY(pub, &der);
		if (dl <= 0) {
			kb_reply_err(req, KB_EBADREQUEST, "the csr's public key cannot be encoded");
			goto out;
		}
		SHA256(der, (size_t)dl, md);
		OPENSSL_free(der);
		size_t off = (size_t)snprintf(keyhash, sizeof(keyhash), "sha256:");
		for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
			off += (size_t)snprintf(keyhash + off, sizeof(keyhash) - off, "%02x", md[i]);
	}
	snprintf(path, sizeof(path), "%s/pki/ca.crt", h->data_dir);
	ca = kb_pki_read_cert(path);
	snprintf(path, sizeof(path), "%s/pki/ca.key", h->data_dir);
	cak = kb_pki_read_key(path);
	if (ca == NULL || cak == NULL) {
		kb_reply_err(req, KB_EINTERNAL, "this host's bus CA (DATA_DIR/pki) cannot be read");
		goto out;
	}
	pthread_mutex_lock(&join_mu);
	int claim = node_claim(h->data_dir, node, keyhash, err, sizeof(err));
	pthread_mutex_unlock(&join_mu);
	if (claim == -1) {
		kb_reply_err(req, KB_EFORBIDDEN,
		    "node name %s is already registered by another key; choose another --node-name", node);
		goto out;
	}
	if (claim == -2) {
		kb_reply_err(req, KB_EINTERNAL, "recording the node: %s", err);
		goto out;
	}
	char cn[96];
	snprintf(cn, sizeof(cn), "node:%s", node);
	cert = kb_pki_make_cert(KB_CERT_CLIENT, cn, "system:nodes", pub, ca, cak, NODE_CERT_DAYS, NULL);
	pem = cert ? kb_pki_cert_pem(cert) : NULL;
	ca_pem = kb_pki_cert_pem(ca);
	if (pem == NULL || ca_pem == NULL) {
		kb_pki_ssl_err(err, sizeof(err), "signing");
		kb_reply_err(req, KB_EINTERNAL, "%s", err);
		goto out;
	}
	kb_clog(KB_LOG_INFO, "node certificate issued", "node=%s token=%s key=%.23s", node, id, keyhash);
	kb_body *rep = kb_mp_body("{s:s, s:s, s:s}", "cert", pem, "ca", ca_pem, "user", cn);
	if (rep == NULL)
		kb_reply_err(req, KB_ENOMEM, "out of memory");
	else if (kb_reply(req, rep) != 0)
		kb_body_unref(rep);
out:
	ERR_clear_error();
	free(node);
	free(csr);
	free(pem);
	free(ca_pem);
	X509_REQ_free(r);
	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(cak);
}

static void join_serve(void *arg, kb_msg *req)
{
	if (strcmp(kb_msg_op(req), "csr") == 0)
		join_csr(arg, req);
	else
		kb_reply_err(req, KB_EBADREQUEST, "the join service has no op `%s`; expected csr",
		    kb_msg_op(req));
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	    sa.st_ino == sb.st_ino;
}

int kb_join_prepare(struct kb_host *h, char *err, size_t errlen)
{
	if (h->only_instance)
		return 0;
	bool tls = false;
	for (size_t i = 0; h->listen && h->listen[i]; i++)
		if (strncmp(h->listen[i], "tls+tcp://", 10) == 0)
			tls = true;
	char ca[PATH_MAX + 32], key[PATH_MAX + 32], crt[PATH_MAX + 32], ckey[PATH_MAX + 32];
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", h->data_dir);
	snprintf(key, sizeof(key), "%s/pki/bus.key", h->data_dir);
	snprintf(crt, sizeof(crt), "%s/pki/bus.crt", h->data_dir);
	snprintf(ckey, sizeof(ckey), "%s/pki/ca.key", h->data_dir);
	if (tls && h->tls_cert == NULL && h->tls_ca == NULL) {
		int rc = kb_pki_ensure(h->data_dir, err, errlen);
		if (rc)
			return rc;
		h->tls_cert = strdup(crt);
		h->tls_key = strdup(key);
		h->tls_ca = strdup(ca);
		if (h->tls_cert == NULL || h->tls_key == NULL || h->tls_ca == NULL) {
			snprintf(err, errlen, "out of memory");
			return KB_ENOMEM;
		}
	}
	/* Only a CA the bus itself trusts may sign node certificates. */
	if (!tls || h->tls_ca == NULL || access(ckey, R_OK) != 0 || !same_file(h->tls_ca, ca))
		return 0;
	if (kb_bus_serve(h->core_ep, "join", join_serve, h) != 0) {
		snprintf(err, errlen, "cannot register the join service");
		return KB_EINTERNAL;
	}
	char hash[80] = "";
	kb_pki_ca_hash(ca, hash, sizeof(hash), err, errlen);
	kb_clog(KB_LOG_INFO, "join service ready", "ca_hash=%s", hash);
	return 0;
}

