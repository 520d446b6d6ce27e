/* etcd_client.c — how store-etcd's client (plugins/store-etcd/client.c)
 * classifies a TLS session that the member breaks before any reply.
 *
 * A TLS 1.3 member that refuses our client certificate checks it only after
 * curl has "sent" the request, and its alert sometimes comes as a bare TCP
 * reset. A fake member here (OpenSSL, the PKI of etcd_proc.c) completes the
 * handshake, reads the request and answers or resets, per mode:
 *   - every request reset: the member refuses every session of ours, so a
 *     write cannot have been applied: Unavailable naming TLS, never
 *     "outcome unknown";
 *   - writes reset, GET /version answered: the member takes our sessions,
 *     so the write may have been applied: outcome unknown;
 *   - the first request answered, every later one reset: a write that went
 *     out on the accepted keep-alive connection (curl then sends it again
 *     on a new one) may have been applied: outcome unknown.
 * client.c and codec.c are compiled in; no host and no etcd process
 * (etcd_proc.c only makes the PKI).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../../plugins/store-etcd/etcd.h"
#include "etcd_proc.h"

enum mode {
	RESET_ALL,       /* every request: reset */
	RESET_WRITES,    /* POSTs reset, GET /version answered */
	RESET_AFTER_ONE, /* the first request of the run answered, then reset */
};

static struct {
	char *pki;
	SSL_CTX *ctx;
	int lfd;
	char ep[64]; /* https://127.0.0.1:P */
	pthread_t thr;
	atomic_bool stop;
	atomic_int mode;
	atomic_int posts, versions, answered;
} F = { .lfd = -1 };

/* One request: headers and Content-Length bytes of body. The request line
 * goes to line. false when the peer closed or broke. */
static bool read_request(SSL *s, char *line, size_t linelen)
{
	char buf[8192] = "";
	size_t n = 0;
	char *end = NULL;
	while (!(end = strstr(buf, "\r\n\r\n"))) {
		if (n + 1 >= sizeof buf)
			return false;
		int r = SSL_read(s, buf + n, (int)(sizeof buf - 1 - n));
		if (r <= 0)
			return false;
		n += (size_t)r;
		buf[n] = '\0';
	}
	size_t body = 0, have = n - (size_t)(end + 4 - buf);
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl)
		body = strtoul(cl + 17, NULL, 10);
	snprintf(line, linelen, "%.*s", (int)strcspn(buf, "\r\n"), buf);
	while (have < body) {
		int r = SSL_read(s, buf, (int)sizeof buf);
		if (r <= 0)
			return false;
		have += (size_t)r;
	}
	return true;
}

#define VERSION_REPLY "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}"
#define TXN_REPLY "{\"header\":{\"revision\":\"1\"},\"succeeded\":true}"

static void answer(SSL *s, const char *json)
{
	char out[512];
	int n = snprintf(out, sizeof out,
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s",
	    strlen(json), json);
	SSL_write(s, out, n);
	atomic_fetch_add(&F.answered, 1);
}

/* Close with a TCP reset and no TLS alert: SO_LINGER 0, no SSL_shutdown. */
static void reset(SSL *s, int fd)
{
	struct linger l = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	SSL_free(s);
	close(fd);
}

static void serve(int fd)
{
	SSL *s = SSL_new(F.ctx);
	if (!s) {
		close(fd);
		return;
	}
	SSL_set_fd(s, fd);
	if (SSL_accept(s) != 1) {
		reset(s, fd);
		return;
	}
	char line[256];
	while (read_request(s, line, sizeof line)) {
		bool version = !strncmp(line, "GET /version ", 13);
		atomic_fetch_add(version ? &F.versions : &F.posts, 1);
		enum mode m = atomic_load(&F.mode);
		if ((m == RESET_WRITES && version) ||
		    (m == RESET_AFTER_ONE && atomic_load(&F.answered) == 0)) {
			answer(s, version ? VERSION_REPLY : TXN_REPLY);
			continue;
		}
		break;
	}
	reset(s, fd);
}

static void *server(void *arg)
{
	(void)arg;
	while (!atomic_load(&F.stop)) {
		struct pollfd p = { F.lfd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int fd = accept(F.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(fd);
	}
	return NULL;
}

static int suite_setup(void **state)
{
	char err[512], f[600], k[600];
	(void)state;
	F.pki = etcd_pki_create(err, sizeof err);
	if (!F.pki) {
		fprintf(stderr, "cannot make a PKI: %s\n", err);
		return -1;
	}
	snprintf(f, sizeof f, "%s/" ETCD_PKI_SERVER_CERT, F.pki);
	snprintf(k, sizeof k, "%s/" ETCD_PKI_SERVER_KEY, F.pki);
	F.ctx = SSL_CTX_new(TLS_server_method());
	if (!F.ctx || SSL_CTX_use_certificate_chain_file(F.ctx, f) != 1 ||
	    SSL_CTX_use_PrivateKey_file(F.ctx, k, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "server TLS context: %s\n",
		    ERR_reason_error_string(ERR_get_error()));
		return -1;
	}
	/* TLS 1.3, as etcd with Go's defaults and curl agree on. */
	SSL_CTX_set_min_proto_version(F.ctx, TLS1_3_VERSION);

	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof a;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (F.lfd < 0 || bind(F.lfd, (struct sockaddr *)&a, sizeof a) ||
	    listen(F.lfd, 16) ||
	    getsockname(F.lfd, (struct sockaddr *)&a, &al)) {
		perror("listen");
		return -1;
	}
	snprintf(F.ep, sizeof F.ep, "https://127.0.0.1:%u", ntohs(a.sin_port));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return pthread_create(&F.thr, NULL, server, NULL) ? -1 : 0;
}

static int suite_teardown(void **state)
{
	(void)state;
	atomic_store(&F.stop, true);
	pthread_join(F.thr, NULL);
	close(F.lfd);
	SSL_CTX_free(F.ctx);
	etcd_pki_remove(F.pki);
	curl_global_cleanup();
	return 0;
}

/* A client of the fake member with the right credentials, and one call:
 * a txn sent once (EC_ONCE), as a plain put is. */
struct call {
	int rc;
	char msg[320];
};

static void run(enum mode m, int ncalls, struct call *out)
{
	char ca[600], cert[600], key[600];
	char *eps[] = { F.ep, NULL };
	snprintf(ca, sizeof ca, "%s/" ETCD_PKI_CA, F.pki);
	snprintf(cert, sizeof cert, "%s/" ETCD_PKI_CLIENT_CERT, F.pki);
	snprintf(key, sizeof key, "%s/" ETCD_PKI_CLIENT_KEY, F.pki);
	struct ec_conf conf = {
		.endpoints = eps,
		.dial_timeout_ms = 1000,
		.request_timeout_ms = 2000,
		.retry_timeout_ms = 300,
		.cacert = ca,
		.cert = cert,
		.key = key,
	};
	struct ec_client c;
	struct ec_conn cn;
	struct ec_out o;
	char err[256];
	atomic_store(&F.mode, m);
	atomic_store(&F.posts, 0);
	atomic_store(&F.versions, 0);
	atomic_store(&F.answered, 0);
	assert_int_equal(ec_client_init(&c, &conf, err, sizeof err), 0);
	assert_int_equal(ec_conn_init(&cn), 0);
	ec_client_setopts(&c, cn.h);
	ec_out_init(&o);
	for (int i = 0; i < ncalls; i++) {
		json_t *req = json_pack("{s:[{s:{s:s, s:s}}]}", "success",
		    "request_put", "key", "aw==", "value", "dg==");
		json_t *resp = NULL;
		ec_out_reset(&o);
		out[i].rc = ec_call(&c, &cn, "/v3/kv/txn", req, EC_ONCE, 0,
		    &resp, NULL, &o);
		snprintf(out[i].msg, sizeof out[i].msg, "%s",
		    out[i].rc ? o.msg : "");
		print_message("mode %d call %d: %s: %s\n", (int)m, i,
		    out[i].rc ? kb_strerror(out[i].rc) : "ok", out[i].msg);
		json_decref(resp);
	}
	ec_out_destroy(&o);
	ec_conn_destroy(&cn);
	ec_client_destroy(&c);
}

/* The member refuses every session: surely not applied, and said so. */
static void t_reset_every_session(void **state)
{
	struct call r;
	(void)state;
	run(RESET_ALL, 1, &r);
	assert_int_equal(r.rc, KB_EUNAVAILABLE);
	assert_non_null(strstr(r.msg, "TLS failed"));
	assert_null(strstr(r.msg, "outcome unknown"));
	assert_true(atomic_load(&F.versions) > 0);
}

/* The member answers a new session: the reset write may have applied. */
static void t_reset_write_only(void **state)
{
	struct call r;
	(void)state;
	run(RESET_WRITES, 1, &r);
	assert_int_equal(r.rc, KB_ETIMEOUT);
	assert_non_null(strstr(r.msg, "outcome unknown"));
	assert_null(strstr(r.msg, "TLS"));
	assert_int_equal(atomic_load(&F.versions), 1);
	assert_int_equal(atomic_load(&F.posts), 1);
}

/* The write went out first on a session the member had accepted: no
 * probe, whatever a new session would get. */
static void t_reset_on_reused(void **state)
{
	struct call r[2];
	(void)state;
	run(RESET_AFTER_ONE, 2, r);
	assert_int_equal(r[0].rc, 0);
	assert_int_equal(r[1].rc, KB_ETIMEOUT);
	assert_non_null(strstr(r[1].msg, "outcome unknown"));
	assert_int_equal(atomic_load(&F.versions), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_reset_every_session),
		cmocka_unit_test(t_reset_write_only),
		cmocka_unit_test(t_reset_on_reused),
	};
	return cmocka_run_group_tests_name("store-etcd-client", tests,
	    suite_setup, suite_teardown);
}
