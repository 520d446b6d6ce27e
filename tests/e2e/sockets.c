/* tests/e2e/sockets.c — clients no library would be: headers trickled a
 * byte at a time (slowloris), a connection that never says anything,
 * garbage instead of HTTP, a body that never comes (holding an in-flight
 * slot); and a watch that is open while the server stops. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "e2e.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(int port, int timeout_s)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = timeout_s };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

struct tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

static bool tls_open(struct e2e *e, struct tls *t, int timeout_s)
{
	memset(t, 0, sizeof(*t));
	t->fd = tcp_connect(e->port, timeout_s);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->fd < 0 || t->ctx == NULL)
		return false;
	SSL_CTX_load_verify_locations(t->ctx, e->ca, NULL);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	t->ssl = SSL_new(t->ctx);
	SSL_set_fd(t->ssl, t->fd);
	return SSL_connect(t->ssl) == 1;
}

static void tls_close(struct tls *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}

static bool tls_send(struct tls *t, const char *s)
{
	return SSL_write(t->ssl, s, (int)strlen(s)) == (int)strlen(s);
}

/* Read until the peer closes or the buffer fills; what came (malloc'd). */
static char *tls_read_all(struct tls *t, size_t max)
{
	char *b = calloc(1, max + 1);
	size_t n = 0;
	int r;
	while (
	    b && n < max && (r = SSL_read(t->ssl, b + n, (int)(max - n))) > 0)
		n += (size_t)r;
	return b;
}

/* --- slowloris, in the background --------------------------------------------- */

struct slow {
	struct e2e *e;
	pthread_t th;
	double tls_cut,
	    tcp_cut; /* seconds until the server hung up; <0 never */
};

static struct slow slow_state;

/* Headers a byte a second: when does the server hang up? */
static double trickle(struct e2e *e)
{
	struct tls t;
	double t0 = now_s();
	if (!tls_open(e, &t, 30)) {
		tls_close(&t);
		return -2;
	}
	const char *head =
	    "GET /version HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
	bool ok = tls_send(&t, head);
	for (int i = 0; ok && i < 40; i++) {
		sleep(1);
		ok = tls_send(&t, "a");
	}
	double cut = ok ? -1 : now_s() - t0;
	tls_close(&t);
	return cut;
}

/* A TCP connection that never even starts TLS. */
static double silent(struct e2e *e)
{
	double t0 = now_s();
	int fd = tcp_connect(e->port, 40);
	char c;
	if (fd < 0)
		return -2;
	ssize_t r = recv(fd, &c, 1, 0);
	close(fd);
	return r <= 0 && now_s() - t0 < 39 ? now_s() - t0 : -1;
}

static void *silent_main(void *arg)
{
	struct slow *s = arg;
	s->tcp_cut = silent(s->e);
	return NULL;
}

static void *slow_main(void *arg)
{
	struct slow *s = arg;
	pthread_t th;
	bool both = pthread_create(&th, NULL, silent_main, s) == 0;
	s->tls_cut = trickle(s->e);
	if (both)
		pthread_join(th, NULL);
	return NULL;
}

void e2e_slow_begin(struct e2e *e)
{
	slow_state.e = e;
	slow_state.tls_cut = slow_state.tcp_cut = -3;
	if (pthread_create(&slow_state.th, NULL, slow_main, &slow_state))
		slow_state.e = NULL;
}

static void judge_cut(struct e2e *e, const char *name, double cut)
{
	if (cut > 0 && cut < 30)
		e2e_pass(e, name);
	else
		e2e_fail(e, name,
		    cut == -2 ? "could not connect" : "still open after 40 s");
	if (cut > 0)
		printf("     (cut off after %.1f s)\n", cut);
}

void e2e_slow_end(struct e2e *e)
{
	if (slow_state.e == NULL) {
		e2e_skip(e, "slowloris", "no thread");
		return;
	}
	pthread_join(slow_state.th, NULL);
	judge_cut(e, "slowloris (headers trickled) cut off",
	    slow_state.tls_cut);
	judge_cut(e, "silent TCP connection cut off", slow_state.tcp_cut);
}

/* --- garbage --------------------------------------------------------------------- */

/* want NULL: a closed connection is as good as an answer. */
static void garbage(struct e2e *e, const char *name, const char *send,
    const char *want)
{
	struct tls t;
	if (!tls_open(e, &t, 10)) {
		e2e_fail(e, name, "no TLS connection");
		tls_close(&t);
		return;
	}
	tls_send(&t, send);
	char *got = tls_read_all(&t, 65536);
	if (got &&
	    ((!want && (!*got || !strncmp(got, "HTTP/1.1 400", 12))) ||
		(want && !strncmp(got, want, strlen(want)))))
		e2e_pass(e, name);
	else
		e2e_fail(e, name, "expected %s, got: %.200s",
		    want ? want : "400 or a close", got ? got : "");
	free(got);
	tls_close(&t);
}

void e2e_garbage_steps(struct e2e *e)
{
	/* libmicrohttpd hangs up on a request line without a method. */
	garbage(e, "garbage request line: 400 or a close", "BLAH\r\n\r\n",
	    NULL);
	garbage(e, "bad HTTP version",
	    "GET /version HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 505");
	garbage(e, "header without a colon",
	    "GET /version HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
	    "HTTP/1.1 400");
	garbage(e, "bad chunked body",
	    "POST /api/v1/namespaces/e2e/configmaps HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
	    "HTTP/1.1 400");
	/* Plain HTTP to the TLS port: the handshake fails, the server lives. */
	int fd = tcp_connect(e->port, 10);
	const char *req = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
	if (fd >= 0 && send(fd, req, strlen(req), 0) > 0) {
		char b[64];
		while (recv(fd, b, sizeof(b), 0) > 0)
			;
	}
	if (fd >= 0)
		close(fd);
	if (e2e_alive(e))
		e2e_pass(e,
		    "plain HTTP to the HTTPS port: refused, server alive");
	else
		e2e_fail(e,
		    "plain HTTP to the HTTPS port: refused, server alive",
		    "the server died");
}

/* --- the server stops under a watch ------------------------------------------------ */

struct watch_run {
	struct e2e *e;
	struct e2e_resp r;
	double ended;
};

static void *watch_main(void *arg)
{
	struct watch_run *w = arg;
	e2e_http(w->e, "GET",
	    "/api/v1/namespaces/e2e/configmaps?watch=true&timeoutSeconds=300",
	    NULL, NULL, 0, w->e->admin_token, NULL, 60000, &w->r);
	w->ended = now_s();
	return NULL;
}

void e2e_stop_steps(struct e2e *e)
{
	struct watch_run w = { .e = e };
	pthread_t th;
	if (pthread_create(&th, NULL, watch_main, &w)) {
		e2e_skip(e, "watch ends on server stop", "no thread");
		return;
	}
	sleep(1);
	double t0 = now_s();
	bool clean = e2e_stop(e, 15000);
	pthread_join(th, NULL);
	if (clean)
		e2e_pass(e, "server stops cleanly under a watch");
	else
		e2e_fail(e, "server stops cleanly under a watch",
		    "no clean exit within 15 s");
	if (w.r.code == 200 && w.ended - t0 < 15)
		e2e_pass(e, "watch ends on server stop");
	else
		e2e_fail(e, "watch ends on server stop",
		    "code %ld, ended %.1f s after the stop", w.r.code,
		    w.ended - t0);
	e2e_resp_free(&w.r);
}

/* --- 429 ---------------------------------------------------------------------------- */

void e2e_inflight_steps(struct e2e *main_e)
{
	struct e2e e = { .kubectl = NULL };
	const char *sets[] = { "apiserver.max_inflight=1", NULL };
	if (!e2e_start(&e, sets)) {
		e2e_fail(main_e, "second server (max_inflight=1)",
		    "did not start");
		e2e_free(&e);
		return;
	}
	/* A request whose body never comes holds the one slot. */
	struct tls t;
	bool held = tls_open(&e, &t, 10);
	char head[512];
	snprintf(head, sizeof(head),
	    "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
	    "Host: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: 100\r\n\r\n{",
	    e.admin_token);
	held = held && tls_send(&t, head);
	usleep(300000);
	struct e2e_resp r;
	e2e_http(&e, "GET", "/api/v1/namespaces", NULL, NULL, 0, e.admin_token,
	    NULL, 10000, &r);
	if (held && r.code == 429 && strcasestr(r.headers, "Retry-After: 1") &&
	    strstr(r.body, "\"reason\":\"TooManyRequests\""))
		e2e_pass(main_e, "in-flight limit: 429 with Retry-After");
	else
		e2e_fail(main_e, "in-flight limit: 429 with Retry-After",
		    "code %ld: %.300s", r.code, r.body);
	e2e_resp_free(&r);
	tls_close(&t);
	usleep(300000);
	e2e_http(&e, "GET", "/api/v1/namespaces", NULL, NULL, 0, e.admin_token,
	    NULL, 10000, &r);
	if (r.code == 200)
		e2e_pass(main_e, "in-flight slot given back");
	else
		e2e_fail(main_e, "in-flight slot given back", "code %ld",
		    r.code);
	e2e_resp_free(&r);
	e2e_free(&e);
}
