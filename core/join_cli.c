/* core/join_cli.c — `kubus join`: the worker's side of joining (pinned TLS,
 * hello with the bootstrap token, CSR, worker.yaml) and `kubus join token`
 * (see join.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <kubus/kubus.h>

#include "envelope.h"
#include "join.h"
#include "pki.h"

#define IO_TIMEOUT_S 10
#define MAX_FRAME (4u << 20)

/* --- `kubus join HOST:PORT` --------------------------------------------------------- */

struct link {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint8_t *buf;
	struct kb_env env;
};

static int tcp_connect(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	int rv = getaddrinfo(host, port, &hints, &res);
	if (rv) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rv));
		return -1;
	}
	int fd = -1;
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			snprintf(err, errlen, "cannot reach %s:%s: %s", host, port, strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
			snprintf(err, errlen, "cannot reach %s:%s: %s", host, port,
			    soerr ? strerror(soerr) : "timed out");
			close(fd);
			fd = -1;
			continue;
		}
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		struct timeval tv = { IO_TIMEOUT_S, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	freeaddrinfo(res);
	return fd;
}

static int ssl_full(SSL *ssl, void *buf, size_t len, bool wr)
{
	size_t off = 0;
	while (off < len) {
		int n = wr ? SSL_write(ssl, (char *)buf + off, (int)(len - off))
		           : SSL_read(ssl, (char *)buf + off, (int)(len - off));
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* Read one frame into l->env (body points into l->buf). */
static int link_recv(struct link *l, char *err, size_t errlen)
{
	uint8_t hdr[4];
	if (ssl_full(l->ssl, hdr, 4, false)) {
		snprintf(err, errlen, "the control plane closed the connection (or did not answer in %d s)",
		    IO_TIMEOUT_S);
		return -1;
	}
	size_t len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
	if (len == 0 || len > MAX_FRAME) {
		snprintf(err, errlen, "the control plane sent a frame of %zu bytes", len);
		return -1;
	}
	free(l->buf);
	l->buf = malloc(len);
	const char *why;
	if (l->buf == NULL || ssl_full(l->ssl, l->buf, len, false)) {
		snprintf(err, errlen, "the control plane's frame was cut short");
		return -1;
	}
	if (kb_env_decode(l->buf, len, &l->env, &why)) {
		snprintf(err, errlen, "the control plane's frame is malformed: %s", why);
		return -1;
	}
	return 0;
}

static int link_send(struct link *l, int t, uint64_t id, const char *dst, const char *op,
    kb_body *body)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	size_t blen = 0;
	const void *b = body ? kb_body_data(body, &blen) : NULL;
	kb_env_encode(&sb, t, id, NULL, NULL, NULL, 0, dst, op, dst ? 10000 : 0, b, blen, 0, NULL);
	int rc = ssl_full(l->ssl, sb.data, sb.size, true);
	explicit_bzero(sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void link_close(struct link *l)
{
	if (l->ssl) {
		SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	SSL_CTX_free(l->ctx);
	if (l->fd >= 0)
		close(l->fd);
	free(l->buf);
}

/* TLS to host:port, then pin: some certificate the server presents must
 * have SPKI hash `want`, and the server certificate must chain to it. */
static int link_open(struct link *l, const char *host, const char *port, const char *want,
    char *err, size_t errlen)
{
	l->fd = tcp_connect(host, port, err, errlen);
	if (l->fd < 0)
		return KB_EUNAVAILABLE;
	l->ctx = SSL_CTX_new(TLS_client_method());
	l->ssl = l->ctx ? SSL_new(l->ctx) : NULL;
	if (l->ssl == NULL) {
		kb_pki_ssl_err(err, errlen, "TLS");
		return KB_EINTERNAL;
	}
	SSL_CTX_set_min_proto_version(l->ctx, TLS1_2_VERSION);
	/* Checked by hand below, against the pinned CA instead of a trust store. */
	SSL_set_verify(l->ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_tlsext_host_name(l->ssl, KB_BUS_SERVER_NAME);
	SSL_set_fd(l->ssl, l->fd);
	if (SSL_connect(l->ssl) != 1) {
		kb_pki_ssl_err(err, errlen, "TLS handshake with the control plane failed (is it a tls+tcp bus listener?)");
		return KB_EUNAVAILABLE;
	}
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(l->ssl);
	X509 *leaf = SSL_get0_peer_certificate(l->ssl);
	X509 *ca = NULL;
	char seen[600] = "";
	size_t off = 0;
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		char h[80];
		kb_pki_spki_hash(sk_X509_value(chain, i), h, sizeof(h));
		if (strcmp(h, want) == 0)
			ca = sk_X509_value(chain, i);
		else if (off + strlen(h) + 2 < sizeof(seen))
			off += (size_t)snprintf(seen + off, sizeof(seen) - off, "%s%s", off ? ", " : "", h);
	}
	if (leaf == NULL || ca == NULL) {
		snprintf(err, errlen,
		    "the control plane's certificates do not match --ca-hash %s (it presented %s); "
		    "refusing: the token was not sent", want, seen[0] ? seen : "none");
		return KB_EFORBIDDEN;
	}
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	int ok = st && sctx && X509_STORE_add_cert(st, ca) == 1 &&
	    X509_STORE_CTX_init(sctx, st, leaf, chain) == 1 &&
	    X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_SERVER) == 1 &&
	    X509_verify_cert(sctx) == 1;
	if (!ok)
		snprintf(err, errlen,
		    "the control plane's certificate is not signed by the CA of --ca-hash (%s); "
		    "refusing: the token was not sent",
		    sctx ? X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)) : "?");
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return ok ? 0 : KB_EFORBIDDEN;
}

static const char default_plugins[] =
    "plugins:\n"
    "  # The node agent: registers this Node (host.name) and runs its pods.\n"
    "  - name: kubelet\n"
    "    use: kubelet\n"
    "    config:\n"
    "      runtime: runtime-runc\n"
    "      runtime_fallback: runtime-fake\n"
    "      network: auto\n"
    "  # Services on this node, through nftables.\n"
    "  - name: proxy\n"
    "    use: proxy\n"
    "    config: {backend: proxy-nftables}\n"
    "  # Routes to the other nodes' pod CIDRs (host-gw).\n"
    "  - name: net-routes\n"
    "    use: net-routes\n";

/* The plugins: section of a template config, verbatim from its line on. */
static char *template_plugins(const char *file, char *err, size_t errlen)
{
	char *text = kb_pki_read_file(file, NULL);
	if (text == NULL) {
		snprintf(err, errlen, "--template %s: %s", file, strerror(errno));
		return NULL;
	}
	char *p = text;
	while (p && strncmp(p, "plugins:", 8) != 0) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	char *out = p ? strdup(p) : NULL;
	if (p == NULL)
		snprintf(err, errlen, "--template %s has no top-level `plugins:` line", file);
	free(text);
	return out;
}

#define MAX_ADDRS 16

/* A control-plane bus address as given: HOST:PORT (or tls+tcp://HOST:PORT). */
struct addr {
	char hp[300];                /* HOST:PORT as written, without the scheme */
	char host[256], port[16];    /* for connect(): IPv6 without brackets */
};

static int write_worker(const char *dir, const char *node, const struct addr *as,
    size_t na, const char *plugins, char *err, size_t errlen)
{
	size_t cap = strlen(plugins) + 4 * PATH_MAX + 2048 + na * 2 * 320;
	char *y = malloc(cap), path[PATH_MAX + 32];
	if (y == NULL) {
		snprintf(err, errlen, "out of memory");
		return KB_ENOMEM;
	}
	/* One string, several addresses comma-separated: the uplink tries them
	 * in turn (and moves along when one host goes away). A string, not a
	 * list, so that `--set bus.join=…` can still replace it whole. */
	char all[MAX_ADDRS * 302] = "", join[MAX_ADDRS * 320 + 128] = "";
	size_t ao = 0, jo = 0;
	for (size_t i = 0; i < na; i++)
		ao += (size_t)snprintf(all + ao, sizeof(all) - ao, "%s%s", i ? "," : "", as[i].hp);
	if (na > 1)
		jo += (size_t)snprintf(join, sizeof(join), "  # control-plane hosts, tried in turn\n");
	jo += (size_t)snprintf(join + jo, sizeof(join) - jo, "  join: \"");
	for (size_t i = 0; i < na; i++)
		jo += (size_t)snprintf(join + jo, sizeof(join) - jo, "%stls+tcp://%s", i ? "," : "", as[i].hp);
	snprintf(join + jo, sizeof(join) - jo, "\"\n");
	snprintf(y, cap,
	    "# Written by `kubus join %s`: this worker's host, joined to the control\n"
	    "# plane's bus with its own certificate (principal node:%s).\n"
	    "#   kubus run -c %s/worker.yaml\n"
	    "# More control-plane hosts of the same cluster: add them to bus.join,\n"
	    "# comma-separated (or make it a list); the uplink uses the first that\n"
	    "# answers and moves to another when its host goes away.\n"
	    "host:\n"
	    "  name: %s\n"
	    "  data_dir: %s\n"
	    "bus:\n"
	    "  listen: [ipc://kubus.sock]\n"
	    "%s"
	    "  tls:\n"
	    "    cert: %s/pki/node.crt\n"
	    "    key: %s/pki/node.key\n"
	    "    ca: %s/pki/ca.crt\n"
	    "    server_name: %s\n"
	    "%s",
	    all, node, dir, node, dir, join, dir, dir, dir, KB_BUS_SERVER_NAME, plugins);
	snprintf(path, sizeof(path), "%s/worker.yaml", dir);
	int rc = kb_pki_write_file(path, y, strlen(y), 0644, err, errlen);
	free(y);
	return rc;
}

static char *make_csr(EVP_PKEY *k, const char *cn)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	char *out = NULL;
	if (r && name &&
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"system:nodes", -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
	    X509_REQ_set_subject_name(r, name) && X509_REQ_set_pubkey(r, k) &&
	    X509_REQ_sign(r, k, EVP_sha256()) > 0) {
		BIO *b = BIO_new(BIO_s_mem());
		char *p;
		if (b && PEM_write_bio_X509_REQ(b, r)) {
			long n = BIO_get_mem_data(b, &p);
			out = n > 0 ? strndup(p, (size_t)n) : NULL;
		}
		BIO_free(b);
	}
	X509_NAME_free(name);
	X509_REQ_free(r);
	return out;
}

struct join_args {
	const char *hostports[MAX_ADDRS];
	size_t nhp;
	const char *token, *ca_hash, *node, *data_dir, *template_file;
};

static int parse_addr(const char *in, size_t len, struct addr *a, char *err, size_t errlen)
{
	char hp[300];
	if (len >= sizeof(hp))
		len = sizeof(hp) - 1;
	snprintf(hp, sizeof(hp), "%.*s", (int)len, in);
	const char *p = hp;
	if (strncmp(p, "tls+tcp://", 10) == 0)
		p += 10;
	const char *colon = strrchr(p, ':');
	if (colon == NULL || colon == p || colon[1] == '\0' ||
	    (size_t)(colon - p) >= sizeof(a->host) || strlen(colon + 1) >= sizeof(a->port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		snprintf(err, errlen, "`%s`: expected HOST:PORT of the control plane's tls+tcp bus listener", hp);
		return KB_EINVAL;
	}
	snprintf(a->hp, sizeof(a->hp), "%s", p);
	snprintf(a->host, sizeof(a->host), "%.*s", (int)(colon - p), p);
	if (a->host[0] == '[' && a->host[strlen(a->host) - 1] == ']') {
		memmove(a->host, a->host + 1, strlen(a->host));
		a->host[strlen(a->host) - 1] = '\0';
	}
	snprintf(a->port, sizeof(a->port), "%s", colon + 1);
	return 0;
}

/* Hello with the bootstrap token over an open, pinned link, then the CSR
 * for `key`; the certificate and the CA come back (malloc'd). */
static int join_over(struct link *l, const struct join_args *a, const char *node,
    EVP_PKEY *key, char **cert, char **ca, char *err, size_t errlen)
{
	int rc;
	char *csr = NULL;
	kb_body *body = NULL;
	/* The bus speaks first: a nonce challenge. */
	if ((rc = link_recv(l, err, errlen) ? KB_EUNAVAILABLE : 0))
		goto out;
	if (l->env.t != KB_ENV_HELLO) {
		snprintf(err, errlen, "the control plane did not open with a hello (got %s)",
		    kb_env_type_name(l->env.t));
		rc = KB_EPROTO;
		goto out;
	}
	char ename[96];
	snprintf(ename, sizeof(ename), "join-%s", node);
	body = kb_mp_body("{s:s, s:s}", "token", a->token, "name", ename);
	if (body == NULL || link_send(l, KB_ENV_HELLO, 1, NULL, NULL, body) ||
	    link_recv(l, err, errlen)) {
		if (!err[0])
			snprintf(err, errlen, "sending the hello failed");
		rc = KB_EUNAVAILABLE;
		goto out;
	}
	kb_body_unref(body);
	body = NULL;
	if (l->env.t != KB_ENV_REP) {
		snprintf(err, errlen, "the control plane refused the token (wrong, unknown or revoked): %.400s", l->env.emsg);
		rc = KB_EUNAUTHORIZED;
		goto out;
	}
	char cn[96];
	snprintf(cn, sizeof(cn), "node:%s", node);
	csr = make_csr(key, cn);
	if (csr == NULL) {
		kb_pki_ssl_err(err, errlen, "making the CSR");
		rc = KB_EINTERNAL;
		goto out;
	}
	body = kb_mp_body("{s:s, s:s}", "node", node, "csr", csr);
	if (body == NULL || link_send(l, KB_ENV_REQ, 2, "join", "csr", body) ||
	    link_recv(l, err, errlen)) {
		if (!err[0])
			snprintf(err, errlen, "sending the CSR failed");
		rc = KB_EUNAVAILABLE;
		goto out;
	}
	if (l->env.t != KB_ENV_REP) {
		snprintf(err, errlen, "%.400s", l->env.emsg[0] ? l->env.emsg : kb_strerror(l->env.ecode));
		rc = l->env.ecode ? l->env.ecode : KB_EUNAUTHORIZED;
		goto out;
	}
	kb_body *rb = kb_body_new(l->env.body, l->env.body_len);
	*cert = kb_mp_strdup(kb_body_obj(rb), "cert");
	*ca = kb_mp_strdup(kb_body_obj(rb), "ca");
	kb_body_unref(rb);
	rc = 0;
out:
	kb_body_unref(body);
	free(csr);
	return rc;
}

static int do_join(const struct join_args *a, char *err, size_t errlen)
{
	char dir[PATH_MAX], node[64], path[PATH_MAX + 32];
	struct addr as[MAX_ADDRS];
	size_t na = 0;
	for (size_t i = 0; i < a->nhp; i++) {
		/* Each argument may hold several, comma-separated. */
		for (const char *p = a->hostports[i]; *p;) {
			size_t len = strcspn(p, ",");
			if (len) {
				if (na == MAX_ADDRS) {
					snprintf(err, errlen, "more than %d control-plane addresses", MAX_ADDRS);
					return KB_EINVAL;
				}
				if (parse_addr(p, len, &as[na], err, errlen))
					return KB_EINVAL;
				na++;
			}
			p += len + (p[len] == ',');
		}
	}
	if (na == 0) {
		snprintf(err, errlen, "expected HOST:PORT of the control plane's tls+tcp bus listener");
		return KB_EINVAL;
	}
	if (!kb_join_token_shape(a->token)) {
		snprintf(err, errlen, "--token: expected the shape [a-z0-9]{6}.[a-z0-9]{16} that `kubus join token create` prints");
		return KB_EINVAL;
	}
	if (strncmp(a->ca_hash, "sha256:", 7) != 0 || strlen(a->ca_hash) != 7 + 64 ||
	    strspn(a->ca_hash + 7, "0123456789abcdef") != 64) {
		snprintf(err, errlen, "--ca-hash: expected sha256:<64 lower-case hex digits>");
		return KB_EINVAL;
	}
	if (a->node) {
		snprintf(node, sizeof(node), "%s", a->node);
	} else {
		char hn[256] = "";
		gethostname(hn, sizeof(hn) - 1);
		for (char *p = hn; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(node, sizeof(node), "%.63s", hn);
	}
	if (!kb_join_node_name_ok(node) || (a->node && strlen(a->node) > 63)) {
		snprintf(err, errlen, "node name `%s` is not a DNS-1123 name (lower case, digits, '-', '.', at most 63): use --node-name", node);
		return KB_EINVAL;
	}
	char *plugins = a->template_file ? template_plugins(a->template_file, err, errlen)
	                                 : strdup(default_plugins);
	if (plugins == NULL)
		return KB_EINVAL;
	if (kb_pki_mkdir_p(a->data_dir, 0700) != 0 || realpath(a->data_dir, dir) == NULL) {
		snprintf(err, errlen, "data dir %s: %s", a->data_dir, strerror(errno));
		free(plugins);
		return KB_ESYS;
	}
	snprintf(path, sizeof(path), "%s/pki", dir);
	if (kb_pki_mkdir_p(path, 0700) != 0) {
		snprintf(err, errlen, "%.300s: %s", path, strerror(errno));
		free(plugins);
		return KB_ESYS;
	}

	struct link l = { .fd = -1 };
	EVP_PKEY *key = NULL;
	char *cert = NULL, *ca = NULL, *kp = NULL;
	int rc = 0;
	bool up[MAX_ADDRS] = { false };
	/* With several addresses, every one that answers must present the
	 * pinned CA before the token goes to any of them; one that does not
	 * answer now is written all the same (the worker checks it against
	 * that CA, bus.tls.ca, whenever it dials it). */
	for (size_t i = 0; na > 1 && i < na; i++) {
		char why[512] = "";
		struct link p = { .fd = -1 };
		int prc = link_open(&p, as[i].host, as[i].port, a->ca_hash, why, sizeof(why));
		link_close(&p);
		up[i] = prc == 0;
		if (prc == KB_EUNAVAILABLE) {
			fprintf(stderr, "kubus: join: note: %s did not answer (%s); it is written all the same\n",
			    as[i].hp, why);
		} else if (prc) {
			snprintf(err, errlen, "%s: %s", as[i].hp, why);
			rc = prc;
			goto out;
		}
	}
	key = kb_pki_gen_key();
	if (key == NULL) {
		kb_pki_ssl_err(err, errlen, "making the key");
		rc = KB_EINTERNAL;
		goto out;
	}
	/* The join itself through the first that answers. Only an address
	 * that cannot be reached passes the turn: a refusal (token, name,
	 * CA) is the cluster's answer, not one host's. */
	size_t off = 0;
	rc = KB_EUNAVAILABLE;
	for (size_t i = 0; i < na && rc == KB_EUNAVAILABLE; i++) {
		if (na > 1 && !up[i])
			continue;
		char why[512] = "";
		link_close(&l);
		memset(&l, 0, sizeof(l));
		l.fd = -1;
		rc = link_open(&l, as[i].host, as[i].port, a->ca_hash, why, sizeof(why));
		if (rc == 0)
			rc = join_over(&l, a, node, key, &cert, &ca, why, sizeof(why));
		if (rc && off < errlen) {
			int w = na > 1 ? snprintf(err + off, errlen - off, "%s%s: %s", off ? "; " : "", as[i].hp, why)
			               : snprintf(err, errlen, "%s", why);
			off += w > 0 ? (size_t)w : 0;
		}
	}
	if (rc) {
		if (off == 0)
			snprintf(err, errlen, "no control-plane address answered");
		goto out;
	}
	/* The CA handed back must be the one pinned. */
	char got[80] = "";
	BIO *bio = ca ? BIO_new_mem_buf(ca, -1) : NULL;
	X509 *cax = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (cax)
		kb_pki_spki_hash(cax, got, sizeof(got));
	X509_free(cax);
	if (cert == NULL || strcmp(got, a->ca_hash) != 0) {
		snprintf(err, errlen, "the control plane's answer has no certificate or another CA (%s)", got);
		rc = KB_EPROTO;
		goto out;
	}
	kp = kb_pki_key_pem(key);
	snprintf(path, sizeof(path), "%s/pki/node.key", dir);
	if (kp == NULL || (rc = kb_pki_write_file(path, kp, strlen(kp), 0600, err, errlen)))
		goto out;
	snprintf(path, sizeof(path), "%s/pki/node.crt", dir);
	if ((rc = kb_pki_write_file(path, cert, strlen(cert), 0644, err, errlen)))
		goto out;
	snprintf(path, sizeof(path), "%s/pki/ca.crt", dir);
	if ((rc = kb_pki_write_file(path, ca, strlen(ca), 0644, err, errlen)))
		goto out;
	if ((rc = write_worker(dir, node, as, na, plugins, err, errlen)))
		goto out;
	printf("joined as node:%s\nwrote %s/worker.yaml (key %s/pki/node.key never left this host)\n"
	       "start it: kubus run -c %s/worker.yaml\n", node, dir, dir, dir);
out:
	if (kp)
		explicit_bzero(kp, strlen(kp));
	free(kp);
	free(cert);
	free(ca);
	free(plugins);
	EVP_PKEY_free(key);
	link_close(&l);
	return rc;
}

/* --- the command line --------------------------------------------------------------- */

static const char usage_join[] =
    "usage: kubus join HOST:PORT[,HOST:PORT…] [HOST:PORT…] --token T --ca-hash sha256:H\n"
    "                  [--node-name N] [--data-dir D] [--template FILE]\n"
    "       kubus join token create [--ttl 24h] [--data-dir D] [--token-file F]\n"
    "       kubus join token list [--data-dir D]\n"
    "       kubus join token revoke ID|TOKEN [--data-dir D] [--token-file F]\n"
    "\n"
    "  On the control plane, `token create` prints a bootstrap token (line 1) and\n"
    "  the hash of the bus CA (line 2); the CA and the bus listener's certificate\n"
    "  are made in DATA_DIR/pki if missing. --ttl: 45s, 30m, 24h, 7d, 1h30m; 0\n"
    "  never expires. The token is also added to DATA_DIR/tokens.csv (user\n"
    "  system:bootstrap:ID, group system:bootstrappers: it may only call `join`).\n"
    "\n"
    "  On a worker, `kubus join` checks the control plane's certificate against\n"
    "  the CA hash before sending anything, makes a key that never leaves the\n"
    "  worker, gets a certificate for node:NAME (default: the host name) and\n"
    "  writes DATA_DIR/worker.yaml (its plugins: section from --template, else\n"
    "  kubelet + proxy + net-routes). Default data dir: /var/lib/kubus.\n"
    "  Several addresses (control-plane hosts of one cluster): each that answers\n"
    "  must show the pinned CA before the token is sent; the first that answers\n"
    "  takes the join; all go into bus.join, which the worker tries in turn.\n";

static int cli_token(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL, *data_dir = "/var/lib/kubus";
	const char *ttl_s = "24h", *token_file = NULL, *what = NULL;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--ttl") && v) ttl_s = v, i++;
		else if (!strcmp(o, "--data-dir") && v) data_dir = v, i++;
		else if (!strcmp(o, "--token-file") && v) token_file = v, i++;
		else if (o[0] != '-' && what == NULL) what = o;
		else {
			fprintf(stderr, "kubus: join token: unknown argument %s\n%s", o, usage_join);
			return 2;
		}
	}
	char tf[PATH_MAX + 16], err[512] = "";
	if (token_file)
		snprintf(tf, sizeof(tf), "%s", token_file);
	else
		snprintf(tf, sizeof(tf), "%s/tokens.csv", data_dir);
	int rc;
	if (sub && !strcmp(sub, "create")) {
		long long ttl;
		if (kb_join_parse_ttl(ttl_s, &ttl)) {
			fprintf(stderr, "kubus: join token create: --ttl `%s`: expected a duration like 45s, 30m, 24h, 7d, 1h30m or 0\n", ttl_s);
			return 2;
		}
		if (kb_pki_mkdir_p(data_dir, 0700) != 0) {
			fprintf(stderr, "kubus: join token create: data dir %s: %s\n", data_dir, strerror(errno));
			return 1;
		}
		rc = kb_join_token_create(data_dir, tf, ttl, err, sizeof(err));
	} else if (sub && !strcmp(sub, "list")) {
		rc = kb_join_token_list(data_dir, err, sizeof(err));
	} else if (sub && !strcmp(sub, "revoke")) {
		if (what == NULL) {
			fprintf(stderr, "kubus: join token revoke: name a token id or a token\n");
			return 2;
		}
		rc = kb_join_token_revoke(data_dir, tf, what, err, sizeof(err));
	} else {
		fprintf(stderr, "kubus: join token: expected create, list or revoke\n%s", usage_join);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "kubus: join token %s: %s\n", sub, err);
		return 1;
	}
	return 0;
}

int kb_join_cli(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_join, stdout);
			return 0;
		}
	if (argc > 1 && !strcmp(argv[1], "token"))
		return cli_token(argc - 1, argv + 1);
	struct join_args a = { .data_dir = "/var/lib/kubus" };
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--token") && v) a.token = v, i++;
		else if (!strcmp(o, "--ca-hash") && v) a.ca_hash = v, i++;
		else if (!strcmp(o, "--node-name") && v) a.node = v, i++;
		else if (!strcmp(o, "--data-dir") && v) a.data_dir = v, i++;
		else if (!strcmp(o, "--template") && v) a.template_file = v, i++;
		else if (o[0] != '-' && a.nhp < MAX_ADDRS) a.hostports[a.nhp++] = o;
		else {
			fprintf(stderr, "kubus: join: unknown argument %s\n%s", o, usage_join);
			return 2;
		}
	}
	if (a.nhp == 0 || a.token == NULL || a.ca_hash == NULL) {
		fprintf(stderr, "kubus: join: HOST:PORT, --token and --ca-hash are required\n%s", usage_join);
		return 2;
	}
	char err[1024] = "";
	int rc = do_join(&a, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kubus: join refused: %s\n", err);
		return 1;
	}
	return 0;
}
