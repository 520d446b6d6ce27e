/* plugins/apiserver/http.c — the HTTP(S) front.
 *
 * libmicrohttpd in epoll event loops (http_threads), which must not
 * block: a request that may wait goes to the `api` service's workers
 * with its connection suspended (waits()), and a watch or log stream with
 * nothing to send arms its stream and suspends until woken (streams,
 * below). See README.md, Serving. This file turns a request
 * into a struct api_req (the path into group, version, namespace,
 * resource, name and subresource; the method and query into a verb; the
 * headers into Table and patch types; the body through the codec),
 * authenticates and authorizes it, hands it to rest.c or discovery.c and
 * writes the answer back, gzipped when asked and worth it.
 *
 * Limits: header memory per connection (libmicrohttpd answers 431), body
 * size (413), in-flight requests (429, watches and log streams exempt), a
 * deadline for a connection's request headers and body (a slowloris
 * client is cut off by the reaper thread, idle keep-alive connections by
 * MHD_OPTION_CONNECTION_TIMEOUT), and the reaper's look at suspended
 * streams' sockets so a watch ends when its client goes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include <kubus/client.h>

#include "busapi.h"
#include "http.h"

#define NS_PER_S 1000000000LL
#define HEADER_TIMEOUT_S 10       /* a connection's next request headers */
#define IDLE_TIMEOUT_S 30         /* keep-alive between requests */
#define MEMORY_LIMIT (32 * 1024) /* headers and read buffer, per connection;
				  * libmicrohttpd zeroes it all per request */
#define STACK_SIZE (2u << 20)     /* per event loop thread */
#define MAX_CONNECTIONS 10000
#define STREAM_POLL_MS 250 /* how often the reaper checks streams' clients */
#define STREAM_TICK_NS (1000 * 1000000LL) /* a parked stream's deadline and
					   * bookmark checks */
#define STREAM_BLOCK 16384
#define GZIP_MIN 8192 /* smaller bodies go as they are */
#define MAX_SEGMENTS 16
#define LABEL_MAX 64

/* --- state ------------------------------------------------------------------- */

/* One per TCP connection, for the reaper; and who its last bearer token
 * was, so its next requests with that token skip the digest, the shared
 * cache's lock and a copy of the user. Only the thread handling the
 * connection's request touches tok*: its event loop, or the worker it is
 * suspended for. */
struct conn {
	struct conn *prev, *next;
	int fd;
	char *tok; /* NULL: none kept */
	size_t tok_len;
	time_t tok_until; /* reuse while time() is before this */
	struct api_user tok_user;
	int64_t deadline_ns; /* shut down after this; 0 = no deadline
			      * (__atomic: set by its thread, read by the
			      * reaper) */
};

struct api_http {
	struct api_server *s;
	struct MHD_Daemon *d;
	pthread_mutex_t mu; /* conns, stop_reaper */
	pthread_cond_t cv;
	struct conn *conns;
	pthread_t reaper;
	bool reaper_on;
	bool stop_reaper;
	int64_t inflight; /* __atomic */
	bool stopping;    /* __atomic */
	/* requests handed to the workers, and streams: stop waits for them
	 * (smu, scv) */
	pthread_mutex_t smu;
	pthread_cond_t scv;
	int jobs;
	struct stream_ctx *streams;
	int nstreams;
};

/* A parsed resource path. Pointers into the split path. */
struct target {
	const char *group, *version;
	const char *ns, *plural, *name, *sub;
	bool watch_prefix;
};

/* One per request. */
struct rq {
	struct api_http *h;
	int64_t start_ns;
	char *path;       /* the url split, once (rq_target) */
	struct target t;  /* into path */
	int parsed;       /* 0: not yet; 1: t holds it; -1: no resource */
	char *body;
	size_t len, cap;
	bool too_big;
	size_t seen;      /* body bytes received, kept or not */
	int refuse;       /* 413 or 429, answered once the body is in */
	bool counted;     /* holds an in-flight slot */
	bool answered;    /* a response is queued */
	const char *verb; /* metrics labels */
	char resource[LABEL_MAX];
	int code;
	/* handled by a worker while the connection is suspended: its
	 * answer, queued once libmicrohttpd calls again */
	bool deferred;
	struct MHD_Response *later_mr;
	int later_code;
	enum MHD_Result later_rc;
	struct api_resp *later_resp; /* or a put's answer, to format */
};

/* What one request's handling needs. */
struct call {
	struct api_http *h;
	struct api_server *s;
	struct MHD_Connection *c;
	struct rq *q;
	const char *url;
	const char *method;
	struct api_user user;
	bool authed;
	bool peer;          /* a peer API server (peer.c), not a user */
	bool user_borrowed; /* user is the connection's kept one */
	struct job *job;    /* on a worker: may answer after its put */
	bool later;         /* ... and will */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static bool is_stopping(const struct api_http *h)
{
	return __atomic_load_n(&h->stopping, __ATOMIC_ACQUIRE);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* Go's strconv.ParseBool, false for anything else. */
static bool truthy(const char *v)
{
	return v &&
	    (!strcmp(v, "1") || !strcasecmp(v, "t") || !strcasecmp(v, "true"));
}

/* --- connections and the reaper ----------------------------------------------- */

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Give the connection `seconds` from now (0: no deadline). */
static void conn_deadline(struct api_http *h, struct MHD_Connection *c,
    int64_t seconds)
{
	struct conn *k = conn_of(c);
	(void)h;
	if (k == NULL)
		return;
	/* No lock: k lives until conn_closed, which its event loop runs
	 * only while no worker has the connection. */
	__atomic_store_n(&k->deadline_ns,
	    seconds ? mono_ns() + seconds * NS_PER_S : 0, __ATOMIC_RELAXED);
}

static void conn_started(struct api_http *h, struct MHD_Connection *c,
    void **socket_context)
{
	struct conn *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	k->fd = ci ? ci->connect_fd : -1;
	k->deadline_ns = mono_ns() + HEADER_TIMEOUT_S * NS_PER_S;
	pthread_mutex_lock(&h->mu);
	k->next = h->conns;
	if (h->conns)
		h->conns->prev = k;
	h->conns = k;
	pthread_mutex_unlock(&h->mu);
	*socket_context = k;
}

static void conn_forget_token(struct conn *k)
{
	if (k->tok) {
		OPENSSL_cleanse(k->tok, k->tok_len);
		free(k->tok);
		k->tok = NULL;
	}
	api_user_free(&k->tok_user);
}

/* libmicrohttpd closes the socket only after this returns: the reaper,
 * which shuts sockets down under the same lock, never touches a reused
 * descriptor. */
static void conn_closed(struct api_http *h, void **socket_context)
{
	struct conn *k = *socket_context;
	if (k == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	if (k->prev)
		k->prev->next = k->next;
	else
		h->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&h->mu);
	conn_forget_token(k);
	free(k);
	*socket_context = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(cls, c, socket_context);
	else
		conn_closed(cls, socket_context);
}

static void reap(struct api_http *h)
{
	int64_t now = mono_ns();
	for (struct conn *k = h->conns; k; k = k->next) {
		int64_t d = __atomic_load_n(&k->deadline_ns, __ATOMIC_RELAXED);
		/* The connection's thread sees EOF and closes it; unless it
		 * has just moved the deadline. */
		if (d && now > d && k->fd >= 0 &&
		    __atomic_compare_exchange_n(&k->deadline_ns, &d, 0, false,
			__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			shutdown(k->fd, SHUT_RDWR);
	}
}

static void streams_tick(struct api_http *h);

static void *reaper_main(void *arg)
{
	struct api_http *h = arg;
	pthread_mutex_lock(&h->mu);
	while (!h->stop_reaper) {
		reap(h);
		pthread_mutex_unlock(&h->mu);
		pthread_mutex_lock(&h->smu);
		streams_tick(h);
		pthread_mutex_unlock(&h->smu);
		pthread_mutex_lock(&h->mu);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += STREAM_POLL_MS * 1000000L;
		if (ts.tv_nsec >= NS_PER_S) {
			ts.tv_sec++;
			ts.tv_nsec -= NS_PER_S;
		}
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* --- responses ----------------------------------------------------------------- */

static void status_resp(struct api_resp *r, int code, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void status_resp(struct api_resp *r, int code, const char *reason,
    const char *fmt, ...)
{
	struct api_error e = { 0 };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	e.code = code;
	e.reason = reason;
	api_resp_free(r);
	r->code = code;
	r->json = api_status(&e);
}

static void not_found(struct api_resp *r)
{
	status_resp(r, 404, "NotFound",
	    "the server could not find the requested resource");
}

static void not_allowed(struct api_resp *r)
{
	status_resp(r, 405, "MethodNotAllowed",
	    "the server does not allow this method on the requested resource");
}

static void refusal(const struct api_http *h, int code, struct api_resp *r)
{
	if (code == 413)
		status_resp(r, 413, "RequestEntityTooLarge",
		    "Request entity too large: limit is %" PRId64,
		    h->s->max_body);
	else
		status_resp(r, 429, "TooManyRequests",
		    "Too many requests, please try again later.");
}

static bool accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = header(c, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	while (ae && *ae) {
		ae += strspn(ae, " \t,");
		size_t n = strcspn(ae, " \t;,");
		const char *params = ae + n;
		size_t plen = strcspn(params, ",");
		bool zero_q = memmem(params, plen, "q=0", 3) &&
		    !memmem(params, plen, "q=0.", 4);
		if (n == 4 && !strncasecmp(ae, "gzip", 4) && !zero_q)
			return true;
		ae = params + plen;
	}
	return false;
}

/* gzip `in` into a new buffer; NULL when it does not pay. */
static char *gzip_body(const char *in, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
		Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, len);
	char *out = malloc(cap);
	if (out == NULL) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END || *out_len >= len) {
		free(out);
		return NULL;
	}
	return out;
}

/* The body of r as bytes (malloc'd) and its content type. */
static char *body_bytes(struct api_resp *r, size_t *len, const char **ct)
{
	char *b = NULL;
	if (r->json == NULL && r->mp) { /* a write's stored object, a get's */
		b = api_mp_json(r->mp, r->mp_len, len);
		if (b == NULL)
			r->json = api_mp_decode(r->mp, r->mp_len);
	}
	if (b || r->json) {
		if (b == NULL)
			b = api_json_text(r->json, len);
		char *nl = b ? realloc(b, *len + 2) : NULL;
		if (nl == NULL) {
			free(b);
			return NULL;
		}
		b = nl;
		b[(*len)++] = '\n'; /* as Go's encoder ends a document */
		b[*len] = '\0';
		*ct = r->content_type ? r->content_type : "application/json";
		return b;
	}
	if (r->text) {
		b = r->text;
		r->text = NULL;
		*len = r->text_len;
		*ct = r->content_type ? r->content_type : "text/plain";
		return b;
	}
	*len = 0;
	*ct = r->content_type ? r->content_type : "application/json";
	return strdup("");
}

static void add_warning(struct MHD_Response *mr, const char *w)
{
	if (w == NULL || !*w)
		return;
	if (!strncmp(w, "299 ", 4)) {
		MHD_add_response_header(mr, "Warning", w);
		return;
	}
	char buf[2048];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "299 - \"");
	for (; *w && n + 4 < sizeof(buf); w++) {
		if (*w == '"' || *w == '\\')
			buf[n++] = '\\';
		buf[n++] = (*w == '\n' || *w == '\r') ? ' ' : *w;
	}
	snprintf(buf + n, sizeof(buf) - n, "\"");
	MHD_add_response_header(mr, "Warning", buf);
}

static void common_headers(struct MHD_Response *mr, const char *ct, int code)
{
	if (ct)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache, private");
	if (code >= 400)
		MHD_add_response_header(mr, "X-Content-Type-Options",
		    "nosniff");
	if (code == 429)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

static enum MHD_Result queue(struct MHD_Connection *c, struct rq *q, int code,
    struct MHD_Response *mr)
{
	if (mr == NULL)
		return MHD_NO;
	q->code = code;
	q->answered = true;
	if (q->deferred) {
		q->later_mr = mr;
		q->later_code = code;
		return MHD_YES;
	}
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)code, mr);
	MHD_destroy_response(mr);
	return rc;
}

/* Does If-None-Match (a list of ETags, or *) name etag? */
static bool etag_listed(const char *inm, const char *etag)
{
	size_t n = strlen(etag);
	while (inm && *inm) {
		inm += strspn(inm, " \t,");
		if (!strncmp(inm, "W/", 2))
			inm += 2;
		if (*inm == '*' || (!strncmp(inm, etag, n) &&
		    (inm[n] == '\0' || inm[n] == ',' || inm[n] == ' ' ||
		    inm[n] == '\t')))
			return true;
		inm = strchr(inm, ',');
	}
	return false;
}

/* A cacheable answer's headers (api_resp.etag, immutable, location), as
 * Kubernetes sends them for its OpenAPI documents. */
static void cache_headers(struct MHD_Response *mr, const struct api_resp *r)
{
	if (r->etag)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_ETAG, r->etag);
	if (r->location)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_LOCATION,
		    r->location);
	if (!r->immutable)
		return;
	MHD_del_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache, private");
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "public, immutable");
	MHD_add_response_header(mr, MHD_HTTP_HEADER_VARY, "Accept");
	char exp[64];
	struct tm tm;
	time_t t = time(NULL) + 365 * 86400;
	if (gmtime_r(&t, &tm) &&
	    strftime(exp, sizeof(exp), "%a, %d %b %Y %H:%M:%S GMT", &tm))
		MHD_add_response_header(mr, MHD_HTTP_HEADER_EXPIRES, exp);
}

static enum MHD_Result respond_body(struct MHD_Connection *c, struct rq *q,
    struct api_resp *r)
{
	if (r->etag && r->code == 200 &&
	    etag_listed(header(c, MHD_HTTP_HEADER_IF_NONE_MATCH), r->etag)) {
		struct MHD_Response *nm = MHD_create_response_from_buffer(0,
		    (void *)"", MHD_RESPMEM_PERSISTENT);
		if (nm == NULL)
			return MHD_NO;
		common_headers(nm, NULL, 304);
		cache_headers(nm, r);
		return queue(c, q, 304, nm);
	}
	size_t len = 0, zlen = 0;
	const char *ct = NULL;
	char *body = body_bytes(r, &len, &ct);
	if (body == NULL) {
		status_resp(r, 500, "InternalError", "out of memory");
		if ((body = body_bytes(r, &len, &ct)) == NULL)
			return MHD_NO;
	}
	char *z = len >= GZIP_MIN && accepts_gzip(c) ?
	    gzip_body(body, len, &zlen) :
	    NULL;
	if (z) {
		free(body);
		body = z;
		len = zlen;
	}
	struct MHD_Response *mr =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (mr == NULL) {
		free(body);
		return MHD_NO;
	}
	int code = r->code ? r->code : 500;
	common_headers(mr, ct, code);
	if (z) {
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_ENCODING,
		    "gzip");
		MHD_add_response_header(mr, MHD_HTTP_HEADER_VARY,
		    "Accept-Encoding");
	}
	add_warning(mr, r->warning);
	cache_headers(mr, r);
	return queue(c, q, code, mr);
}

/* An answer made here (limits, health): free r after queueing it. */
static enum MHD_Result respond_now(struct MHD_Connection *c, struct rq *q,
    struct api_resp *r)
{
	enum MHD_Result rc = respond_body(c, q, r);
	api_resp_free(r);
	return rc;
}

/* --- streams --------------------------------------------------------------------- */

/* A watch or log stream. libmicrohttpd's loop calls stream_read when the
 * client can take more; with nothing to send, the stream is armed
 * (api_stream.arm) and the connection suspended until the stream wakes
 * it, or the reaper does: when the client hung up, and every
 * STREAM_TICK_NS for the stream's own timers (a watch's deadline and
 * bookmarks).
 *
 * `state` settles the race between a wake and the suspend it is meant
 * to end: the reader marks PARKING before it arms, and turns it into
 * SUSPENDED after suspending; a wake that comes between makes it WOKEN,
 * and the reader resumes the connection itself. */
enum { ST_RUNNING, ST_PARKING, ST_WOKEN, ST_SUSPENDED };

struct stream_ctx {
	struct api_http *h;
	struct api_stream *st;
	struct MHD_Connection *c;
	int fd;
	bool watch;
	int state;          /* __atomic, ST_* */
	bool gone;          /* __atomic: the client hung up */
	int64_t parked_ns;  /* __atomic: when it last suspended */
	struct stream_ctx *prev, *next; /* h->streams, under h->smu */
};

/* Has the client hung up? A peer that closed sends FIN (after TLS's
 * close_notify); nothing else arrives on a watch connection. */
static bool peer_gone(int fd)
{
	if (fd < 0)
		return false;
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	if (poll(&p, 1, 0) <= 0)
		return false;
	return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static bool cas_state(struct stream_ctx *sc, int from, int to)
{
	return __atomic_compare_exchange_n(&sc->state, &from, to, false,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* From the stream (under its lock), the reaper or stop (under h->smu). */
static void stream_wake(void *arg)
{
	struct stream_ctx *sc = arg;
	if (cas_state(sc, ST_PARKING, ST_WOKEN))
		return;
	if (cas_state(sc, ST_SUSPENDED, ST_RUNNING))
		MHD_resume_connection(sc->c);
}

static bool stream_over(const struct stream_ctx *sc)
{
	return is_stopping(sc->h) || sc->h->s->stopping;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_ctx *sc = cls;
	(void)pos;
	for (;;) {
		if (stream_over(sc))
			return MHD_CONTENT_READER_END_OF_STREAM;
		ssize_t n = sc->st->read(sc->st, buf, max, 0);
		if (n > 0)
			return n;
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (__atomic_load_n(&sc->gone, __ATOMIC_ACQUIRE))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		__atomic_store_n(&sc->state, ST_PARKING, __ATOMIC_SEQ_CST);
		/* after PARKING: stop either sees it or is seen here */
		if (stream_over(sc) ||
		    !sc->st->arm(sc->st, stream_wake, sc)) {
			__atomic_store_n(&sc->state, ST_RUNNING,
			    __ATOMIC_SEQ_CST);
			continue;
		}
		__atomic_store_n(&sc->parked_ns, mono_ns(), __ATOMIC_RELAXED);
		MHD_suspend_connection(sc->c);
		if (!cas_state(sc, ST_PARKING, ST_SUSPENDED)) {
			/* woken before the suspend took */
			__atomic_store_n(&sc->state, ST_RUNNING,
			    __ATOMIC_SEQ_CST);
			MHD_resume_connection(sc->c);
		}
		return 0;
	}
}

static void stream_free(void *cls)
{
	struct stream_ctx *sc = cls;
	struct api_http *h = sc->h;
	sc->st->close(sc->st); /* no wake from it after this */
	if (sc->watch)
		api_metrics_watchers(h->s, -1);
	pthread_mutex_lock(&h->smu);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		h->streams = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	if (--h->nstreams == 0)
		pthread_cond_broadcast(&h->scv);
	pthread_mutex_unlock(&h->smu);
	free(sc);
}

/* Reaper: wake suspended streams whose client went or whose timers are
 * due. Under h->smu. */
static void streams_tick(struct api_http *h)
{
	int64_t now = mono_ns();
	for (struct stream_ctx *sc = h->streams; sc; sc = sc->next) {
		if (__atomic_load_n(&sc->state, __ATOMIC_SEQ_CST) !=
		    ST_SUSPENDED)
			continue;
		bool gone = peer_gone(sc->fd);
		if (gone)
			__atomic_store_n(&sc->gone, true, __ATOMIC_RELEASE);
		if (gone || now - __atomic_load_n(&sc->parked_ns,
				       __ATOMIC_RELAXED) >= STREAM_TICK_NS)
			stream_wake(sc);
	}
}

static enum MHD_Result respond_stream(struct call *x, struct api_resp *r,
    bool watch)
{
	struct stream_ctx *sc = calloc(1, sizeof(*sc));
	struct api_stream *st = api_stream_pumped(r->stream);
	r->stream = NULL;
	if (sc == NULL || st == NULL) {
		free(sc);
		if (st)
			st->close(st);
		status_resp(r, 500, "InternalError", "out of memory");
		return respond_body(x->c, x->q, r);
	}
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(x->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	sc->h = x->h;
	sc->st = st;
	sc->c = x->c;
	sc->fd = ci ? ci->connect_fd : -1;
	sc->watch = watch;
	const char *ct = st->content_type ? st->content_type :
	    r->content_type               ? r->content_type :
					    "application/json";
	pthread_mutex_lock(&x->h->smu);
	sc->next = x->h->streams;
	if (sc->next)
		sc->next->prev = sc;
	x->h->streams = sc;
	x->h->nstreams++;
	pthread_mutex_unlock(&x->h->smu);
	struct MHD_Response *mr =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
		stream_read, sc, stream_free);
	if (mr == NULL) {
		sc->watch = false; /* not counted yet */
		stream_free(sc);
		return MHD_NO;
	}
	if (watch)
		api_metrics_watchers(x->s, 1);
	/* A stream lasts as long as it lasts: no deadline, no idle cut. */
	conn_deadline(x->h, x->c, 0);
	common_headers(mr, ct, r->code ? r->code : 200);
	add_warning(mr, r->warning);
	return queue(x->c, x->q, r->code ? r->code : 200, mr);
}

/* --- paths ------------------------------------------------------------------------ */

/* Valid UTF-8 without control characters. */
static bool clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		size_t n = c < 0x80    ? 0 :
		    (c & 0xe0) == 0xc0 ? 1 :
		    (c & 0xf0) == 0xe0 ? 2 :
		    (c & 0xf8) == 0xf0 ? 3 :
					 4;
		if (n == 4 || (n == 0 && (c < 0x20 || c == 0x7f)) ||
		    (n == 1 && c < 0xc2))
			return false;
		uint32_t cp = n == 0 ? c : c & (0x3f >> n);
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 &&
			(cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += n + 1;
	}
	return true;
}

/* Split "/a/b/c" into segments (in buf); -1 for empty segments or too
 * many. A trailing slash is dropped. */
static int split_path(char *buf, char **seg, size_t max)
{
	size_t len = strlen(buf);
	if (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	if (buf[0] != '/')
		return -1;
	if (len == 1)
		return 0;
	int n = 0;
	for (char *p = buf + 1;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (!*p || (size_t)n == max)
			return -1;
		seg[n++] = p;
		if (slash == NULL)
			return n;
		p = slash + 1;
	}
}

/* The namespace subresources: /api/v1/namespaces/NAME/{status,finalize}. */
static bool ns_sub(const char *s)
{
	return !strcmp(s, "status") || !strcmp(s, "finalize");
}

/* /api/v1/… or /apis/G/V/… -> target; false when it is no resource path. */
static bool parse_target(char **seg, int n, struct target *t)
{
	int i;
	memset(t, 0, sizeof(*t));
	if (n >= 3 && !strcmp(seg[0], "api")) {
		t->group = "";
		t->version = seg[1];
		i = 2;
	} else if (n >= 4 && !strcmp(seg[0], "apis")) {
		t->group = seg[1];
		t->version = seg[2];
		i = 3;
	} else {
		return false;
	}
	if (!strcmp(seg[i], "watch")) {
		t->watch_prefix = true;
		i++;
	}
	char **r = seg + i;
	int m = n - i;
	if (m >= 3 && !strcmp(r[0], "namespaces") && !ns_sub(r[2])) {
		t->ns = r[1];
		r += 2;
		m -= 2;
	}
	if (m < 1 || m > 3)
		return false;
	t->plural = r[0];
	t->name = m > 1 ? r[1] : NULL;
	t->sub = m > 2 ? r[2] : NULL;
	return true;
}

static bool has_prefix_path(const char *url, const char *p)
{
	size_t n = strlen(p);
	return !strncmp(url, p, n) && (url[n] == '\0' || url[n] == '/');
}

static bool health_path(const char *url)
{
	return has_prefix_path(url, "/healthz") ||
	    has_prefix_path(url, "/livez") || has_prefix_path(url, "/readyz");
}

/* What anonymous clients may read, as Kubernetes'
 * system:public-info-viewer allows. */
static bool public_path(const char *url)
{
	return health_path(url) || !strcmp(url, "/version") ||
	    !strcmp(url, "/version/");
}

/* --- verbs -------------------------------------------------------------------------- */

static const char *const verb_names[] = {
	[API_GET] = "get",
	[API_LIST] = "list",
	[API_WATCH] = "watch",
	[API_CREATE] = "create",
	[API_UPDATE] = "update",
	[API_PATCH] = "patch",
	[API_DELETE] = "delete",
	[API_DELETECOLLECTION] = "deletecollection",
};

static const char *const verb_labels[] = {
	[API_GET] = "GET",
	[API_LIST] = "LIST",
	[API_WATCH] = "WATCH",
	[API_CREATE] = "POST",
	[API_UPDATE] = "PUT",
	[API_PATCH] = "PATCH",
	[API_DELETE] = "DELETE",
	[API_DELETECOLLECTION] = "DELETECOLLECTION",
};

/* 0, or 405 when the method does not apply to the target. */
static int verb_of(const char *method, const struct target *t, bool watch_arg,
    int *verb)
{
	bool named = t->name != NULL;
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		*verb = (t->watch_prefix || watch_arg) && !t->sub ? API_WATCH :
		    named                                         ? API_GET :
								    API_LIST;
	else if (!strcmp(method, "POST") && (!named || t->sub))
		*verb = API_CREATE;
	else if (!strcmp(method, "PUT") && named)
		*verb = API_UPDATE;
	else if (!strcmp(method, "PATCH") && named)
		*verb = API_PATCH;
	else if (!strcmp(method, "DELETE") && !t->sub)
		*verb = named ? API_DELETE : API_DELETECOLLECTION;
	else
		return 405;
	return 0;
}

static bool streaming_sub(const char *sub)
{
	return sub &&
	    (!strcmp(sub, "exec") || !strcmp(sub, "attach") ||
		!strcmp(sub, "portforward") || !strcmp(sub, "proxy"));
}

/* --- the request: query, headers, body ------------------------------------------------ */

struct argcheck {
	bool bad;
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind,
    const char *key, const char *value)
{
	struct argcheck *a = cls;
	(void)kind;
	if ((key && !clean_text(key)) || (value && !clean_text(value))) {
		a->bad = true;
		return MHD_NO;
	}
	return MHD_YES;
}

static bool args_clean(struct MHD_Connection *c)
{
	struct argcheck a = { false };
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_arg, &a);
	return !a.bad;
}

static char *dup_arg(struct MHD_Connection *c, const char *name)
{
	const char *v = arg(c, name);
	return v ? strdup(v) : NULL;
}

/* An integer parameter: absent leaves *out; malformed is a 400. */
static bool int_arg(struct MHD_Connection *c, const char *name, int64_t *out,
    struct api_resp *r)
{
	const char *v = arg(c, name);
	if (v == NULL || !*v)
		return true;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || n < 0) {
		status_resp(r, 400, "BadRequest",
		    "invalid value for %s: %.64s: expected a non-negative integer",
		    name, v);
		return false;
	}
	*out = n;
	return true;
}

/* pods/log's sinceTime (RFC 3339, as `kubectl logs --since-time`) as
 * the sinceSeconds the kubelet takes. */
static bool since_time_arg(struct MHD_Connection *c, struct api_req *req,
    struct api_resp *r)
{
	const char *v = arg(c, "sinceTime");
	if (v == NULL || !*v)
		return true;
	int64_t ms;
	if (!kb_time_parse(v, strlen(v), &ms)) {
		status_resp(r, 400, "BadRequest",
		    "invalid value for sinceTime: %.64s: expected an RFC 3339 time",
		    v);
		return false;
	}
	if (req->since_seconds >= 0) {
		status_resp(r, 400, "BadRequest",
		    "at most one of sinceTime or sinceSeconds may be specified");
		return false;
	}
	int64_t ago = (int64_t)time(NULL) - ms / 1000;
	req->since_seconds = ago > 0 ? ago : 1;
	return true;
}

static bool parse_ints(struct MHD_Connection *c, struct api_req *req,
    struct api_resp *r)
{
	req->tail_lines = req->since_seconds = req->limit_bytes = -1;
	return int_arg(c, "limit", &req->limit, r) &&
	    int_arg(c, "timeoutSeconds", &req->timeout_s, r) &&
	    int_arg(c, "tailLines", &req->tail_lines, r) &&
	    int_arg(c, "sinceSeconds", &req->since_seconds, r) &&
	    int_arg(c, "limitBytes", &req->limit_bytes, r) &&
	    since_time_arg(c, req, r);
}

static bool parse_enums(struct MHD_Connection *c, struct api_req *req,
    struct api_resp *r)
{
	const char *dry = arg(c, "dryRun");
	if (dry && *dry && strcmp(dry, "All")) {
		status_resp(r, 400, "BadRequest",
		    "invalid dry run value %.64s: only \"All\" is supported",
		    dry);
		return false;
	}
	req->dry_run = dry && !strcmp(dry, "All");
	const char *fv = arg(c, "fieldValidation");
	if (fv && *fv && strcmp(fv, "Strict") && strcmp(fv, "Warn") &&
	    strcmp(fv, "Ignore")) {
		status_resp(r, 400, "BadRequest",
		    "fieldValidation parameter must be one of Strict, Warn or Ignore, got %.64s",
		    fv);
		return false;
	}
	req->field_validation = fv && *fv ? strdup(fv) : NULL;
	const char *inc = arg(c, "includeObject");
	req->include_object_none = inc && !strcmp(inc, "None");
	req->include_object_full = inc && !strcmp(inc, "Object");
	return true;
}

static bool parse_query(struct MHD_Connection *c, struct api_req *req,
    struct api_resp *r)
{
	if (!args_clean(c)) {
		status_resp(r, 400, "BadRequest",
		    "query parameters must be valid UTF-8 without control characters");
		return false;
	}
	req->label_selector = dup_arg(c, "labelSelector");
	req->field_selector = dup_arg(c, "fieldSelector");
	req->resource_version = dup_arg(c, "resourceVersion");
	req->resource_version_match = dup_arg(c, "resourceVersionMatch");
	req->cont = dup_arg(c, "continue");
	req->field_manager = dup_arg(c, "fieldManager");
	req->container = dup_arg(c, "container");
	req->allow_bookmarks = truthy(arg(c, "allowWatchBookmarks"));
	req->send_initial_events = truthy(arg(c, "sendInitialEvents"));
	req->force = truthy(arg(c, "force"));
	req->follow = truthy(arg(c, "follow"));
	req->previous = truthy(arg(c, "previous"));
	req->timestamps = truthy(arg(c, "timestamps"));
	return parse_ints(c, req, r) && parse_enums(c, req, r);
}

/* Does the media range [p, p+n) ask for a meta.k8s.io Table? */
static bool range_is_table(const char *p, size_t n)
{
	return memmem(p, n, "as=Table", 8) &&
	    memmem(p, n, "g=meta.k8s.io", 13) &&
	    (memmem(p, n, "v=v1", 4) != NULL);
}

/* The Accept header's first range we can serve decides: a Table, or
 * plain JSON (protobuf-only clients get JSON too). */
static bool wants_table(struct MHD_Connection *c)
{
	const char *a = header(c, MHD_HTTP_HEADER_ACCEPT);
	while (a && *a) {
		a += strspn(a, " \t,");
		size_t n = strcspn(a, ",");
		if (n >= 16 && !strncasecmp(a, "application/json", 16))
			return range_is_table(a, n);
		if ((n >= 3 && !strncmp(a, "*/*", 3)) ||
		    (n >= 13 && !strncasecmp(a, "application/*", 13)))
			return false;
		a += n;
	}
	return false;
}

/* "application/merge-patch+json; charset=utf-8" -> the patch type. */
static int patch_type_of(const char *ct)
{
	static const struct {
		const char *media;
		int type;
	} types[] = {
		{ "application/json-patch+json", API_PATCH_JSON },
		{ "application/merge-patch+json", API_PATCH_MERGE },
		{ "application/strategic-merge-patch+json",
		    API_PATCH_STRATEGIC },
		{ "application/apply-patch+yaml", API_PATCH_APPLY },
	};
	if (ct == NULL)
		return API_PATCH_NONE;
	size_t n = strcspn(ct, "; \t");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i].media) == n &&
		    !strncasecmp(ct, types[i].media, n))
			return types[i].type;
	return API_PATCH_NONE;
}

/* DeleteOptions given as query parameters, where the body has none. */
static void delete_options_from_query(struct MHD_Connection *c,
    struct api_req *req)
{
	const char *pp = arg(c, "propagationPolicy");
	const char *gp = arg(c, "gracePeriodSeconds");
	const char *od = arg(c, "orphanDependents");
	if (!pp && !gp && !od)
		return;
	if (req->body == NULL)
		req->body = json_pack("{s:s, s:s}", "kind", "DeleteOptions",
		    "apiVersion", "v1");
	if (!json_is_object(req->body))
		return;
	if (pp && !json_object_get(req->body, "propagationPolicy"))
		json_object_set_new(req->body, "propagationPolicy",
		    json_string(pp));
	char *end;
	long long g = gp ? strtoll(gp, &end, 10) : 0;
	if (gp && *gp && !*end &&
	    !json_object_get(req->body, "gracePeriodSeconds"))
		json_object_set_new(req->body, "gracePeriodSeconds",
		    json_integer(g));
	if (od && !json_object_get(req->body, "orphanDependents"))
		json_object_set_new(req->body, "orphanDependents",
		    json_boolean(truthy(od)));
}

static bool parse_body(struct call *x, struct api_req *req, struct api_resp *r)
{
	struct rq *q = x->q;
	bool writes = req->verb == API_CREATE || req->verb == API_UPDATE ||
	    req->verb == API_PATCH;
	bool deletes = req->verb == API_DELETE ||
	    req->verb == API_DELETECOLLECTION;
	const char *ct = header(x->c, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (req->verb == API_PATCH &&
	    (req->patch_type = patch_type_of(ct)) == API_PATCH_NONE) {
		status_resp(r, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - accepted media types include: "
		    "application/json-patch+json, application/merge-patch+json, "
		    "application/apply-patch+yaml, application/strategic-merge-patch+json");
		return false;
	}
	if ((writes || deletes) && q->len > 0) {
		struct api_error e = { 0 };
		req->body = api_parse_body(ct ? ct : "", q->body, q->len, &e);
		if (req->body == NULL) {
			api_resp_free(r);
			r->code = e.code ? e.code : 400;
			r->json = api_status(&e);
			api_err_clear(&e);
			return false;
		}
	}
	if (deletes)
		delete_options_from_query(x->c, req);
	return true;
}

/* --- authentication and authorization ------------------------------------------------- */

/* 1: a user; 0: no credentials; -1: credentials that do not hold. */
static int authenticate(struct call *x)
{
	const char *a = header(x->c, MHD_HTTP_HEADER_AUTHORIZATION);
	if (a == NULL)
		return 0;
	a += strspn(a, " \t");
	if (strncasecmp(a, "Bearer", 6) || (a[6] != ' ' && a[6] != '\t'))
		return 0; /* other schemes are not ours, as Kubernetes ignores them */
	a += 6;
	a += strspn(a, " \t");
	char tok[1024];
	size_t n = strcspn(a, " \t\r\n");
	if (n == 0)
		return 0;
	if (n >= sizeof(tok))
		return -1;
	memcpy(tok, a, n);
	tok[n] = '\0';
	if (api_peer_token_like(tok)) {
		/* Never sent on to the core: it knows no such token. */
		bool ok = api_peer_token_ok(x->s, tok);
		memset(tok, 0, sizeof(tok));
		if (!ok)
			return -1;
		x->peer = true;
		x->authed = true;
		x->user.name = strdup("system:kube-apiserver");
		x->user.uid = strdup("");
		return x->user.name && x->user.uid ? 1 : -1;
	}
	struct conn *k = conn_of(x->c);
	if (k && k->tok && k->tok_len == n && time(NULL) < k->tok_until &&
	    CRYPTO_memcmp(k->tok, tok, n) == 0) {
		OPENSSL_cleanse(tok, n);
		x->user = k->tok_user;
		x->user_borrowed = true;
		x->authed = true;
		return 1;
	}
	time_t until = 0;
	int rc = api_authenticate_until(x->s, tok, &x->user, &until);
	if (rc == 0 && k) {
		conn_forget_token(k);
		api_user_copy(&k->tok_user, &x->user);
		k->tok = k->tok_user.name && k->tok_user.uid &&
			k->tok_user.groups ?
		    malloc(n) :
		    NULL;
		if (k->tok) {
			memcpy(k->tok, tok, n);
			k->tok_len = n;
			k->tok_until = until;
		} else {
			api_user_free(&k->tok_user);
		}
	}
	OPENSSL_cleanse(tok, sizeof(tok));
	if (rc)
		return -1;
	x->authed = true;
	return 1;
}

static void unauthorized(struct api_resp *r)
{
	status_resp(r, 401, "Unauthorized", "Unauthorized");
}

/* Kubernetes' 403: `pods "x" is forbidden: User "u" cannot …`. */
static void forbidden(struct api_resp *r, const struct target *t,
    const char *why)
{
	char qual[192];
	if (t->group[0])
		snprintf(qual, sizeof(qual), "%s.%s", t->plural, t->group);
	else
		snprintf(qual, sizeof(qual), "%s", t->plural);
	struct api_error e = { .code = 403, .reason = "Forbidden" };
	if (t->name)
		snprintf(e.message, sizeof(e.message),
		    "%s \"%s\" is forbidden: %s", qual, t->name, why);
	else
		snprintf(e.message, sizeof(e.message), "%s is forbidden: %s",
		    qual, why);
	snprintf(e.kind, sizeof(e.kind), "%s", t->plural);
	snprintf(e.name, sizeof(e.name), "%s", t->name ? t->name : "");
	api_resp_free(r);
	r->code = 403;
	r->json = api_status(&e);
	json_t *d = json_object_get(r->json, "details");
	if (json_is_object(d) && t->group[0])
		json_object_set_new(d, "group", json_string(t->group));
}

static bool authorize(struct call *x, const struct target *t, int verb,
    struct api_resp *r)
{
	char why[1024] = "";
	const char *v = verb_names[verb];
	/* A peer's token reads pod logs its peer has authorized, no more. */
	if (x->peer) {
		if (verb == API_GET && !t->group[0] && !strcmp(t->plural, "pods") &&
		    t->sub && !strcmp(t->sub, "log"))
			return true;
		forbidden(r, t, "a peer API server may only read pod logs");
		return false;
	}
	/* Streams are "create" on their subresource in Kubernetes' RBAC. */
	if (streaming_sub(t->sub))
		v = "create";
	if (api_authorize(x->s, &x->user, v, t->group, t->plural, t->sub, t->ns,
		t->name, why, sizeof(why)))
		return true;
	if (!why[0])
		snprintf(why, sizeof(why), "access denied");
	forbidden(r, t, why);
	return false;
}

/* --- resource requests ----------------------------------------------------------------- */

/* Metrics labels come from the resource table and a fixed list only, so
 * a client cannot grow the number of series. */
static void label_metrics(struct rq *q, int verb, const struct api_req *req)
{
	static const char *const subs[] = { "status", "scale", "binding",
		"eviction", "log", NULL };
	const char *sub = "";
	for (int i = 0; req->sub && subs[i]; i++)
		if (!strcmp(req->sub, subs[i]))
			sub = subs[i];
	q->verb = verb_labels[verb];
	if (verb == API_PATCH && req->patch_type == API_PATCH_APPLY)
		q->verb = "APPLY";
	snprintf(q->resource, sizeof(q->resource), "%s%s%s", req->res->plural,
	    *sub ? "/" : "", sub);
}

/* Right scope, known resource: the api_resource, else r is set. */
static const struct api_resource *resolve(const struct target *t, int verb,
    struct api_resp *r)
{
	const struct api_resource *res =
	    api_resource_find(t->group, t->version, t->plural);
	if (res == NULL || (!res->namespaced && t->ns)) {
		not_found(r);
		return NULL;
	}
	if (res->namespaced && !t->ns &&
	    (t->name || (verb != API_LIST && verb != API_WATCH))) {
		if (t->name)
			not_found(r);
		else
			not_allowed(r);
		return NULL;
	}
	if (streaming_sub(t->sub)) {
		status_resp(r, 400, "BadRequest",
		    "%s/%s is not supported by this server yet: kubus serves no exec, attach, "
		    "port-forward or proxy streams",
		    t->plural, t->sub);
		return NULL;
	}
	return res;
}

static bool fill_req(struct call *x, const struct target *t, int verb,
    struct api_req *req, struct api_resp *r)
{
	req->srv = x->s;
	req->verb = verb;
	req->user = &x->user;
	req->ns = t->ns ? strdup(t->ns) : NULL;
	req->name = t->name ? strdup(t->name) : NULL;
	req->sub = t->sub ? strdup(t->sub) : NULL;
	req->want_table = wants_table(x->c);
	req->from_peer = x->peer;
	return parse_query(x->c, req, r) && parse_body(x, req, r);
}

static bool offer_later(struct call *x, struct api_req *req);
static void later_declined(struct call *x);
static void later_warning(struct call *x, struct api_resp *r);

static enum MHD_Result answer_resource(struct call *x, struct api_req *req,
    struct api_resp *r)
{
	bool offered = offer_later(x, req);
	api_handle(req, r);
	if (offered && r->later) {
		/* the answer comes with the put: keep what is said already */
		x->later = true;
		later_warning(x, r);
		return MHD_YES;
	}
	if (offered)
		later_declined(x);
	if (r->stream)
		return respond_stream(x, r, req->verb == API_WATCH);
	return respond_body(x->c, x->q, r);
}

static enum MHD_Result serve_resource(struct call *x, const struct target *t,
    struct api_resp *r)
{
	int verb = 0;
	if (verb_of(x->method, t, truthy(arg(x->c, "watch")), &verb)) {
		not_allowed(r);
		return respond_body(x->c, x->q, r);
	}
	x->q->verb = verb_labels[verb];
	bool ssar = !strcmp(t->plural, "selfsubjectaccessreviews");
	if ((x->peer || !ssar) && !authorize(x, t, verb, r))
		return respond_body(x->c, x->q, r);
	struct api_req req = { 0 };
	req.res = resolve(t, verb, r);
	if (req.res == NULL)
		return respond_body(x->c, x->q, r);
	enum MHD_Result rc;
	if (fill_req(x, t, verb, &req, r)) {
		label_metrics(x->q, verb, &req);
		rc = answer_resource(x, &req, r);
	} else {
		rc = respond_body(x->c, x->q, r);
	}
	api_req_free(&req);
	return rc;
}

/* --- other paths ------------------------------------------------------------------------- */

static enum MHD_Result serve_health(struct call *x, struct api_resp *r)
{
	bool ready = !is_stopping(x->h) && !x->s->stopping;
	if (!strncmp(x->url, "/readyz", 7) && !ready) {
		r->code = 500;
		r->text = strdup(
		    "[-]shutdown failed: reason withheld\nreadyz check failed\n");
	} else {
		r->code = 200;
		r->text = strdup("ok");
	}
	r->text_len = r->text ? strlen(r->text) : 0;
	r->content_type = "text/plain; charset=utf-8";
	x->q->verb = "GET";
	snprintf(x->q->resource, sizeof(x->q->resource), "%s", "");
	return respond_body(x->c, x->q, r);
}

static enum MHD_Result serve_metrics(struct call *x, struct api_resp *r)
{
	size_t len = 0;
	r->text = api_metrics_text(x->s, &len);
	if (r->text == NULL) {
		status_resp(r, 500, "InternalError",
		    "cannot format the metrics");
	} else {
		r->code = 200;
		r->text_len = len;
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	}
	return respond_body(x->c, x->q, r);
}

static enum MHD_Result serve_root(struct call *x, struct api_resp *r)
{
	r->code = 200;
	r->json = json_pack("{s:[s,s,s,s,s,s,s,s,s]}", "paths", "/api",
	    "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v3",
	    "/readyz", "/version");
	return respond_body(x->c, x->q, r);
}

/* The resource path of q's url, split once: waits(), write_here() and
 * serve_path() all ask. NULL for other paths (q->path NULL: no memory). */
static const struct target *rq_target(struct rq *q, const char *url)
{
	if (q->parsed == 0) {
		char *seg[MAX_SEGMENTS];
		q->parsed = -1;
		q->path = strdup(url);
		if (q->path != NULL) {
			int n = split_path(q->path, seg, MAX_SEGMENTS);
			if (n > 0 && parse_target(seg, n, &q->t))
				q->parsed = 1;
		}
	}
	return q->parsed > 0 ? &q->t : NULL;
}

static enum MHD_Result serve_path(struct call *x, struct api_resp *r)
{
	if (!strcmp(x->url, "/"))
		return serve_root(x, r);
	if (!strcmp(x->url, "/metrics"))
		return serve_metrics(x, r);
	const struct target *t = rq_target(x->q, x->url);
	if (x->q->path == NULL)
		return MHD_NO;
	if (t != NULL)
		return serve_resource(x, t, r);
	if (strcmp(x->method, "GET") && strcmp(x->method, "HEAD"))
		not_allowed(r);
	else if (!api_discovery(x->url,
		     header(x->c, MHD_HTTP_HEADER_ACCEPT), arg(x->c, "hash"), r))
		not_found(r);
	return respond_body(x->c, x->q, r);
}

static enum MHD_Result serve(struct call *x)
{
	struct api_resp r = { 0 };
	enum MHD_Result rc;
	if (x->q->too_big) {
		refusal(x->h, 413, &r);
		rc = respond_body(x->c, x->q, &r);
	} else if (!clean_text(x->url)) {
		status_resp(&r, 400, "BadRequest",
		    "the request path must be valid UTF-8 without control characters");
		rc = respond_body(x->c, x->q, &r);
	} else {
		int a = authenticate(x);
		if (a < 0 || (a == 0 && !public_path(x->url))) {
			unauthorized(&r);
			rc = respond_body(x->c, x->q, &r);
		} else if (health_path(x->url)) {
			rc = serve_health(x, &r);
		} else {
			rc = serve_path(x, &r);
		}
	}
	api_resp_free(&r);
	if (x->user_borrowed)
		memset(&x->user, 0, sizeof(x->user));
	else
		api_user_free(&x->user);
	return rc;
}

/* --- libmicrohttpd's callbacks --------------------------------------------------------------- */

/* Watches and log streams hold no in-flight slot: they last. */
static bool long_running(struct MHD_Connection *c, const char *url)
{
	return truthy(arg(c, "watch")) || strstr(url, "/watch/") ||
	    (truthy(arg(c, "follow")) && strstr(url, "/log"));
}

static enum MHD_Result refuse(struct MHD_Connection *c, struct rq *q)
{
	struct api_resp r = { 0 };
	refusal(q->h, q->refuse, &r);
	return respond_now(c, q, &r);
}

/* Will a body follow these headers without the client waiting for us? */
static bool body_coming(struct MHD_Connection *c)
{
	const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *ex = header(c, MHD_HTTP_HEADER_EXPECT);
	if (ex && !strcasecmp(ex, "100-continue"))
		return false;
	return (cl && strtoull(cl, NULL, 10) > 0) ||
	    header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* A client that is still sending would see a reset instead of our answer
 * if we hung up now: refusals wait for the body (read and dropped, up to
 * drain_max) unless none is coming. */
static size_t drain_max(const struct api_http *h)
{
	return (size_t)h->s->max_body * 4 + (1u << 20);
}

static void admit_request(struct api_http *h, struct MHD_Connection *c,
    const char *url, struct rq *q)
{
	const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > (unsigned long long)h->s->max_body) {
		q->refuse = 413;
		return;
	}
	if (long_running(c, url))
		return;
	if (__atomic_add_fetch(&h->inflight, 1, __ATOMIC_ACQ_REL) >
	    h->s->max_inflight) {
		__atomic_sub_fetch(&h->inflight, 1, __ATOMIC_ACQ_REL);
		q->refuse = 429;
		return;
	}
	q->counted = true;
}

static enum MHD_Result begin(struct api_http *h, struct MHD_Connection *c,
    const char *url, void **ptr)
{
	struct rq *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return MHD_NO;
	q->h = h;
	q->start_ns = mono_ns();
	q->verb = "GET";
	*ptr = q;
	/* Headers are in: the request (body included) has its own time. */
	conn_deadline(h, c,
	    h->s->request_timeout_ms / 1000 * 2 + HEADER_TIMEOUT_S);
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	admit_request(h, c, url, q);
	const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (q->refuse &&
	    (!body_coming(c) ||
		strtoull(cl ? cl : "0", NULL, 10) > drain_max(h)))
		return refuse(c, q);
	return MHD_YES;
}

/* Keep the body, or drop it when it is refused or too big; false when
 * even draining it is too much. */
static bool take_body(struct api_http *h, struct rq *q, const char *data,
    size_t n)
{
	q->seen += n;
	if (q->refuse || q->too_big)
		return q->seen <= drain_max(h);
	if (q->len + n > (size_t)h->s->max_body) {
		q->too_big = true;
		free(q->body);
		q->body = NULL;
		q->len = q->cap = 0;
		return true;
	}
	if (q->len + n + 1 > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		while (cap < q->len + n + 1)
			cap *= 2;
		char *b = realloc(q->body, cap);
		if (b == NULL) {
			q->too_big = true;
			return true;
		}
		q->body = b;
		q->cap = cap;
	}
	memcpy(q->body + q->len, data, n);
	q->len += n;
	q->body[q->len] = '\0';
	return true;
}

/* --- requests that may wait ------------------------------------------------------------ */

/* libmicrohttpd's loops must not block: a request that may wait (on a
 * store write, a list, a kubelet, a watch's start) goes to the `api`
 * service's workers (busapi.c) with its connection suspended, and its
 * answer is queued when the worker resumes it. Discovery, health and
 * metrics are answered in the loop, and so are reads of one object while
 * the store answers gets within INLINE_GET_NS on average (store-lmdb in
 * this process does, in some µs; etcd over the network does not). */
#define INLINE_GET_NS 200000

static bool store_fast(const struct api_http *h)
{
	return __atomic_load_n(&h->s->store_get_ns, __ATOMIC_RELAXED) <=
	    INLINE_GET_NS;
}

static bool waits(struct api_http *h, struct MHD_Connection *c,
    struct rq *q, const char *url, const char *method)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return true;
	if (long_running(c, url) || strstr(url, "/log"))
		return true;
	const struct target *t = rq_target(q, url);
	return t != NULL && (t->name == NULL || !store_fast(h));
}

/* A create that waits only for its put, which answers it (api_later):
 * handled in the loop too, the connection suspended until the put's
 * reply, rather than handed to a worker (10-15 % less CPU per create:
 * no wake-up of a worker). Not a Service, whose create allocates its
 * addresses under a lock and from the store. */
static bool write_here(struct api_http *h, struct rq *q, const char *url,
    const char *method)
{
	const struct target *t;
	return !strcmp(method, "POST") && store_fast(h) &&
	    (t = rq_target(q, url)) != NULL && t->name == NULL &&
	    strcmp(t->plural, "services");
}

/* A request on a worker. A write may be answered by its put's completion
 * (api_later in api.h) rather than by the worker waiting for it: a wait
 * costs a sleep and a wake-up per write. The worker and the completion
 * each hold a reference; the last one answers (or, asked `again`, hands
 * the request to a worker once more, to be handled without `later`). */
struct job {
	struct call x;
	struct api_later l;
	int refs;              /* __atomic */
	bool again;            /* handled once; no `later` this time */
	bool requeue;          /* the completion asked for it */
	struct api_resp resp;  /* the completion's answer */
	bool answered;         /* resp holds it */
	char *warning;         /* the handler's, for that answer */
};

static void job_done(struct api_http *h)
{
	pthread_mutex_lock(&h->smu);
	if (--h->jobs == 0)
		pthread_cond_broadcast(&h->scv);
	pthread_mutex_unlock(&h->smu);
}

static void run_job(void *arg);

static void job_submit(struct job *j)
{
	j->refs = 1;
	j->x.later = false;
	if (api_busapi_run(j->x.s->workers, run_job, j) != 0)
		run_job(j); /* the workers stopped: answer here */
}

static void job_unref(struct job *j)
{
	if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (j->requeue) {
		j->requeue = false;
		j->again = true;
		j->x = (struct call){ .h = j->x.h, .s = j->x.s, .c = j->x.c,
			.q = j->x.q, .url = j->x.url, .method = j->x.method,
			.job = j };
		job_submit(j);
		return;
	}
	struct api_http *h = j->x.h;
	struct MHD_Connection *c = j->x.c;
	if (j->answered) {
		/* Formatted by the event loop (resumed): this is the store's
		 * reply thread, which every write waits for. */
		struct api_resp *r = malloc(sizeof(*r));
		if (r) {
			*r = j->resp;
			if (r->warning == NULL) {
				r->warning = j->warning;
				j->warning = NULL;
			}
		} else {
			api_resp_free(&j->resp);
		}
		j->x.q->later_resp = r;
		j->x.q->later_rc = r ? MHD_YES : MHD_NO;
	}
	free(j->warning);
	free(j);
	MHD_resume_connection(c);
	job_done(h);
}

static void job_later_answer(struct api_later *l, struct api_resp *resp)
{
	struct job *j = (struct job *)((char *)l - offsetof(struct job, l));
	j->resp = *resp;
	memset(resp, 0, sizeof(*resp));
	j->answered = true;
	job_unref(j);
}

static void job_later_again(struct api_later *l)
{
	struct job *j = (struct job *)((char *)l - offsetof(struct job, l));
	j->requeue = true;
	job_unref(j);
}

/* On a worker, the first time: let the handler answer after its put
 * (with a reference for the completion, dropped if the handler answers
 * at once). */
static bool offer_later(struct call *x, struct api_req *req)
{
	if (x->job == NULL || x->job->again)
		return false;
	__atomic_add_fetch(&x->job->refs, 1, __ATOMIC_ACQ_REL);
	req->later = &x->job->l;
	req->want_mp = true; /* the answer is the stored bytes */
	return true;
}

static void later_warning(struct call *x, struct api_resp *r)
{
	free(x->job->warning);
	x->job->warning = r->warning;
	r->warning = NULL;
}

/* The handler answered at once: the completion's reference goes. */
static void later_declined(struct call *x)
{
	__atomic_sub_fetch(&x->job->refs, 1, __ATOMIC_ACQ_REL);
}

static void run_job(void *arg)
{
	struct job *j = arg;
	enum MHD_Result rc = serve(&j->x);
	if (!j->x.later) /* answered here (q->later_mr), not by a put */
		j->x.q->later_rc = rc;
	job_unref(j);
}

static enum MHD_Result defer(struct api_http *h, struct MHD_Connection *c,
    struct rq *q, const char *url, const char *method)
{
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return MHD_NO;
	j->x = (struct call){ .h = h,
		.s = h->s,
		.c = c,
		.q = q,
		.url = url,
		.method = method,
		.job = j };
	j->l = (struct api_later){ .answer = job_later_answer,
		.again = job_later_again };
	pthread_mutex_lock(&h->smu);
	h->jobs++;
	pthread_mutex_unlock(&h->smu);
	q->deferred = true;
	MHD_suspend_connection(c);
	if (write_here(h, q, url, method)) {
		j->refs = 1;
		run_job(j);
	} else {
		job_submit(j);
	}
	return MHD_YES;
}

/* Called again after the worker resumed the connection. */
static enum MHD_Result resumed(struct MHD_Connection *c, struct rq *q)
{
	q->deferred = false;
	if (q->later_resp) {
		struct api_resp *r = q->later_resp;
		q->later_resp = NULL;
		enum MHD_Result rc = respond_body(c, q, r);
		api_resp_free(r);
		free(r);
		return q->later_rc == MHD_NO ? MHD_NO : rc;
	}
	struct MHD_Response *mr = q->later_mr;
	q->later_mr = NULL;
	if (mr == NULL)
		return MHD_NO;
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)q->later_code, mr);
	MHD_destroy_response(mr);
	return q->later_rc == MHD_NO ? MHD_NO : rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **ptr)
{
	struct api_http *h = cls;
	struct rq *q = *ptr;
	(void)version;
	if (q == NULL)
		return begin(h, c, url, ptr);
	if (q->deferred)
		return resumed(c, q);
	if (*upload_size) {
		bool go_on = q->answered ||
		    take_body(h, q, upload, *upload_size);
		*upload_size = 0;
		return go_on ? MHD_YES : MHD_NO;
	}
	if (q->answered)
		return MHD_YES;
	if (q->refuse)
		return refuse(c, q);
	if (waits(h, c, q, url, method))
		return defer(h, c, q, url, method);
	struct call x = { .h = h,
		.s = h->s,
		.c = c,
		.q = q,
		.url = url,
		.method = method };
	return serve(&x);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ptr,
    enum MHD_RequestTerminationCode toe)
{
	struct api_http *h = cls;
	struct rq *q = *ptr;
	if (q == NULL)
		return;
	if (q->counted)
		__atomic_sub_fetch(&h->inflight, 1, __ATOMIC_ACQ_REL);
	if (q->code)
		api_metrics_request(h->s, q->verb, q->resource, q->code,
		    (double)(mono_ns() - q->start_ns) / NS_PER_S);
	if (q->later_mr)
		MHD_destroy_response(q->later_mr);
	if (q->later_resp) {
		api_resp_free(q->later_resp);
		free(q->later_resp);
	}
	free(q->body);
	free(q->path);
	free(q);
	*ptr = NULL;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		conn_deadline(h, c, IDLE_TIMEOUT_S);
		MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
		    (unsigned)IDLE_TIMEOUT_S);
	}
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	struct api_http *h = cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '"')
			*p = *p == '"' ? '\'' : ' ';
	/* Mostly clients that went away mid-handshake: not worth a warning. */
	kb_debug(h->s->ctx, "libmicrohttpd", "detail=\"%s\"", buf);
}

/* --- start and stop ------------------------------------------------------------------------- */

static bool loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		    (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* "HOST:PORT" or "[V6]:PORT" -> host and port strings. */
static bool split_listen(const char *listen, char *host, size_t hlen,
    char *port, size_t plen)
{
	const char *colon;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (end == NULL || end[1] != ':')
			return false;
		snprintf(host, hlen, "%.*s", (int)(end - listen - 1),
		    listen + 1);
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL)
			return false;
		snprintf(host, hlen, "%.*s", (int)(colon - listen), listen);
	}
	snprintf(port, plen, "%s", colon + 1);
	return port[0] && strspn(port, "0123456789") == strlen(port) &&
	    atoi(port) <= 65535;
}

static int bind_socket(const struct addrinfo *ai, bool plain, char *err,
    size_t errlen)
{
	if (plain && !loopback(ai->ai_addr)) {
		snprintf(err, errlen,
		    "plain_http serves only a loopback address; "
		    "listen on 127.0.0.1 or serve HTTPS");
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
		snprintf(err, errlen, "cannot listen: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The listening socket for s->listen; its port in *port. */
static int listen_on(const struct api_server *s, int *port, int *family,
    char *err, size_t errlen)
{
	char host[256], portstr[16];
	const char *listen = s->listen ? s->listen : "127.0.0.1:6443";
	if (!split_listen(listen, host, sizeof(host), portstr,
		sizeof(portstr))) {
		snprintf(err, errlen, "listen `%s`: expected HOST:PORT",
		    listen);
		return -1;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV },
			*ai = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "listen `%s`: %s", listen,
		    gai_strerror(rc));
		return -1;
	}
	char why[256] = "";
	int fd = bind_socket(ai, s->plain_http, why, sizeof(why));
	*family = ai->ai_family;
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(err, errlen, "listen `%s`: %s", listen,
		    why[0] ? why : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ?
		((struct sockaddr_in6 *)&ss)->sin6_port :
		((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void opt(struct MHD_OptionItem *o, size_t *n, enum MHD_OPTION option,
    intptr_t value, void *ptr)
{
	o[*n].option = option;
	o[*n].value = value;
	o[*n].ptr_value = ptr;
	(*n)++;
}

static struct MHD_Daemon *daemon_start(struct api_http *h, int fd, int family,
    const struct api_pki *pki)
{
	struct MHD_OptionItem o[20];
	size_t n = 0;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int64_t loops = h->s->http_threads > 0 ? h->s->http_threads :
	    ncpu > 0				 ? ncpu :
						   1;
	if (loops > 1)
		opt(o, &n, MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)loops, NULL);
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	opt(o, &n, MHD_OPTION_LISTEN_SOCKET, fd, NULL);
	opt(o, &n, MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, NULL);
	opt(o, &n, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS, NULL);
	opt(o, &n, MHD_OPTION_CONNECTION_MEMORY_LIMIT, MEMORY_LIMIT, NULL);
	opt(o, &n, MHD_OPTION_THREAD_STACK_SIZE, STACK_SIZE, NULL);
	opt(o, &n, MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL);
	opt(o, &n, MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h);
	opt(o, &n, MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h);
	opt(o, &n, MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_log, h);
	if (!h->s->plain_http) {
		flags |= MHD_USE_TLS;
		opt(o, &n, MHD_OPTION_HTTPS_MEM_KEY, 0, pki->key_pem);
		opt(o, &n, MHD_OPTION_HTTPS_MEM_CERT, 0, pki->cert_pem);
	}
	opt(o, &n, MHD_OPTION_END, 0, NULL);
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
	    MHD_OPTION_ARRAY, o, MHD_OPTION_END);
}

static struct api_http *http_new(struct api_server *s)
{
	struct api_http *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->s = s;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&h->smu, NULL);
	pthread_cond_init(&h->scv, NULL);
	return h;
}

static void http_free(struct api_http *h)
{
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->scv);
	pthread_mutex_destroy(&h->smu);
	free(h);
}

static bool check_pki(const struct api_server *s, const struct api_pki *pki,
    char *err, size_t errlen)
{
	if (s->plain_http)
		return true;
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		snprintf(err, errlen,
		    "this libmicrohttpd has no TLS; serve plain_http on loopback");
		return false;
	}
	if (pki == NULL || pki->key_pem == NULL || pki->cert_pem == NULL) {
		snprintf(err, errlen, "no serving certificate for HTTPS");
		return false;
	}
	return true;
}

struct api_http *api_http_start(struct api_server *s, const struct api_pki *pki,
    int *port, char *err, size_t errlen)
{
	if (!check_pki(s, pki, err, errlen))
		return NULL;
	int family = AF_INET;
	int fd = listen_on(s, port, &family, err, errlen);
	if (fd < 0)
		return NULL;
	struct api_http *h = http_new(s);
	if (h == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	api_authn_hold();
	h->d = daemon_start(h, fd, family, pki);
	if (h->d == NULL) {
		close(fd);
		api_authn_release();
		http_free(h);
		snprintf(err, errlen, "libmicrohttpd would not start on %s",
		    s->listen);
		return NULL;
	}
	if (pthread_create(&h->reaper, NULL, reaper_main, h) == 0)
		h->reaper_on = true;
	else
		kb_warn(s->ctx,
		    "no reaper thread: slow clients are cut by the idle timeout only",
		    "reason=\"%s\"", strerror(errno));
	return h;
}

void api_http_stop(struct api_http *h)
{
	if (h == NULL)
		return;
	__atomic_store_n(&h->stopping, true, __ATOMIC_RELEASE);
	if (h->reaper_on) {
		pthread_mutex_lock(&h->mu);
		h->stop_reaper = true;
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->reaper, NULL);
	}
	/* Requests with the workers finish and resume their connections;
	 * suspended streams are woken to see `stopping` and end. (No
	 * connection may stay suspended into MHD_stop_daemon.) */
	pthread_mutex_lock(&h->smu);
	while (h->jobs > 0)
		pthread_cond_wait(&h->scv, &h->smu);
	for (struct stream_ctx *sc = h->streams; sc; sc = sc->next)
		stream_wake(sc);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	while (h->nstreams > 0 &&
	    pthread_cond_timedwait(&h->scv, &h->smu, &ts) == 0)
		;
	pthread_mutex_unlock(&h->smu);
	MHD_stop_daemon(h->d);
	api_stream_pumps_wait();
	api_authn_release();
	http_free(h);
}
