/* tests/bench/api/lean.c — bench-api's lean HTTPS client (see lean.h).
 *
 * A connection is a small state machine: DOWN (no socket), HANDSHAKE,
 * SEND, RECV, IDLE (open, no request). Every step is retried whenever its
 * socket is ready in the direction OpenSSL last asked for (a write may need
 * a read and a read a write), so a spurious wake-up costs a retry, never a
 * wrong state. A failed request is answered -1 and its connection dropped;
 * the next request on it connects again, as a libcurl easy handle would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lean.h"

#define TIMEOUT_NS (60 * 1000000000LL) /* a request, as curl's clients */
#define HEAD_MAX 65536                 /* a response's header */
#define LINE_MAX_CHUNK 1024            /* a chunk-size or trailer line */
#define IN_MIN 4096                    /* free room for one SSL_read */

enum cstate {
	C_DOWN,
	C_HANDSHAKE,
	C_SEND,
	C_RECV,
	C_IDLE
};

/* Where reading a chunked body is: a size line, its data, the CRLF after
 * the data, or the trailer after the last (empty) chunk. */
enum chunk {
	CK_SIZE,
	CK_DATA,
	CK_CRLF,
	CK_TRAILER
};

/* The response being read. Its header is in[0..head); the body's bytes
 * follow it, blen of them (a chunked body is decoded in place, behind the
 * raw bytes still to decode at in[raw..]). */
struct resp {
	size_t head; /* 0 until the whole header has arrived */
	long status;
	bool chunked, close, until_eof;
	size_t clen; /* Content-Length */
	size_t blen;
	size_t raw;
	enum chunk ck;
	size_t left; /* of the current chunk */
};

struct conn {
	int fd;
	SSL *ssl;
	enum cstate st;
	unsigned ev; /* the epoll events registered, 0 when not */
	bool busy;   /* a request is in flight */
	bool quit;   /* no more requests this window */
	struct lean_req rq;
	int64_t t0; /* when rq was taken */
	char *out;  /* rq as HTTP */
	size_t out_len, out_off;
	char *in; /* the response as read, NUL-terminated */
	size_t in_len, in_cap;
	struct resp r;
	const char *why; /* the last failure */
	char err[160];   /* why, when it came from OpenSSL */
};

struct lthread {
	struct lean *l;
	pthread_t th;
	bool started;
	int k, ep;
	int busy; /* connections that may still take requests */
};

struct lean {
	SSL_CTX *ctx;
	struct sockaddr_in addr;
	char ip[INET_ADDRSTRLEN];
	char host[64]; /* the Host header: ip:port */
	const char *get_hdrs, *post_hdrs;
	size_t out_cap;
	struct conn *conns;
	int nconns;
	struct lthread *ts;
	int nthreads;
	const struct lean_ops *ops;
	void *arg;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- connections ---------------------------------------------------------- */

static void conn_drop(struct conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd); /* which also takes it out of its epoll set */
	c->ssl = NULL;
	c->fd = -1;
	c->ev = 0;
	c->st = C_DOWN;
}

/* A new TCP connection and TLS session, ready for the handshake: 0, or -1
 * and c->why. The TCP connect blocks; on loopback it is done at once or
 * refused at once, and a non-blocking one would add a state for nothing. */
static int conn_connect(struct lean *l, struct conn *c)
{
	struct timeval tv = { .tv_sec = TIMEOUT_NS / 1000000000 };
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
	    connect(c->fd, (struct sockaddr *)&l->addr, sizeof l->addr) ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
	    fcntl(c->fd, F_SETFL, O_NONBLOCK)) {
		snprintf(c->err, sizeof c->err, "connect: %s", strerror(errno));
		c->why = c->err;
		conn_drop(c);
		return -1;
	}
	if ((c->ssl = SSL_new(l->ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd) ||
	    !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), l->ip)) {
		c->why = "cannot set up a TLS session";
		conn_drop(c);
		return -1;
	}
	SSL_set_connect_state(c->ssl);
	c->st = C_HANDSHAKE;
	return 0;
}

/* After an OpenSSL call returned rc <= 0: the epoll event to wait for, or
 * -1 with c->why. */
static int ssl_wait(struct conn *c, int rc)
{
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ)
		return EPOLLIN;
	if (e == SSL_ERROR_WANT_WRITE)
		return EPOLLOUT;
	long verify = SSL_get_verify_result(c->ssl);
	if (e == SSL_ERROR_ZERO_RETURN)
		c->why = "the server closed the connection";
	else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		c->why = errno ? strerror(errno) :
				 "the server closed the connection";
	else if (verify != X509_V_OK)
		c->why = X509_verify_cert_error_string(verify);
	else {
		ERR_error_string_n(ERR_peek_error(), c->err, sizeof c->err);
		c->why = c->err;
	}
	/* SSL_get_error reads the queue: the next call must find it empty. */
	ERR_clear_error();
	return -1;
}

static int step_handshake(struct conn *c)
{
	int rc = SSL_connect(c->ssl);
	if (rc <= 0)
		return ssl_wait(c, rc);
	c->st = c->busy ? C_SEND : C_IDLE;
	return 0;
}

/* The handshake outside a window, blocking: 0, or -1 and c->why. */
static int conn_handshake(struct conn *c)
{
	int want;
	while ((want = step_handshake(c)) > 0) {
		struct pollfd p = { .fd = c->fd,
			.events = want == EPOLLIN ? POLLIN : POLLOUT };
		if (poll(&p, 1, (int)(TIMEOUT_NS / 1000000)) <= 0) {
			c->why = "the TLS handshake timed out";
			return -1;
		}
	}
	return want;
}

/* Whether an idle connection is still open. A closed one reads EOF or an
 * alert; an open one has nothing to read but the server's session tickets,
 * which this read consumes. */
static bool conn_alive(struct conn *c)
{
	char b;
	int n = SSL_read(c->ssl, &b, 1);
	if (n > 0)
		return false; /* bytes nobody asked for: start afresh */
	return ssl_wait(c, n) > 0;
}

/* --- requests and responses ----------------------------------------------- */

static int req_format(struct lean *l, struct conn *c)
{
	const struct lean_req *rq = &c->rq;
	size_t blen = strnlen(rq->body, sizeof rq->body);
	int n = blen ?
	    snprintf(c->out, l->out_cap,
		"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %zu\r\n"
		"\r\n%.*s",
		rq->path, l->host, l->post_hdrs, blen, (int)blen, rq->body) :
	    snprintf(c->out, l->out_cap,
		"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", rq->path, l->host,
		l->get_hdrs);
	if (n < 0 || (size_t)n >= l->out_cap) {
		c->why = "the request is too long";
		return -1;
	}
	c->out_len = (size_t)n;
	c->out_off = 0;
	return 0;
}

static bool name_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && !strncasecmp(s, name, len);
}

/* One header line (no CRLF): the ones that frame the body. */
static int header(struct resp *r, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len), *v, *e = s + len;
	if (colon == NULL)
		return -1;
	for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t nlen = (size_t)(colon - s), vlen = (size_t)(e - v);
	if (name_is(s, nlen, "content-length")) {
		if (vlen == 0 || vlen > 15)
			return -1;
		r->clen = 0;
		for (const char *p = v; p < e; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			r->clen = r->clen * 10 + (size_t)(*p - '0');
		}
		r->until_eof = false;
	} else if (name_is(s, nlen, "transfer-encoding")) {
		/* chunked is the last coding when it is there at all */
		r->chunked = vlen >= 7 && !strncasecmp(e - 7, "chunked", 7);
	} else if (name_is(s, nlen, "connection")) {
		r->close = name_is(v, vlen, "close");
	}
	return 0;
}

/* The status line and header, once all of it is in: 1 when parsed, 0 for
 * more, -1 when it is not HTTP/1.x. */
static int head_parse(struct conn *c)
{
	struct resp *r = &c->r;
	const char *in = c->in;
	const char *end = memmem(in, c->in_len, "\r\n\r\n", 4);
	if (end == NULL)
		return c->in_len > HEAD_MAX ? -1 : 0;
	if (end - in < 12 || strncmp(in, "HTTP/1.", 7) || in[8] != ' ' ||
	    in[9] < '1' || in[9] > '5' || in[10] < '0' || in[10] > '9' ||
	    in[11] < '0' || in[11] > '9')
		return -1;
	r->status = (in[9] - '0') * 100 + (in[10] - '0') * 10 + in[11] - '0';
	r->head = (size_t)(end + 4 - in);
	r->close = in[7] == '0'; /* HTTP/1.0 */
	r->until_eof = true;     /* unless the header frames the body */
	const char *line =
	    (const char *)memchr(in, '\n', (size_t)(end + 2 - in)) + 1;
	while (line < end + 2) {
		const char *eol =
		    memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		if (header(r, line, (size_t)(eol - line)))
			return -1;
		line = eol + 2;
	}
	if (r->status < 200 || r->status == 204 || r->status == 304) {
		r->chunked = r->until_eof = false;
		r->clen = 0;
	} else if (r->chunked) {
		r->until_eof = false;
		r->raw = r->head;
		r->ck = CK_SIZE;
	}
	return 1;
}

/* A chunk-size line (no CRLF), extensions after ';' ignored. */
static int chunk_size(const char *s, size_t len, size_t *size)
{
	size_t v = 0, i = 0;
	for (; i < len; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' :
		    ch >= 'a' && ch <= 'f'     ? ch - 'a' + 10 :
		    ch >= 'A' && ch <= 'F'     ? ch - 'A' + 10 :
						 -1;
		if (d < 0)
			break;
		if (v > ((size_t)1 << 40))
			return -1;
		v = v * 16 + (size_t)d;
	}
	if (i == 0 || (i < len && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
		return -1;
	*size = v;
	return 0;
}

/* Decode the chunks that have arrived, in place: 1 at the end of the
 * body, 0 for more, -1 when malformed. */
static int chunks_parse(struct conn *c)
{
	struct resp *r = &c->r;
	for (;;) {
		char *p = c->in + r->raw;
		size_t avail = c->in_len - r->raw;
		if (r->ck == CK_DATA) {
			size_t n = avail < r->left ? avail : r->left;
			memmove(c->in + r->head + r->blen, p, n);
			r->blen += n;
			r->raw += n;
			r->left -= n;
			if (r->left)
				return 0;
			r->ck = CK_CRLF;
			continue;
		}
		if (r->ck == CK_CRLF) {
			if (avail < 2)
				return 0;
			if (p[0] != '\r' || p[1] != '\n')
				return -1;
			r->raw += 2;
			r->ck = CK_SIZE;
			continue;
		}
		const char *eol = memmem(p, avail, "\r\n", 2);
		if (eol == NULL)
			return avail > LINE_MAX_CHUNK ? -1 : 0;
		size_t len = (size_t)(eol - p);
		r->raw += len + 2;
		if (r->ck == CK_TRAILER) {
			if (len == 0) /* the end; nothing may follow it */
				return r->raw == c->in_len ? 1 : -1;
			continue;
		}
		if (chunk_size(p, len, &r->left))
			return -1;
		r->ck = r->left ? CK_DATA : CK_TRAILER;
	}
}

/* 1 when the whole response is in, 0 for more, -1 when it is malformed
 * or followed by bytes nobody asked for. */
static int resp_parse(struct conn *c)
{
	struct resp *r = &c->r;
	while (r->head == 0) {
		int rc = head_parse(c);
		if (rc <= 0)
			return rc;
		if (r->status >= 200)
			break;
		/* 1xx: an interim answer; the real one follows. */
		c->in_len -= r->head;
		memmove(c->in, c->in + r->head, c->in_len);
		memset(r, 0, sizeof *r);
	}
	if (r->chunked)
		return chunks_parse(c);
	r->blen = c->in_len - r->head;
	if (r->until_eof || r->blen < r->clen)
		return 0;
	return r->blen == r->clen ? 1 : -1;
}

/* --- the state machine ---------------------------------------------------- */

static void answer(struct lthread *t, struct conn *c, long status,
    const char *body)
{
	struct lean *l = t->l;
	int64_t ns = now_ns() - c->t0;
	c->busy = false;
	l->ops->done(l->arg, t->k, &c->rq, status, body, ns);
}

static int step_send(struct conn *c)
{
	while (c->out_off < c->out_len) {
		int n = SSL_write(c->ssl, c->out + c->out_off,
		    (int)(c->out_len - c->out_off));
		if (n <= 0)
			return ssl_wait(c, n);
		c->out_off += (size_t)n;
	}
	c->st = C_RECV;
	/* Read at once only if OpenSSL holds bytes already: epoll would not
	 * say so. Otherwise the answer cannot be there yet. */
	return SSL_has_pending(c->ssl) ? 0 : EPOLLIN;
}

static int in_room(struct conn *c)
{
	if (c->in_cap - c->in_len > IN_MIN)
		return 0;
	char *in = realloc(c->in, c->in_cap * 2);
	if (in == NULL) {
		c->why = "out of memory";
		return -1;
	}
	c->in = in;
	c->in_cap *= 2;
	return 0;
}

/* The response is complete: hand it over. The connection stays for the
 * next request unless the server said it closes. */
static int recv_done(struct lthread *t, struct conn *c)
{
	c->in[c->r.head + c->r.blen] = '\0';
	answer(t, c, c->r.status, c->in + c->r.head);
	if (c->r.close)
		conn_drop(c);
	else
		c->st = C_IDLE;
	return 0;
}

/* Read until the response is complete or the socket is dry. OpenSSL
 * hands over one TLS record per SSL_read, so a read may hold several. */
static int step_recv(struct lthread *t, struct conn *c)
{
	for (;;) {
		if (in_room(c))
			return -1;
		int n = SSL_read(c->ssl, c->in + c->in_len,
		    (int)(c->in_cap - c->in_len - 1));
		if (n <= 0 && c->r.head && c->r.until_eof &&
		    SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN) {
			c->r.close = true; /* the close ends the body */
			return recv_done(t, c);
		}
		if (n <= 0)
			return ssl_wait(c, n);
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		int rc = resp_parse(c);
		if (rc < 0)
			c->why = "a malformed response";
		if (rc)
			return rc < 0 ? -1 : recv_done(t, c);
	}
}

/* Take the connection's next request: 0 to go on (quit set when there is
 * none), -1 when it cannot connect. */
static int conn_next(struct lthread *t, struct conn *c)
{
	struct lean *l = t->l;
	if (!l->ops->next(l->arg, t->k, &c->rq)) {
		c->quit = true;
		t->busy--;
		return 0;
	}
	c->busy = true;
	c->t0 = now_ns();
	c->in_len = 0;
	memset(&c->r, 0, sizeof c->r);
	if (req_format(l, c))
		return -1;
	if (c->st == C_IDLE) {
		c->st = C_SEND;
		return 0;
	}
	return conn_connect(l, c);
}

static void conn_watch(struct lthread *t, struct conn *c, unsigned ev)
{
	if (ev == c->ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	int op = ev == 0 ? EPOLL_CTL_DEL :
	    c->ev == 0   ? EPOLL_CTL_ADD :
			   EPOLL_CTL_MOD;
	epoll_ctl(t->ep, op, c->fd, &e);
	c->ev = ev;
}

/* A failed request is answered -1, its connection dropped. */
static void conn_fail(struct lthread *t, struct conn *c)
{
	if (c->busy)
		answer(t, c, -1, c->why);
	conn_drop(c);
}

/* Drive c until it waits for its socket or has no more requests. */
static void conn_run(struct lthread *t, struct conn *c)
{
	while (!c->quit) {
		int want;
		switch (c->st) {
		case C_HANDSHAKE:
			want = step_handshake(c);
			break;
		case C_SEND:
			want = step_send(c);
			break;
		case C_RECV:
			want = step_recv(t, c);
			break;
		default:
			want = conn_next(t, c);
			break;
		}
		if (want < 0) {
			conn_fail(t, c);
		} else if (want > 0) {
			conn_watch(t, c, (unsigned)want);
			return;
		}
	}
	conn_watch(t, c, 0);
}

static void loop_timeouts(struct lthread *t)
{
	struct lean *l = t->l;
	int64_t now = now_ns();
	for (int i = t->k; i < l->nconns; i += l->nthreads) {
		struct conn *c = &l->conns[i];
		if (c->busy && now - c->t0 > TIMEOUT_NS) {
			c->why = "timed out";
			conn_fail(t, c);
			conn_run(t, c);
		}
	}
}

static void *loop_main(void *arg)
{
	struct lthread *t = arg;
	struct lean *l = t->l;
	struct epoll_event evs[64];
	for (int i = t->k; i < l->nconns; i += l->nthreads) {
		t->busy++;
		conn_run(t, &l->conns[i]);
	}
	int64_t check = now_ns() + 1000000000;
	while (t->busy > 0) {
		int n = epoll_wait(t->ep, evs, 64, 1000);
		for (int i = 0; i < n; i++)
			conn_run(t, evs[i].data.ptr);
		if (now_ns() >= check) {
			loop_timeouts(t);
			check = now_ns() + 1000000000;
		}
	}
	l->ops->end(l->arg, t->k);
	return NULL;
}

/* --- the pool ------------------------------------------------------------- */

/* "https://A.B.C.D:PORT", optionally with a path. */
static int parse_url(struct lean *l, const char *url)
{
	const char *h = strncmp(url, "https://", 8) ? NULL : url + 8;
	const char *colon = h ? strchr(h, ':') : NULL;
	if (colon == NULL || (size_t)(colon - h) >= sizeof l->ip)
		return -1;
	memcpy(l->ip, h, (size_t)(colon - h));
	l->ip[colon - h] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (port <= 0 || port > 65535 || (*end && *end != '/') ||
	    inet_pton(AF_INET, l->ip, &l->addr.sin_addr) != 1)
		return -1;
	l->addr.sin_family = AF_INET;
	l->addr.sin_port = htons((uint16_t)port);
	snprintf(l->host, sizeof l->host, "%s:%ld", l->ip, port);
	return 0;
}

static SSL_CTX *ctx_new(const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Read what the socket has in one recv, not a record header first. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* A close without close_notify reads as a close; every response is
	 * framed, so no truncation goes unnoticed. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	return ctx;
}

struct lean *lean_open(const char *url, const char *ca, const char *get_hdrs,
    const char *post_hdrs, int nconns, int nthreads)
{
	struct lean *l = calloc(1, sizeof *l);
	if (l == NULL)
		return NULL;
	l->get_hdrs = get_hdrs;
	l->post_hdrs = post_hdrs;
	l->nconns = nconns;
	l->nthreads = nthreads < nconns ? nthreads : nconns;
	l->out_cap = strlen(get_hdrs) + strlen(post_hdrs) +
	    sizeof(struct lean_req) + 256;
	l->conns = calloc((size_t)nconns, sizeof *l->conns);
	l->ts = calloc((size_t)l->nthreads, sizeof *l->ts);
	for (int i = 0; l->conns && i < nconns; i++)
		l->conns[i].fd = -1;
	if (!l->conns || !l->ts || parse_url(l, url) ||
	    (l->ctx = ctx_new(ca)) == NULL) {
		fprintf(stderr, "bench-api: lean: cannot use %s with CA %s\n",
		    url, ca);
		lean_close(l);
		return NULL;
	}
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &l->conns[i];
		c->in_cap = 4 * IN_MIN;
		c->in = malloc(c->in_cap);
		c->out = malloc(l->out_cap);
		if (c->in == NULL || c->out == NULL || conn_connect(l, c) ||
		    conn_handshake(c)) {
			fprintf(stderr, "bench-api: lean: %s: %s\n", url,
			    c->in && c->out ? c->why : "out of memory");
			lean_close(l);
			return NULL;
		}
	}
	return l;
}

int lean_threads(const struct lean *l)
{
	return l->nthreads;
}

void lean_ready(struct lean *l)
{
	for (int i = 0; i < l->nconns; i++) {
		struct conn *c = &l->conns[i];
		c->quit = false;
		if (c->st == C_IDLE && !conn_alive(c))
			conn_drop(c);
		if (c->st == C_DOWN &&
		    (conn_connect(l, c) || conn_handshake(c))) {
			/* Its first request connects again, or fails. */
			fprintf(stderr, "bench-api: lean: reconnect: %s\n",
			    c->why);
			conn_drop(c);
		}
	}
}

int lean_start(struct lean *l, const struct lean_ops *ops, void *arg)
{
	int failed = 0;
	l->ops = ops;
	l->arg = arg;
	for (int k = 0; k < l->nthreads; k++) {
		struct lthread *t = &l->ts[k];
		*t = (struct lthread){ .l = l, .k = k };
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		t->started = t->ep >= 0 &&
		    pthread_create(&t->th, NULL, loop_main, t) == 0;
		failed += !t->started;
	}
	return failed;
}

void lean_wait(struct lean *l)
{
	for (int k = 0; k < l->nthreads; k++) {
		struct lthread *t = &l->ts[k];
		if (t->started)
			pthread_join(t->th, NULL);
		if (t->ep >= 0)
			close(t->ep);
		t->started = false;
		t->ep = -1;
	}
}

void lean_close(struct lean *l)
{
	for (int i = 0; l->conns && i < l->nconns; i++) {
		struct conn *c = &l->conns[i];
		if (c->st == C_IDLE)
			SSL_shutdown(c->ssl); /* close_notify, not waited for */
		conn_drop(c);
		free(c->in);
		free(c->out);
	}
	SSL_CTX_free(l->ctx);
	free(l->conns);
	free(l->ts);
	free(l);
}
