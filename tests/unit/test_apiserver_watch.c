/* tests/unit/test_apiserver_watch.c — the API server's watch cache and
 * serving limits, over plain HTTP on loopback against an in-process host
 * (store-lmdb + apiserver):
 *
 *   - a watcher keeps its stream across the store dropping the cache's
 *     watch: silently (the store forgot it, as after a restart), with the
 *     store's error publication, and with the history compacted away
 *     meanwhile (the cache relists and sends the difference as events);
 *     and a false alarm (the old watch lives on: events from both are
 *     applied once, the old one is ended); no event is lost or repeated,
 *     none is an ERROR; /metrics counts the re-established watches;
 *   - a watcher that does not read is dropped with a 410 Expired error once
 *     the events it has not taken fill the cache's ring (watch_buffer),
 *     instead of the server holding them for it;
 *   - a Table watch with includeObject=Object carries whole objects;
 *   - plain HTTP: refused at start on a non-loopback address with a clear
 *     message, and not served by the default (HTTPS) server.
 *
 * The test impersonates the store's drop notices: its bus client is in
 * kubus:kind:store (may publish on store/ topics) and kubus:kind:frontend
 * (may call the store and see its topics).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include <kubus/store.h>

#define CM "/api/v1/namespaces/default/configmaps"

static const char *const groups[] = { "kubus:plugins", "kubus:kind:frontend",
	"kubus:kind:store" };

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the server --------------------------------------------------------------- */

struct srv {
	struct kbt_host *h;
	int port;
	char token[512];
	kb_ctx *bus;
};

static char *value_after(const char *text, const char *key)
{
	const char *p = text ? strstr(text, key) : NULL;
	if (p == NULL)
		return NULL;
	p += strlen(key);
	return strndup(p, strcspn(p, " \t\r\n\""));
}

/* A host with the store and a plain-HTTP apiserver; `extra` is more of its
 * config map ("watch_buffer: 16, "). NULL host and err set on failure. */
static struct kbt_host *start_host(const char *listen, bool plain,
    const char *extra, char *err, size_t errlen)
{
	char conf[512];
	snprintf(conf, sizeof(conf), "%s%slisten: \"%s\"", extra ? extra : "",
	    plain ? "plain_http: true, " : "", listen);
	return kbt_api_host_start(conf, err, errlen);
}

static bool srv_start(struct srv *s, const char *extra)
{
	char err[1024] = "", listen[64];
	memset(s, 0, sizeof(*s));
	s->port = kbt_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	s->h = start_host(listen, true, extra, err, sizeof(err));
	if (s->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return false;
	}
	s->bus = kbt_client(s->h, "tester", "plugin:tester", groups, 3);
	if (s->bus == NULL)
		return false;
	/* An admin token, as the API server gets its own. */
	kb_msg *rep = NULL;
	int rc = kb_call(s->bus, "auth", "issue",
	    kb_mp_body("{s:s, s:[s]}", "user", "admin", "groups", "system:masters"), 10000, &rep);
	char *tok = rc == 0 ? kb_mp_strdup(kb_msg_body(rep), "token") : NULL;
	kb_msg_free(rep);
	if (tok == NULL) {
		fprintf(stderr, "auth issue: %s\n", kb_strerror(rc));
		return false;
	}
	snprintf(s->token, sizeof(s->token), "%s", tok);
	free(tok);
	return true;
}

static int tcp_connect(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool send_req(struct srv *s, int fd, const char *method, const char *path,
    const char *body, bool close_after)
{
	size_t blen = body ? strlen(body) : 0;
	char *req = NULL;
	int n = asprintf(&req,
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
	    "Accept: application/json\r\n%s%s"
	    "Content-Length: %zu\r\n\r\n",
	    method, path, s->token, body ? "Content-Type: application/json\r\n" : "",
	    close_after ? "Connection: close\r\n" : "", blen);
	bool ok = n > 0 && send_all(fd, req, (size_t)n) && (!body || send_all(fd, body, blen));
	free(req);
	return ok;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		assert_non_null(p);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Read what is there within ms; false at EOF or error. */
static bool read_some(int fd, struct buf *b, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) <= 0)
		return true;
	char tmp[65536];
	ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
	if (n <= 0)
		return false;
	buf_add(b, tmp, (size_t)n);
	return true;
}

/* One request on its own connection: the status code, the body in *out. */
static int http(struct srv *s, const char *method, const char *path, const char *body,
    char **out)
{
	int fd = tcp_connect(s->port, 0);
	assert_true(fd >= 0);
	assert_true(send_req(s, fd, method, path, body, true));
	struct buf b = { 0 };
	int64_t until = now_ms() + 20000;
	while (now_ms() < until && read_some(fd, &b, 500))
		;
	close(fd);
	int code = 0;
	if (b.p && !strncmp(b.p, "HTTP/1.1 ", 9))
		code = atoi(b.p + 9);
	if (out) {
		const char *e = b.p ? strstr(b.p, "\r\n\r\n") : NULL;
		*out = strdup(e ? e + 4 : "");
	}
	free(b.p);
	return code;
}

static void create_cm(struct srv *s, const char *name, size_t data_len)
{
	char *val = malloc(data_len + 1);
	assert_non_null(val);
	memset(val, 'v', data_len);
	val[data_len] = '\0';
	char *body = NULL;
	assert_true(asprintf(&body,
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"},"
	    "\"data\":{\"k\":\"%s\"}}", name, val) > 0);
	char *out = NULL;
	int code = http(s, "POST", CM, body, &out);
	if (code != 201)
		fail_msg("create %s: %d %.300s", name, code, out);
	free(out);
	free(body);
	free(val);
}

static char *list_rv(struct srv *s, const char *path)
{
	char *out = NULL;
	assert_int_equal(http(s, "GET", path, NULL, &out), 200);
	char *rv = value_after(strstr(out, "\"resourceVersion\":"), "\"resourceVersion\":\"");
	free(out);
	assert_non_null(rv);
	return rv;
}

/* --- a watch stream ------------------------------------------------------------- */

struct stream {
	int fd;
	struct buf raw;  /* as received */
	struct buf body; /* de-chunked */
	size_t used;     /* raw bytes de-chunked so far */
	bool eof, ended; /* connection closed; last chunk seen */
};

static void dechunk(struct stream *st)
{
	if (st->used == 0) {
		const char *e = st->raw.p ? strstr(st->raw.p, "\r\n\r\n") : NULL;
		if (e == NULL)
			return;
		st->used = (size_t)(e + 4 - st->raw.p);
	}
	while (!st->ended) {
		const char *p = st->raw.p + st->used;
		const char *nl = memmem(p, st->raw.len - st->used, "\r\n", 2);
		if (nl == NULL)
			return;
		size_t n = strtoul(p, NULL, 16);
		size_t need = (size_t)(nl + 2 - p) + n + 2;
		if (st->raw.len - st->used < need)
			return;
		buf_add(&st->body, nl + 2, n);
		st->used += need;
		if (n == 0)
			st->ended = true;
	}
}

static void stream_open(struct srv *s, struct stream *st, const char *path, int rcvbuf,
    const char *accept)
{
	memset(st, 0, sizeof(*st));
	st->fd = tcp_connect(s->port, rcvbuf);
	assert_true(st->fd >= 0);
	char *req = NULL;
	int n = asprintf(&req,
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
	    "Accept: %s\r\n\r\n", path, s->token, accept ? accept : "application/json");
	assert_true(n > 0 && send_all(st->fd, req, (size_t)n));
	free(req);
}

static void stream_pump(struct stream *st, int ms)
{
	if (!st->eof && !read_some(st->fd, &st->raw, ms))
		st->eof = true;
	dechunk(st);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Read until the de-chunked body holds `needle` n times; false on timeout. */
static bool stream_wait(struct stream *st, const char *needle, size_t n, int ms)
{
	int64_t until = now_ms() + ms;
	while (count(st->body.p, needle) < n) {
		if (now_ms() >= until || st->eof)
			return false;
		stream_pump(st, 100);
	}
	return true;
}

static void stream_close(struct stream *st)
{
	if (st->fd >= 0)
		close(st->fd);
	free(st->raw.p);
	free(st->body.p);
}

/* --- the store's side ---------------------------------------------------------------- */

/* The configmaps cache's store watch as the bus shows it. */
static struct {
	pthread_mutex_t mu;
	char topic[256];
	int64_t watch_id;
	int pubs;
	int64_t track; /* count publications of this watch */
	int track_hits;
	char last_key[256]; /* the newest configmap key published */
} W = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void track(int64_t id)
{
	pthread_mutex_lock(&W.mu);
	W.track = id;
	W.track_hits = 0;
	pthread_mutex_unlock(&W.mu);
}

/* Wait until the bus has shown a publication of a key ending in name. */
static bool published(const char *name)
{
	int64_t until = now_ms() + 10000;
	for (;;) {
		pthread_mutex_lock(&W.mu);
		size_t kl = strlen(W.last_key), nl = strlen(name);
		bool seen = kl >= nl && !strcmp(W.last_key + kl - nl, name) &&
		    (kl == nl || W.last_key[kl - nl - 1] == '/');
		pthread_mutex_unlock(&W.mu);
		if (seen)
			return true;
		if (now_ms() >= until)
			return false;
		usleep(20 * 1000);
	}
}

static int tracked_hits(void)
{
	pthread_mutex_lock(&W.mu);
	int n = W.track_hits;
	pthread_mutex_unlock(&W.mu);
	return n;
}

static void on_store_pub(void *arg, const kb_msg *m)
{
	(void)arg;
	const msgpack_object *b = kb_msg_body(m);
	const msgpack_object *evs = kb_mp_key(b, "events");
	int64_t id = 0;
	if (!kb_mp_int(b, "watch_id", &id) || evs == NULL || evs->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < evs->via.array.size; i++) {
		char *key = kb_mp_strdup(kb_mp_key(&evs->via.array.ptr[i], "kv"), "key");
		bool cm = key && strstr(key, "/configmaps/");
		if (!cm) {
			free(key);
			continue;
		}
		pthread_mutex_lock(&W.mu);
		snprintf(W.last_key, sizeof(W.last_key), "%s", key);
		free(key);
		snprintf(W.topic, sizeof(W.topic), "%s", kb_msg_dst(m));
		W.watch_id = id;
		W.pubs++;
		if (id == W.track)
			W.track_hits++;
		pthread_mutex_unlock(&W.mu);
		return;
	}
}

static int64_t current_watch(char *topic, size_t len)
{
	pthread_mutex_lock(&W.mu);
	int64_t id = W.watch_id;
	snprintf(topic, len, "%s", W.topic);
	pthread_mutex_unlock(&W.mu);
	return id;
}

/* The watch that replaced `old`, once the bus has shown it publishing (our
 * subscription may run after the HTTP stream has the event). */
static int64_t new_watch(int64_t old, char *topic, size_t len)
{
	int64_t until = now_ms() + 10000, id;
	while ((id = current_watch(topic, len)) == old && now_ms() < until)
		usleep(20 * 1000);
	return id;
}

/* What the store does when it forgets a watch: unwatch it for real. */
static void store_forget(struct srv *s, int64_t id)
{
	kb_msg *rep = NULL;
	assert_int_equal(kb_call(s->bus, KB_STORE_SERVICE, "unwatch",
	    kb_mp_body("{s:I}", "watch_id", id), 5000, &rep), 0);
	kb_msg_free(rep);
}

/* ... and tell the watcher, as store-lmdb does when it must drop one. */
static void store_notice(struct srv *s, const char *topic, int64_t id)
{
	assert_int_equal(kb_publish(s->bus, topic,
	    kb_mp_body("{s:I, s:{s:s, s:s}}", "watch_id", id, "error", "code", "Expired",
	        "message", "test: the store dropped this watch")), 0);
}

static void store_compact_now(struct srv *s)
{
	kb_msg *rep = NULL;
	int64_t rev = 0;
	assert_int_equal(kb_call(s->bus, KB_STORE_SERVICE, "revision", kb_mp_body("{}"), 5000,
	    &rep), 0);
	assert_true(kb_mp_int(kb_msg_body(rep), "rev", &rev));
	kb_msg_free(rep);
	rep = NULL;
	assert_int_equal(kb_call(s->bus, KB_STORE_SERVICE, "compact",
	    kb_mp_body("{s:I}", "rev", rev), 5000, &rep), 0);
	kb_msg_free(rep);
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_watch_survives_store_drops(void **state)
{
	(void)state;
	struct srv s;
	assert_true(srv_start(&s, NULL));
	assert_int_equal(kb_subscribe(s.bus, "store/watch/*", on_store_pub, NULL), 0);
	char *rv = list_rv(&s, CM);
	char path[512];
	snprintf(path, sizeof(path), CM "?watch=true&resourceVersion=%s&timeoutSeconds=120", rv);
	free(rv);
	struct stream st;
	stream_open(&s, &st, path, 0, NULL);

	create_cm(&s, "a1", 8);
	assert_true(stream_wait(&st, "\"name\":\"a1\"", 1, 10000));
	assert_true(published("a1"));
	char topic[256];
	int64_t id = current_watch(topic, sizeof(topic));
	assert_true(id > 0);

	/* 1. Silently: the store forgets the watch (as when it restarts). The
	 * cache notices its own writes do not come back and watches again
	 * from the last revision it applied: nothing is lost. */
	store_forget(&s, id);
	create_cm(&s, "a2", 8);
	create_cm(&s, "a3", 8);
	assert_true(stream_wait(&st, "\"name\":\"a3\"", 1, 15000));
	assert_int_equal(count(st.body.p, "\"name\":\"a2\""), 1);
	int64_t id2 = new_watch(id, topic, sizeof(topic));
	assert_true(id2 > 0 && id2 != id);

	/* 2. With the store's notice: picked up at once (no write needed). */
	store_forget(&s, id2);
	create_cm(&s, "a4", 8);
	int64_t t0 = now_ms();
	store_notice(&s, topic, id2);
	assert_true(stream_wait(&st, "\"name\":\"a4\"", 1, 15000));
	int64_t took = now_ms() - t0;
	print_message("event missed by a dropped watch delivered %" PRId64 " ms after the notice\n",
	    took);
	int64_t id3 = new_watch(id2, topic, sizeof(topic));
	assert_true(id3 > 0 && id3 != id2);

	/* 3. The history the cache needs is compacted away meanwhile: it
	 * relists and sends the difference (a5 added, a1 deleted). */
	store_forget(&s, id3);
	create_cm(&s, "a5", 8);
	char *out = NULL;
	assert_int_equal(http(&s, "DELETE", CM "/a1", NULL, &out), 200);
	free(out);
	store_compact_now(&s);
	store_notice(&s, topic, id3);
	assert_true(stream_wait(&st, "\"name\":\"a5\"", 1, 15000));
	assert_true(stream_wait(&st, "{\"type\":\"DELETED\"", 1, 15000));
	assert_non_null(strstr(strstr(st.body.p, "{\"type\":\"DELETED\""), "\"name\":\"a1\""));

	/* The new watch delivers as before. */
	create_cm(&s, "a6", 8);
	assert_true(stream_wait(&st, "\"name\":\"a6\"", 1, 10000));

	/* Each object once per change, no error, stream still open. */
	for (int i = 2; i <= 6; i++) {
		char n[32];
		snprintf(n, sizeof(n), "\"name\":\"a%d\"", i);
		assert_int_equal(count(st.body.p, n), 1);
	}
	assert_int_equal(count(st.body.p, "\"name\":\"a1\""), 2); /* ADDED, DELETED */
	assert_null(strstr(st.body.p, "\"ERROR\""));
	assert_false(st.eof);

	/* 4. A false alarm: the store did not drop the watch after all. The
	 * cache watches again; both watches publish the next event, the
	 * cache applies it once and ends the old watch. */
	int64_t id4 = new_watch(id3, topic, sizeof(topic));
	assert_true(id4 > 0);
	track(id4);
	store_notice(&s, topic, id4);
	/* Re-established when the metric moves. */
	int64_t until = now_ms() + 10000;
	for (;;) {
		assert_int_equal(http(&s, "GET", "/metrics", NULL, &out), 200);
		const char *m4 = strstr(out,
		    "apiserver_watch_cache_resyncs_total{group=\"\",resource=\"configmaps\"} ");
		int n4 = m4 ? atoi(strchr(m4, '}') + 2) : 0;
		free(out);
		if (n4 >= 4)
			break;
		if (now_ms() >= until)
			fail_msg("resyncs %d after the notice for watch %" PRId64
				 " (before: %" PRId64 "; the bus shows %" PRId64 ")",
			    n4, id4, id3, current_watch(topic, sizeof(topic)));
		usleep(100 * 1000);
	}
	create_cm(&s, "a7", 8);
	assert_true(stream_wait(&st, "\"name\":\"a7\"", 1, 10000));
	assert_true(published("a7"));
	/* The old watch was alive: it published a7 too. */
	for (int64_t t = now_ms() + 10000; tracked_hits() < 1 && now_ms() < t;)
		usleep(20 * 1000);
	assert_true(tracked_hits() >= 1);
	stream_pump(&st, 300);
	assert_int_equal(count(st.body.p, "\"name\":\"a7\""), 1);
	/* Ended by the keeper: it publishes no more. */
	until = now_ms() + 10000;
	bool ended = false;
	for (int i = 0; !ended && now_ms() < until; i++) {
		usleep(400 * 1000);
		track(id4);
		char n[32];
		snprintf(n, sizeof(n), "a8-%d", i);
		create_cm(&s, n, 8);
		char needle[48];
		snprintf(needle, sizeof(needle), "\"name\":\"%s\"", n);
		assert_true(stream_wait(&st, needle, 1, 10000));
		assert_true(published(n));
		usleep(300 * 1000); /* the other watch's copy, if any */
		ended = tracked_hits() == 0;
	}
	assert_true(ended);

	/* The re-established watches are counted. */
	assert_int_equal(http(&s, "GET", "/metrics", NULL, &out), 200);
	const char *m = strstr(out,
	    "apiserver_watch_cache_resyncs_total{group=\"\",resource=\"configmaps\"} ");
	assert_non_null(m);
	assert_true(atoi(strchr(m, '}') + 2) >= 4);
	free(out);

	/* A list from the cache agrees with the store. */
	assert_int_equal(http(&s, "GET", CM "?resourceVersion=0", NULL, &out), 200);
	assert_non_null(strstr(out, "\"name\":\"a5\""));
	assert_null(strstr(out, "\"name\":\"a1\""));
	free(out);
	stream_close(&st);
	kbt_host_stop(s.h);
}

static void test_lagging_watcher_dropped(void **state)
{
	(void)state;
	struct srv s;
	assert_true(srv_start(&s, "watch_buffer: 16, "));
	char *rv = list_rv(&s, CM);
	char path[512];
	snprintf(path, sizeof(path), CM "?watch=true&resourceVersion=%s&timeoutSeconds=120", rv);
	free(rv);
	/* A client that does not read: a small receive buffer, then nothing. */
	struct stream st;
	stream_open(&s, &st, path, 4096, NULL);
	stream_pump(&st, 2000); /* the response headers */
	/* More events than the server's socket send buffer (at most
	 * tcp_wmem's maximum) and the ring (16) hold together. */
	enum { SIZE = 200 * 1024 };
	long wmem = 4194304;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
	if (f) {
		long a, b, c;
		if (fscanf(f, "%ld %ld %ld", &a, &b, &c) == 3)
			wmem = c;
		fclose(f);
	}
	int N = (int)(wmem / SIZE) + 16 + 24;
	if (N > 400) {
		print_message("skipped: tcp_wmem max %ld would need %d events of 200 KiB\n", wmem,
		    N);
		stream_close(&st);
		kbt_host_stop(s.h);
		skip();
	}
	for (int i = 0; i < N; i++) {
		char n[32];
		snprintf(n, sizeof(n), "lag-%d", i);
		create_cm(&s, n, SIZE);
	}
	/* Now read everything: the stream ends with 410 Expired before it has
	 * carried all N events. */
	int64_t until = now_ms() + 30000;
	while (!st.eof && !st.ended && now_ms() < until)
		stream_pump(&st, 200);
	size_t got = count(st.body.p, "\"name\":\"lag-");
	print_message("a watcher that did not read got %zu of %d events, then: %s\n", got, N,
	    st.body.p && strstr(st.body.p, "\"ERROR\"") ? "ERROR" : "no error");
	assert_true(st.ended || st.eof);
	assert_non_null(st.body.p);
	assert_non_null(strstr(st.body.p, "{\"type\":\"ERROR\""));
	assert_non_null(strstr(st.body.p, "\"code\":410"));
	assert_non_null(strstr(st.body.p, "\"reason\":\"Expired\""));
	assert_true(got < (size_t)N);
	stream_close(&st);

	/* A reader that keeps up gets them all (fewer than the ring holds, so
	 * however late its thread runs). */
	rv = list_rv(&s, CM);
	snprintf(path, sizeof(path), CM "?watch=true&resourceVersion=%s&timeoutSeconds=60", rv);
	free(rv);
	stream_open(&s, &st, path, 0, NULL);
	for (int i = 0; i < 12; i++) {
		char n[32];
		snprintf(n, sizeof(n), "ok-%d", i);
		create_cm(&s, n, 64);
		stream_pump(&st, 0);
	}
	if (!stream_wait(&st, "\"name\":\"ok-", 12, 15000)) {
		print_message("the reader got %zu of 12 (eof %d, ended %d): %.3000s\n",
		    count(st.body.p, "\"name\":\"ok-"), st.eof, st.ended,
		    st.raw.p ? st.raw.p : "(nothing)");
		fail();
	}
	assert_null(strstr(st.body.p, "\"ERROR\""));
	stream_close(&st);
	kbt_host_stop(s.h);
}

static void test_table_watch_include_object(void **state)
{
	(void)state;
	struct srv s;
	assert_true(srv_start(&s, NULL));
	create_cm(&s, "t1", 8);
	const char *table = "application/json;as=Table;v=v1;g=meta.k8s.io";
	struct stream full, meta;
	stream_open(&s, &full, CM "?watch=true&includeObject=Object&timeoutSeconds=30", 0, table);
	stream_open(&s, &meta, CM "?watch=true&timeoutSeconds=30", 0, table);
	assert_true(stream_wait(&full, "\"name\":\"t1\"", 1, 10000));
	assert_true(stream_wait(&meta, "\"name\":\"t1\"", 1, 10000));
	create_cm(&s, "t2", 8);
	assert_true(stream_wait(&full, "\"name\":\"t2\"", 1, 10000));
	assert_true(stream_wait(&meta, "\"name\":\"t2\"", 1, 10000));
	/* Whole objects (with data) vs PartialObjectMetadata (without). */
	assert_int_equal(count(full.body.p, "\"data\":{\"k\":\"vvvvvvvv\"}"), 2);
	assert_int_equal(count(full.body.p, "\"kind\":\"ConfigMap\""), 2);
	assert_null(strstr(meta.body.p, "\"data\":{\"k\""));
	assert_int_equal(count(meta.body.p, "\"kind\":\"PartialObjectMetadata\""), 2);
	stream_close(&full);
	stream_close(&meta);
	kbt_host_stop(s.h);
}

static void test_plain_http_loopback_only(void **state)
{
	(void)state;
	char err[1024] = "";
	struct kbt_host *h = start_host("0.0.0.0:0", true, NULL, err, sizeof(err));
	if (h)
		kbt_host_stop(h);
	assert_null(h);
	print_message("plain_http on 0.0.0.0: %s\n", err);
	assert_non_null(strstr(err, "plain_http serves only a loopback address"));

	/* The default server speaks TLS only: a plain request gets no HTTP. */
	h = start_host("127.0.0.1:0", false, NULL, err, sizeof(err));
	assert_non_null(h);
	char path[4200];
	snprintf(path, sizeof(path), "%s/admin.kubeconfig", kbt_host_data_dir(h));
	char *kc = kbt_slurp(path);
	char *url = value_after(kc, "server: ");
	free(kc);
	assert_non_null(url);
	assert_int_equal(strncmp(url, "https://127.0.0.1:", 18), 0);
	int fd = tcp_connect(atoi(url + 18), 0);
	free(url);
	assert_true(fd >= 0);
	const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	assert_true(send_all(fd, req, sizeof(req) - 1));
	struct buf b = { 0 };
	int64_t until = now_ms() + 5000;
	while (now_ms() < until && read_some(fd, &b, 200))
		;
	close(fd);
	assert_true(b.p == NULL || strncmp(b.p, "HTTP/1.1 200", 12) != 0);
	free(b.p);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_survives_store_drops),
		cmocka_unit_test(test_lagging_watcher_dropped),
		cmocka_unit_test(test_table_watch_include_object),
		cmocka_unit_test(test_plain_http_loopback_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
