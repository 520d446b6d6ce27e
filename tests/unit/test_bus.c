/* tests/unit/test_bus.c — the in-process bus: req/rep, pub/sub, deadlines,
 * services going away, large messages, many messages in flight, ACLs,
 * publications made while dispatching (their wakes owed till the handler
 * returns or sends a request), the order of matching subscriptions,
 * services served on the requester's thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const char *const plugin_groups[] = { "kubus:plugins", "kubus:kind:service" };

static const char echo_yaml[] = "plugins:\n"
				"  - name: echo\n"
				"    use: echo\n";

static struct kbt_host *start(const char *yaml)
{
	char err[1024];
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	if (h == NULL)
		fail_msg("host did not start: %s", err);
	return h;
}

static void test_req_rep(void **state)
{
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", plugin_groups, 2);
	kb_msg *rep = NULL;
	int rc = kb_call(c, "echo", "echo", kb_mp_body("{s:s, s:i}", "hello", "world", "n", 7),
	    2000, &rep);
	assert_int_equal(rc, 0);
	const msgpack_object *b = kb_msg_body(rep);
	assert_true(kb_mp_streq(b, "hello", "world"));
	int64_t n = 0;
	assert_true(kb_mp_int(b, "n", &n));
	assert_int_equal(n, 7);
	assert_string_equal(kb_msg_src(rep), "echo");
	assert_string_equal(kb_msg_principal(rep), "plugin:echo");
	kb_msg_free(rep);

	/* The core stamps who sent it. */
	rc = kb_call(c, "echo", "whoami", NULL, 2000, &rep);
	assert_int_equal(rc, 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "principal", "plugin:tester"));
	assert_true(kb_mp_streq(kb_msg_body(rep), "src", "tester"));
	kb_msg_free(rep);

	/* An error reply carries its code and message. */
	rc = kb_call(c, "echo", "nosuchop", NULL, 2000, &rep);
	assert_int_equal(rc, KB_EBADREQUEST);
	assert_non_null(rep);
	const char *msg;
	assert_int_equal(kb_msg_err(rep, &msg), KB_EBADREQUEST);
	assert_non_null(strstr(msg, "nosuchop"));
	kb_msg_free(rep);

	/* Nobody serves it. */
	rc = kb_call(c, "nobody", "x", NULL, 2000, &rep);
	assert_int_equal(rc, KB_EUNAVAILABLE);
	assert_null(rep);
	kbt_host_stop(h);
}

struct subrec {
	pthread_mutex_t mu;
	int n;
	char topics[8][64];
	int64_t vals[8];
};

static void on_pub(void *arg, const kb_msg *m)
{
	struct subrec *r = arg;
	pthread_mutex_lock(&r->mu);
	if (r->n < 8) {
		snprintf(r->topics[r->n], 64, "%s", kb_msg_dst(m));
		kb_mp_int(kb_msg_body(m), "v", &r->vals[r->n]);
	}
	r->n++;
	pthread_mutex_unlock(&r->mu);
}

/* *np (under mu) once it is at least want, or after 2 s. */
static int wait_n(pthread_mutex_t *mu, const int *np, int want)
{
	int n = 0;
	for (int i = 0; i <= 200; i++) {
		pthread_mutex_lock(mu);
		n = *np;
		pthread_mutex_unlock(mu);
		if (n >= want || i == 200)
			break;
		usleep(10000);
	}
	return n;
}

static int wait_count(struct subrec *r, int want)
{
	return wait_n(&r->mu, &r->n, want);
}

static void test_pub_sub(void **state)
{
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *a = kbt_client(h, "a", "plugin:a", plugin_groups, 2);
	kb_ctx *b = kbt_client(h, "b", "plugin:b", plugin_groups, 2);
	struct subrec ra = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct subrec rb = { .mu = PTHREAD_MUTEX_INITIALIZER };
	assert_int_equal(kb_subscribe(a, "events/pods", on_pub, &ra), 0);
	assert_int_equal(kb_subscribe(b, "events/*", on_pub, &rb), 0);
	/* publish from the echo plugin through a request, and directly */
	kb_msg *rep;
	assert_int_equal(kb_call(a, "echo", "publish",
	                     kb_mp_body("{s:s, s:{s:i}}", "topic", "events/pods", "body", "v", 1),
	                     2000, &rep), 0);
	kb_msg_free(rep);
	kb_ctx *p = kbt_client(h, "p", "plugin:p", plugin_groups, 2);
	assert_int_equal(kb_publish(p, "events/nodes", kb_mp_body("{s:i}", "v", 2)), 0);
	assert_int_equal(kb_publish(p, "other", kb_mp_body("{s:i}", "v", 3)), 0);
	assert_int_equal(wait_count(&rb, 2), 2);
	assert_int_equal(wait_count(&ra, 1), 1);
	usleep(50000);
	assert_int_equal(ra.n, 1); /* exact match only */
	assert_string_equal(ra.topics[0], "events/pods");
	assert_int_equal(ra.vals[0], 1);
	assert_int_equal(rb.n, 2); /* prefix pattern, not "other" */
	assert_int_equal(rb.vals[0], 1);
	assert_int_equal(rb.vals[1], 2);
	/* unsubscribed: nothing more arrives */
	assert_int_equal(kb_unsubscribe(b, "events/*"), 0);
	assert_int_equal(kb_publish(p, "events/nodes", kb_mp_body("{s:i}", "v", 4)), 0);
	usleep(50000);
	assert_int_equal(rb.n, 2);
	kbt_host_stop(h);
}

/* Exact patterns are found by hash, wildcards by a walk: a publication
 * still reaches one endpoint's matching subscriptions in the order they
 * were made, and each of many exact topics (sharing buckets) only its
 * own subscriber, also after others in its bucket are gone. */
struct tagrec {
	pthread_mutex_t mu;
	int n;
	int tags[16];
};

struct tag {
	struct tagrec *r;
	int tag;
};

static void on_tagged(void *arg, const kb_msg *m)
{
	struct tag *t = arg;
	(void)m;
	pthread_mutex_lock(&t->r->mu);
	if (t->r->n < 16)
		t->r->tags[t->r->n] = t->tag;
	t->r->n++;
	pthread_mutex_unlock(&t->r->mu);
}

static int wait_tags(struct tagrec *r, int want)
{
	wait_n(&r->mu, &r->n, want);
	usleep(20000); /* and no more */
	return wait_n(&r->mu, &r->n, 0);
}

#define MANY_TOPICS 3000

static void test_sub_order(void **state)
{
	(void)state;
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *a = kbt_client(h, "a", "plugin:a", plugin_groups, 2);
	kb_ctx *p = kbt_client(h, "p", "plugin:p", plugin_groups, 2);
	struct tagrec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct tag t[5] = { { &r, 1 }, { &r, 2 }, { &r, 3 }, { &r, 4 }, { &r, 5 } };
	assert_int_equal(kb_subscribe(a, "ord/*", on_tagged, &t[0]), 0);
	assert_int_equal(kb_subscribe(a, "ord/x", on_tagged, &t[1]), 0);
	assert_int_equal(kb_subscribe(a, "or*", on_tagged, &t[2]), 0);
	assert_int_equal(kb_subscribe(a, "ord/x", on_tagged, &t[3]), 0);
	assert_int_equal(kb_subscribe(a, "ord/xy", on_tagged, &t[4]), 0);
	assert_int_equal(kb_publish(p, "ord/x", kb_mp_body("{s:i}", "v", 1)), 0);
	assert_int_equal(wait_tags(&r, 4), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r.tags[i], i + 1);
	r.n = 0;
	assert_int_equal(kb_publish(p, "ord/y", kb_mp_body("{s:i}", "v", 2)), 0);
	assert_int_equal(wait_tags(&r, 2), 2);
	assert_int_equal(r.tags[0], 1);
	assert_int_equal(r.tags[1], 3);

	/* many exact topics: each its own */
	static struct subrec recs[MANY_TOPICS];
	char topic[64];
	for (int i = 0; i < MANY_TOPICS; i++) {
		recs[i] = (struct subrec){ .mu = PTHREAD_MUTEX_INITIALIZER };
		snprintf(topic, sizeof(topic), "many/%d", i);
		assert_int_equal(kb_subscribe(a, topic, on_pub, &recs[i]), 0);
	}
	for (int i = 0; i < MANY_TOPICS; i += 2) {
		snprintf(topic, sizeof(topic), "many/%d", i);
		assert_int_equal(kb_unsubscribe(a, topic), 0);
	}
	for (int i = 0; i < MANY_TOPICS; i++) {
		snprintf(topic, sizeof(topic), "many/%d", i);
		assert_int_equal(kb_publish(p, topic, kb_mp_body("{s:i}", "v", i)), 0);
	}
	assert_int_equal(wait_count(&recs[MANY_TOPICS - 1], 1), 1);
	usleep(50000);
	for (int i = 0; i < MANY_TOPICS; i++) {
		assert_int_equal(recs[i].n, i % 2);
		if (i % 2)
			assert_int_equal(recs[i].vals[0], i);
	}
	kbt_host_stop(h);
}

/* kb_serve_inline: a request from a local endpoint runs the handler on
 * the requester's thread (a reply it makes at once completes the request
 * before kb_request returns); kb_serve's runs on the service's own. */
struct where {
	pthread_t tid;
	atomic_int calls;
};

static void where_serve(void *arg, kb_msg *req)
{
	struct where *w = arg;
	w->tid = pthread_self();
	atomic_fetch_add(&w->calls, 1);
	kb_reply(req, kb_mp_body("{s:s}", "op", kb_msg_op(req)));
}

static void replied(void *arg, int rc, const kb_msg *rep)
{
	(void)rep;
	atomic_store((atomic_int *)arg, rc == 0 ? 1 : 2);
}

/* A closed-loop client: each reply's callback sends the next request. */
#define CHAIN 50000

struct chain {
	kb_ctx *c;
	atomic_int left, done;
};

static void chain_next(void *arg, int rc, const kb_msg *rep)
{
	struct chain *ch = arg;
	(void)rep;
	if (rc || atomic_fetch_sub(&ch->left, 1) <= 1) {
		atomic_store(&ch->done, rc ? 2 : 1);
		return;
	}
	if (kb_request(ch->c, "inl", "n", NULL, 5000, chain_next, ch) != 0)
		atomic_store(&ch->done, 2);
}

static void test_serve_inline(void **state)
{
	(void)state;
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *svc = kbt_client(h, "svc", "plugin:svc", plugin_groups, 2);
	kb_ctx *c = kbt_client(h, "c", "plugin:c", plugin_groups, 2);
	struct where in = { 0 }, out = { 0 };
	assert_int_equal(kb_serve_inline(svc, "inl", where_serve, &in), 0);
	assert_int_equal(kb_serve(svc, "norm", where_serve, &out), 0);
	assert_int_equal(kb_serve_inline(svc, "inl", where_serve, &in), KB_EEXIST);
	for (int i = 0; i < 3; i++) {
		kb_msg *rep = NULL;
		assert_int_equal(kb_call(c, "inl", "x", NULL, 2000, &rep), 0);
		assert_true(kb_mp_streq(kb_msg_body(rep), "op", "x"));
		kb_msg_free(rep);
		assert_true(pthread_equal(in.tid, pthread_self()));
		assert_int_equal(kb_call(c, "norm", "y", NULL, 2000, &rep), 0);
		kb_msg_free(rep);
		assert_false(pthread_equal(out.tid, pthread_self()));
	}
	assert_int_equal(atomic_load(&in.calls), 3);
	atomic_int done = 0;
	assert_int_equal(kb_request(c, "inl", "z", NULL, 2000, replied, &done), 0);
	assert_int_equal(atomic_load(&done), 1); /* before kb_request returned */
	/* a callback's next request goes through the service's thread, so a
	 * closed loop does not recurse once per request */
	struct chain ch = { .c = c };
	atomic_init(&ch.left, CHAIN);
	atomic_init(&ch.done, 0);
	int before = atomic_load(&in.calls);
	assert_int_equal(kb_request(c, "inl", "n", NULL, 5000, chain_next, &ch), 0);
	for (int i = 0; i < 3000 && atomic_load(&ch.done) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&ch.done), 1);
	assert_int_equal(atomic_load(&in.calls) - before, CHAIN);
	/* its own requests to itself still go through its thread's queue */
	kb_msg *rep = NULL;
	assert_int_equal(kb_call(svc, "inl", "self", NULL, 2000, &rep), 0);
	kb_msg_free(rep);
	assert_false(pthread_equal(in.tid, pthread_self()));
	kbt_host_stop(h);
}

/* A handler on its endpoint's thread publishes FAN events, then asks a
 * subscriber how many it has seen: the request goes after the events (so
 * the subscriber, woken for it, has taken them all), and the other
 * subscriber gets them all once the handler returns. */
#define FAN 100

struct fan {
	kb_ctx *src;
};

static void fan_serve(void *arg, kb_msg *req)
{
	struct fan *f = arg;
	for (int i = 0; i < FAN; i++)
		if (kb_publish(f->src, "fan/t", kb_mp_body("{s:i}", "v", i)) != 0) {
			kb_reply_err(req, KB_EINTERNAL, "publish %d failed", i);
			return;
		}
	kb_msg *rep = NULL;
	int64_t seen = -1;
	if (kb_call(f->src, "count", "count", NULL, 5000, &rep) == 0)
		kb_mp_int(kb_msg_body(rep), "seen", &seen);
	kb_msg_free(rep);
	kb_reply(req, kb_mp_body("{s:I}", "seen", seen));
}

static void count_serve(void *arg, kb_msg *req)
{
	struct subrec *r = arg;
	pthread_mutex_lock(&r->mu);
	int n = r->n;
	pthread_mutex_unlock(&r->mu);
	kb_reply(req, kb_mp_body("{s:i}", "seen", n));
}

static void test_publish_while_dispatching(void **state)
{
	(void)state;
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", plugin_groups, 2);
	kb_ctx *src = kbt_client(h, "src", "plugin:src", plugin_groups, 2);
	kb_ctx *a = kbt_client(h, "a", "plugin:a", plugin_groups, 2);
	kb_ctx *b = kbt_client(h, "b", "plugin:b", plugin_groups, 2);
	struct subrec ra = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct subrec rb = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct fan f = { src };
	assert_int_equal(kb_subscribe(a, "fan/*", on_pub, &ra), 0);
	assert_int_equal(kb_subscribe(b, "fan/*", on_pub, &rb), 0);
	assert_int_equal(kb_serve(a, "count", count_serve, &ra), 0);
	assert_int_equal(kb_serve(src, "fan", fan_serve, &f), 0);
	for (int round = 1; round <= 3; round++) {
		kb_msg *rep = NULL;
		int rc = kb_call(c, "fan", "go", NULL, 10000, &rep);
		assert_int_equal(rc, 0);
		int64_t seen = -1;
		assert_true(kb_mp_int(kb_msg_body(rep), "seen", &seen));
		kb_msg_free(rep);
		assert_int_equal(seen, round * FAN);
		assert_int_equal(wait_count(&rb, round * FAN), round * FAN);
	}
	/* the first ones in order */
	for (int i = 0; i < 8; i++)
		assert_int_equal(rb.vals[i], i);
	kbt_host_stop(h);
}

static void test_timeout(void **state)
{
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", plugin_groups, 2);
	kb_msg *rep = NULL;
	int64_t t0 = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int rc = kb_call(c, "echo", "hold", NULL, 150, &rep);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t took = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - t0;
	assert_int_equal(rc, KB_ETIMEOUT);
	assert_null(rep);
	assert_true(took >= 140 && took < 2000);
	/* A slow answer within its deadline still arrives. */
	rc = kb_call(c, "echo", "sleep", kb_mp_body("{s:i}", "ms", 50), 2000, &rep);
	assert_int_equal(rc, 0);
	kb_msg_free(rep);
	/* A slow answer past its deadline is a timeout, and the late reply
	 * is dropped without harm. */
	rc = kb_call(c, "echo", "sleep", kb_mp_body("{s:i}", "ms", 200), 50, &rep);
	assert_int_equal(rc, KB_ETIMEOUT);
	usleep(300000);
	kbt_host_stop(h);
}

struct async_rec {
	atomic_int done;
	atomic_int rc;
};

static void on_reply(void *arg, int rc, const kb_msg *rep)
{
	struct async_rec *r = arg;
	atomic_store(&r->rc, rc);
	atomic_store(&r->done, 1);
}

static void hold(void *arg, kb_msg *req)
{
	*(kb_msg **)arg = req;
}

static void test_service_gone(void **state)
{
	/* Requests pending on a plugin that stops get ServiceUnavailable. */
	char err[1024];
	struct kbt_host *h = kbt_host_start(echo_yaml, err, sizeof(err));
	assert_non_null(h);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", plugin_groups, 2);
	kb_ctx *srv = kbt_client(h, "server", "plugin:server", plugin_groups, 2);
	/* a client that serves and never answers */
	static kb_msg *held;
	assert_int_equal(kb_serve(srv, "held", hold, &held), 0);
	struct async_rec r = { 0 };
	assert_int_equal(kb_request(c, "held", "x", NULL, 10000, on_reply, &r), 0);
	usleep(50000);
	assert_int_equal(atomic_load(&r.done), 0);
	/* stopping the host closes "server": the pending request fails */
	struct async_rec r2 = { 0 };
	assert_int_equal(kb_request(c, "echo", "hold", NULL, 10000, on_reply, &r2), 0);
	usleep(50000);
	kbt_host_stop(h);
	assert_int_equal(atomic_load(&r2.done), 1);
	assert_int_equal(atomic_load(&r2.rc), KB_EUNAVAILABLE);
	/* "held" went away when its endpoint closed; the tester's own
	 * endpoint closing first may drop its callback instead, so only check
	 * that whatever happened was one of the two. */
	if (atomic_load(&r.done))
		assert_int_equal(atomic_load(&r.rc), KB_EUNAVAILABLE);
	kb_msg_free(held);
}

static void test_big_message(void **state)
{
	struct kbt_host *h = start(echo_yaml);
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", plugin_groups, 2);
	size_t n = 16u << 20;
	char *blob = malloc(n);
	for (size_t i = 0; i < n; i++)
		blob[i] = (char)(i * 31 + 7);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, blob, n);
	kb_msg *rep;
	int rc = kb_call(c, "echo", "echo", kb_body_from_sbuf(&sb), 10000, &rep);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(rc, 0);
	const msgpack_object *o = kb_msg_body(rep);
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(o->via.bin.size, n);
	assert_memory_equal(o->via.bin.ptr, blob, n);
	kb_msg_free(rep);
	free(blob);
	kbt_host_stop(h);
}

/* Several senders, 100k requests in flight at once, each sender numbered:
 * the echo plugin checks per-sender order, we check none is lost. */
#define SENDERS 4
#define PER_SENDER 25000

struct flood {
	atomic_int ok, bad, done;
};

static void on_flood(void *arg, int rc, const kb_msg *rep)
{
	struct flood *f = arg;
	if (rc == 0)
		atomic_fetch_add(&f->ok, 1);
	else
		atomic_fetch_add(&f->bad, 1);
	atomic_fetch_add(&f->done, 1);
}

struct sender {
	kb_ctx *ctx;
	struct flood *f;
	char name[16];
	int sent_rc;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	for (int i = 0; i < PER_SENDER; i++) {
		kb_body *b = kb_mp_body("{s:s, s:i}", "sender", s->name, "n", i);
		int rc = kb_request(s->ctx, "echo", "order", b, 60000, on_flood, s->f);
		if (rc) {
			s->sent_rc = rc;
			kb_body_unref(b);
			break;
		}
	}
	return NULL;
}

static void test_flood_in_flight(void **state)
{
	struct kbt_host *h = start(echo_yaml);
	struct flood f = { 0 };
	struct sender s[SENDERS];
	pthread_t t[SENDERS];
	for (int i = 0; i < SENDERS; i++) {
		snprintf(s[i].name, sizeof(s[i].name), "s%d", i);
		s[i].ctx = kbt_client(h, s[i].name, "plugin:flood", plugin_groups, 2);
		s[i].f = &f;
		s[i].sent_rc = 0;
	}
	for (int i = 0; i < SENDERS; i++)
		pthread_create(&t[i], NULL, send_all, &s[i]);
	for (int i = 0; i < SENDERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < SENDERS; i++)
		assert_int_equal(s[i].sent_rc, 0);
	for (int i = 0; i < 3000 && atomic_load(&f.done) < SENDERS * PER_SENDER; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&f.done), SENDERS * PER_SENDER);
	assert_int_equal(atomic_load(&f.bad), 0);
	assert_int_equal(atomic_load(&f.ok), SENDERS * PER_SENDER);
	kbt_host_stop(h);
}

static void test_acl(void **state)
{
	struct kbt_host *h = start("plugins:\n"
				   "  - name: store\n"
				   "    use: echo\n"
				   "    config: {service: store}\n");
	/* A plain plugin may not call the store (default policy)... */
	kb_ctx *p = kbt_client(h, "ctrl", "plugin:ctrl", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(p, "store", "echo", NULL, 1000, &rep), KB_EFORBIDDEN);
	/* ...nor publish or subscribe on store topics... */
	assert_int_equal(kb_publish(p, "store/events", NULL), KB_EFORBIDDEN);
	assert_int_equal(kb_subscribe(p, "store/events", on_pub, NULL), KB_EFORBIDDEN);
	/* ...but the frontend may. */
	static const char *const fe[] = { "kubus:plugins", "kubus:kind:frontend" };
	kb_ctx *api = kbt_client(h, "apiserver", "plugin:apiserver", fe, 2);
	assert_int_equal(kb_call(api, "store", "echo", NULL, 1000, &rep), 0);
	kb_msg_free(rep);
	/* A principal with no groups may do nothing at all. */
	kb_ctx *nobody = kbt_client(h, "nobody", "stranger", NULL, 0);
	assert_int_equal(kb_call(nobody, "auth", "authenticate", NULL, 1000, &rep), KB_EFORBIDDEN);
	/* The auth service answers a plugin. */
	int rc = kb_call(p, "auth", "authenticate", kb_mp_body("{s:s}", "token", "nope"), 1000, &rep);
	assert_int_equal(rc, KB_EUNAUTHORIZED);
	kb_msg_free(rep);
	kbt_host_stop(h);
}

/* The API server gets its kubeconfig token from the core: a frontend may
 * have one issued, a plain plugin may not, and the token then works. */
static void test_auth_issue(void **state)
{
	struct kbt_host *h = start(echo_yaml);
	static const char *const fe[] = { "kubus:plugins", "kubus:kind:frontend" };
	kb_ctx *api = kbt_client(h, "apiserver", "plugin:apiserver", fe, 2);
	kb_ctx *p = kbt_client(h, "ctrl", "plugin:ctrl", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(p, "auth", "issue",
	                     kb_mp_body("{s:s, s:[s]}", "user", "admin", "groups", "system:masters"),
	                     2000, &rep), KB_EFORBIDDEN);
	kb_msg_free(rep);
	assert_int_equal(kb_call(api, "auth", "issue",
	                     kb_mp_body("{s:s, s:[s]}", "user", "admin", "groups", "system:masters"),
	                     2000, &rep), 0);
	char *tok = kb_mp_strdup(kb_msg_body(rep), "token");
	kb_msg_free(rep);
	assert_non_null(tok);
	assert_true(strlen(tok) >= 32);
	assert_int_equal(kb_call(api, "auth", "authenticate", kb_mp_body("{s:s}", "token", tok),
	                     2000, &rep), 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "user", "admin"));
	kb_msg_free(rep);
	free(tok);
	kbt_host_stop(h);
}

static void test_extension(void **state)
{
	struct kbt_host *h = start("plugins:\n"
				   "  - name: user\n"
				   "    use: ext_user\n"
				   "    config:\n"
				   "      extension: ext_policy\n"
				   "      args: {weight: 5}\n");
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(c, "ext", "score", kb_mp_body("{s:i}", "x", 3), 1000, &rep), 0);
	int64_t v = 0;
	assert_true(kb_mp_int(kb_msg_body(rep), "score", &v));
	assert_int_equal(v, 30);
	kb_msg_free(rep);
	kbt_host_stop(h);

	/* The wrong kind, and a missing extension, fail the owner's init. */
	char err[1024];
	struct kbt_host *bad = kbt_host_start("plugins:\n"
					      "  - name: user\n"
					      "    use: ext_user\n"
					      "    config: {extension: echo}\n",
	    err, sizeof(err));
	assert_null(bad);
	assert_non_null(strstr(err, "it is a service, not a sched-policy"));
	bad = kbt_host_start("plugins:\n"
			     "  - name: user\n"
			     "    use: ext_user\n"
			     "    config: {extension: nosuch}\n",
	    err, sizeof(err));
	assert_null(bad);
	assert_non_null(strstr(err, "no kubus-nosuch.so"));
	/* An extension's config is checked by its own table. */
	bad = kbt_host_start("plugins:\n"
			     "  - name: user\n"
			     "    use: ext_user\n"
			     "    config: {extension: ext_policy, args: {weight: 500}}\n",
	    err, sizeof(err));
	assert_null(bad);
	assert_non_null(strstr(err, "weight"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_rep),
		cmocka_unit_test(test_pub_sub),
		cmocka_unit_test(test_publish_while_dispatching),
		cmocka_unit_test(test_sub_order),
		cmocka_unit_test(test_serve_inline),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_service_gone),
		cmocka_unit_test(test_big_message),
		cmocka_unit_test(test_flood_in_flight),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_extension),
		cmocka_unit_test(test_auth_issue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
