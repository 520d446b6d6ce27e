/* tests/unit/test_client.c — the SDK's Kubernetes client (kubus/client.h)
 * against a real host: store-lmdb + apiserver, called through the `api`
 * bus service from client contexts, as a plugin would.
 *
 * Lost watches are made for real: a second endpoint of the informer's own
 * principal learns the informer's watch_id from the events it publishes
 * (it subscribes to the same topics) and asks `api` to `unwatch` it, as
 * the watch's owner may. The API server ends the watch with its last
 * publication, an ERROR event. While that happens the informer's thread is
 * held inside a handler, so the changes made meanwhile are either replayed
 * from the watch cache's ring when the informer watches again (few), or,
 * when more than the ring's 16 events (watch_buffer) went by, the watch
 * is refused with 410 Expired and the informer relists: objects created
 * and deleted meanwhile are then never seen, which tells the two apart.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>
#include <kubus/kubus.h>
#include <kubus/sched.h>

#include "harness.h"

static struct kbt_host *host;
static kb_ctx *cli;
static const char *groups[] = { "kubus:plugins" };

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int setup_host(void **state)
{
	(void)state;
	char err[1024];
	host =
	    kbt_host_start("host:\n"
			   "  name: t\n"
			   "  log_level: warn\n"
			   "plugins:\n"
			   "  - name: store\n"
			   "    use: store-lmdb\n"
			   "    config: {sync: false}\n"
			   "  - name: apiserver\n"
			   "    use: apiserver\n"
			   "    config: {listen: \"127.0.0.1:0\", kubeconfig: false,"
			   " watch_buffer: 16}\n",
		err, sizeof(err));
	if (host == NULL) {
		fprintf(stderr, "host did not start: %s\n", err);
		return -1;
	}
	cli = kbt_client(host, "tester", "plugin:tester", groups, 1);
	return cli ? 0 : -1;
}

static int teardown_host(void **state)
{
	(void)state;
	kbt_host_stop(host);
	return 0;
}

/* --- what a failed test leaves behind ----------------------------------------------------
 * A failing assertion leaves the test at once; informers and electors it
 * started would go on calling into freed memory. Everything they use is
 * on the heap and tracked, and each test's teardown frees what is left,
 * newest first (an informer before its event log, an elector before its
 * candidate). */

#define MAXLIVE 32

static struct {
	void *p;
	void (*free_fn)(void *);
	unsigned seq;
} live[MAXLIVE];
static unsigned live_seq;

static void *track(void *p, void (*free_fn)(void *))
{
	assert_non_null(p);
	for (int i = 0; i < MAXLIVE; i++) {
		if (live[i].p == NULL) {
			live[i].p = p;
			live[i].free_fn = free_fn;
			live[i].seq = ++live_seq;
			return p;
		}
	}
	fail_msg("too many live objects");
	return p;
}

/* Free a tracked object now. */
static void release(void *p)
{
	for (int i = 0; i < MAXLIVE; i++) {
		if (live[i].p == p) {
			live[i].p = NULL;
			live[i].free_fn(p);
			return;
		}
	}
	fail_msg("releasing an untracked object");
}

static void gate_open_all(void);

static int cleanup(void **state)
{
	(void)state;
	gate_open_all();
	for (;;) {
		int newest = -1;
		for (int i = 0; i < MAXLIVE; i++)
			if (live[i].p &&
			    (newest < 0 || live[i].seq > live[newest].seq))
				newest = i;
		if (newest < 0)
			return 0;
		void *p = live[newest].p;
		live[newest].p = NULL;
		live[newest].free_fn(p);
	}
}

static void informer_free(void *p)
{
	kb_informer_free(p);
}

static void leader_free(void *p)
{
	kb_leader_free(p);
}

static struct kb_informer *informer_new(kb_ctx *c, const struct kb_gvr *r,
    const struct kb_informer_opts *o, const struct kb_informer_handlers *h,
    void *arg)
{
	return track(kb_informer_new(c, r, o, h, arg), informer_free);
}

/* --- helpers ------------------------------------------------------------------------- */

static kb_body *configmap(const char *ns, const char *name, const char *app,
    const char *val)
{
	return kb_mp_body("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}",
	    "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name", name,
	    "namespace", ns, "labels", "app", app ? app : "none", "data", "k",
	    val ? val : "");
}

static void make_ns(const char *name)
{
	kb_msg *rep = NULL;
	int rc = kb_api_create(cli, &KB_GVR_NAMESPACES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Namespace", "metadata", "name", name),
	    &rep);
	if (rc) {
		const char *m = "";
		kb_msg_err(rep, &m);
		fail_msg("create namespace %s: %s: %s", name, kb_strerror(rc),
		    m);
	}
	kb_msg_free(rep);
}

static int64_t rv_of(const msgpack_object *o)
{
	char *s = kb_mp_strdup(o, "metadata.resourceVersion");
	int64_t v = s ? strtoll(s, NULL, 10) : -1;
	free(s);
	return v;
}

/* Create, failing the test on error; the new resourceVersion. */
static int64_t create_cm(const char *ns, const char *name, const char *app,
    const char *val)
{
	kb_msg *rep = NULL;
	int rc = kb_api_create(cli, &KB_GVR_CONFIGMAPS, ns,
	    configmap(ns, name, app, val), &rep);
	if (rc) {
		const char *m = "";
		kb_msg_err(rep, &m);
		fail_msg("create %s/%s: %s: %s", ns, name, kb_strerror(rc), m);
	}
	int64_t rv = rv_of(kb_msg_body(rep));
	kb_msg_free(rep);
	return rv;
}

/* Change data.k (or the label) with a merge patch: the new RV. */
static int64_t patch_cm(kb_ctx *c, const char *ns, const char *name,
    const char *app, const char *val)
{
	kb_body *p = app ?
	    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "app", app) :
	    kb_mp_body("{s:{s:s}}", "data", "k", val);
	kb_msg *rep = NULL;
	int rc = kb_api_patch(c, &KB_GVR_CONFIGMAPS, ns, name, NULL, "merge", p,
	    &rep);
	if (rc) {
		const char *m = "";
		kb_msg_err(rep, &m);
		fail_msg("patch %s/%s: %s: %s", ns, name, kb_strerror(rc), m);
	}
	int64_t rv = rv_of(kb_msg_body(rep));
	kb_msg_free(rep);
	return rv;
}

static void delete_cm(const char *ns, const char *name)
{
	kb_msg *rep = NULL;
	int rc = kb_api_delete(cli, &KB_GVR_CONFIGMAPS, ns, name, NULL, &rep);
	if (rc)
		fail_msg("delete %s/%s: %s", ns, name, kb_strerror(rc));
	kb_msg_free(rep);
}

static void expect_status(int rc, int want, kb_msg *rep, const char *reason,
    const char *needle)
{
	assert_int_equal(rc, want);
	assert_non_null(rep);
	const char *msg = "";
	assert_int_equal(kb_msg_err(rep, &msg), want);
	if (strstr(msg, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
	const msgpack_object *st = kb_msg_body(rep);
	assert_true(kb_mp_streq(st, "kind", "Status"));
	assert_true(kb_mp_streq(st, "reason", reason));
	kb_msg_free(rep);
}

/* --- calls ------------------------------------------------------------------------------ */

static void test_calls(void **state)
{
	(void)state;
	make_ns("calls");
	kb_msg *rep = NULL;
	int64_t rv1 = create_cm("calls", "cm1", "x", "1");
	assert_true(rv1 > 0);

	int rc = kb_api_create(cli, &KB_GVR_CONFIGMAPS, "calls",
	    configmap("calls", "cm1", "x", "1"), &rep);
	expect_status(rc, KB_EEXIST, rep, "AlreadyExists",
	    "\"cm1\" already exists");

	assert_int_equal(kb_api_get(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1",
			     &rep),
	    0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "data.k", "1"));
	assert_true(
	    kb_mp_streq(kb_msg_body(rep), "metadata.namespace", "calls"));
	/* the object as it stands, for the update below */
	kb_body *cur = kb_msg_body_ref(rep);
	kb_msg_free(rep);

	rc = kb_api_get(cli, &KB_GVR_CONFIGMAPS, "calls", "nope", &rep);
	expect_status(rc, KB_ENOTFOUND, rep, "NotFound", "\"nope\" not found");
	/* out may be NULL */
	assert_int_equal(kb_api_get(cli, &KB_GVR_CONFIGMAPS, "calls", "nope",
			     NULL),
	    KB_ENOTFOUND);

	/* list with selectors */
	create_cm("calls", "cm2", "y", "2");
	assert_int_equal(kb_api_list(cli, &KB_GVR_CONFIGMAPS, "calls", NULL,
			     NULL, &rep),
	    0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "kind", "ConfigMapList"));
	assert_int_equal(kb_mp_get(kb_msg_body(rep), "items")->via.array.size,
	    2);
	kb_msg_free(rep);
	assert_int_equal(kb_api_list(cli, &KB_GVR_CONFIGMAPS, "calls", "app=y",
			     NULL, &rep),
	    0);
	assert_int_equal(kb_mp_get(kb_msg_body(rep), "items")->via.array.size,
	    1);
	assert_true(
	    kb_mp_streq(kb_msg_body(rep), "items[0].metadata.name", "cm2"));
	kb_msg_free(rep);
	assert_int_equal(kb_api_list(cli, &KB_GVR_CONFIGMAPS, "calls", NULL,
			     "metadata.name=cm1", &rep),
	    0);
	assert_int_equal(kb_mp_get(kb_msg_body(rep), "items")->via.array.size,
	    1);
	assert_true(
	    kb_mp_streq(kb_msg_body(rep), "items[0].metadata.name", "cm1"));
	kb_msg_free(rep);

	/* update with the current resourceVersion, then with the stale one */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	const msgpack_object *o = kb_body_obj(cur);
	kb_mp_pack(&pk, "{s:s, s:s, s:o, s:{s:s}}", "apiVersion", "v1", "kind",
	    "ConfigMap", "metadata", kb_mp_key(o, "metadata"), "data", "k",
	    "updated");
	kb_body *upd = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	kb_body_unref(cur);
	rc = kb_api_update(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1", NULL,
	    kb_body_ref(upd), &rep);
	assert_int_equal(rc, 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "data.k", "updated"));
	assert_true(rv_of(kb_msg_body(rep)) > rv1);
	kb_msg_free(rep);
	rc = kb_api_update(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1", NULL, upd,
	    &rep);
	expect_status(rc, KB_ECONFLICT, rep, "Conflict",
	    "the object has been modified");

	/* merge patch adds a key */
	rc = kb_api_patch(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1", NULL,
	    "merge", kb_mp_body("{s:{s:s}}", "data", "extra", "e"), &rep);
	assert_int_equal(rc, 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "data.k", "updated"));
	assert_true(kb_mp_streq(kb_msg_body(rep), "data.extra", "e"));
	kb_msg_free(rep);
	/* json patch */
	rc = kb_api_patch(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1", NULL, "json",
	    kb_mp_body("[{s:s, s:s, s:s}]", "op", "replace", "path", "/data/k",
		"value", "j"),
	    &rep);
	assert_int_equal(rc, 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "data.k", "j"));
	kb_msg_free(rep);

	/* strategic merge: containers merge by name, where a merge patch
	 * would replace the list */
	rc = kb_api_create(cli, &KB_GVR_DEPLOYMENTS, "calls",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}},"
		       " s:{s:[{s:s, s:s}, {s:s, s:s}]}}}}",
		"apiVersion", "apps/v1", "kind", "Deployment", "metadata",
		"name", "web", "spec", "replicas", 1, "selector", "matchLabels",
		"app", "web", "template", "metadata", "labels", "app", "web",
		"spec", "containers", "name", "a", "image", "busybox:1", "name",
		"b", "image", "busybox:1"),
	    &rep);
	if (rc) {
		const char *m = "";
		kb_msg_err(rep, &m);
		fail_msg("create deployment: %s: %s", kb_strerror(rc), m);
	}
	kb_msg_free(rep);
	rc = kb_api_patch(cli, &KB_GVR_DEPLOYMENTS, "calls", "web", NULL,
	    "strategic",
	    kb_mp_body("{s:{s:{s:{s:[{s:s, s:s}]}}}}", "spec", "template",
		"spec", "containers", "name", "b", "image", "busybox:2"),
	    &rep);
	assert_int_equal(rc, 0);
	const msgpack_object *cs =
	    kb_mp_get(kb_msg_body(rep), "spec.template.spec.containers");
	assert_non_null(cs);
	assert_int_equal(cs->via.array.size, 2);
	assert_true(kb_mp_streq(kb_msg_body(rep),
	    "spec.template.spec.containers[0].image", "busybox:1"));
	assert_true(kb_mp_streq(kb_msg_body(rep),
	    "spec.template.spec.containers[1].image", "busybox:2"));
	kb_msg_free(rep);
	/* a subresource through update's `sub` */
	rc = kb_api_update(cli, &KB_GVR_DEPLOYMENTS, "calls", "web", "scale",
	    kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:i}}", "apiVersion",
		"autoscaling/v1", "kind", "Scale", "metadata", "name", "web",
		"namespace", "calls", "spec", "replicas", 3),
	    &rep);
	if (rc) {
		const char *m = "";
		kb_msg_err(rep, &m);
		fail_msg("update scale: %s: %s", kb_strerror(rc), m);
	}
	kb_msg_free(rep);
	rc = kb_api_get(cli, &KB_GVR_DEPLOYMENTS, "calls", "web", &rep);
	assert_int_equal(rc, 0);
	int64_t replicas = 0;
	assert_true(kb_mp_int(kb_msg_body(rep), "spec.replicas", &replicas));
	assert_int_equal(replicas, 3);
	kb_msg_free(rep);

	/* delete, then NotFound */
	rc = kb_api_delete(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1", NULL, &rep);
	assert_int_equal(rc, 0);
	kb_msg_free(rep);
	rc = kb_api_get(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1", &rep);
	expect_status(rc, KB_ENOTFOUND, rep, "NotFound", "not found");
	rc = kb_api_delete(cli, &KB_GVR_CONFIGMAPS, "calls", "cm1",
	    kb_mp_body("{s:s}", "propagationPolicy", "Background"), &rep);
	expect_status(rc, KB_ENOTFOUND, rep, "NotFound", "\"cm1\" not found");

	/* cluster-scoped: no namespace */
	rc = kb_api_create(cli, &KB_GVR_NODES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Node", "metadata", "name", "n1"),
	    &rep);
	assert_int_equal(rc, 0);
	kb_msg_free(rep);
	assert_int_equal(kb_api_get(cli, &KB_GVR_NODES, NULL, "n1", &rep), 0);
	char key[64];
	assert_string_equal(kb_object_key(kb_msg_body(rep), key, sizeof(key)),
	    "n1");
	kb_msg_free(rep);

	/* a body that is not msgpack is refused here, and still taken */
	rc = kb_api_create(cli, &KB_GVR_CONFIGMAPS, "calls",
	    kb_body_new("\xc1", 1), &rep);
	assert_int_equal(rc, KB_EINVAL);
	assert_null(rep);
	/* an unknown resource is the server's NotFound */
	static const struct kb_gvr bogus = { "", "v1", "bogons" };
	rc = kb_api_list(cli, &bogus, NULL, NULL, NULL, &rep);
	expect_status(rc, KB_ENOTFOUND, rep, "NotFound", "bogons");
}

/* kb_time_parse against timegm for the same instants, and what it refuses */
static void test_time_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t ms; /* -1: refused */
	} cases[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-11-29T13:45:07Z", 1795959907000 },
		{ "2026-11-29T13:45:07.5Z", 1795959907500 },
		{ "2026-11-29T13:45:07.123456Z", 1795959907123 },
		{ "2026-11-29T15:45:07+02:00", 1795959907000 },
		{ "2026-11-29T08:15:07.250-05:30", 1795959907250 },
		{ "2024-02-29T23:59:60Z", 1709251200000 }, /* a leap second */
		{ "2000-03-01t00:00:00z", 951868800000 },
		{ "2026-11-29T13:45:07", -1 }, /* no zone */
		{ "2026-11-29 13:45:07Z", -1 },
		{ "2026-11-29T13:45:07.Z", -1 },
		{ "2026-11-29T13:45:07Zjunk", -1 },
		{ "2026-13-29T13:45:07Z", -1 },
		{ "2026-11-29T24:00:00Z", -1 },
		{ "2026-11-29T13:45:07+2:00", -1 },
		{ "2026-11-29T13:45:07+02:60", -1 },
		{ "-026-11-29T13:45:07Z", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -7;
		bool ok = kb_time_parse(cases[i].s, strlen(cases[i].s), &ms);
		if (ok != (cases[i].ms >= 0) || (ok && ms != cases[i].ms))
			fail_msg("%s: got %s %lld, want %lld", cases[i].s,
			    ok ? "ok" : "refused", (long long)ms,
			    (long long)cases[i].ms);
	}
	/* the length is the string's: no NUL needed, none read past it */
	const char *s = "2026-11-29T13:45:07Z trailing";
	int64_t ms = 0;
	assert_true(kb_time_parse(s, 20, &ms));
	assert_int_equal(ms, 1795959907000);
	assert_false(kb_time_parse(s, 19, &ms));
	assert_false(kb_time_parse(NULL, 20, &ms));
	/* every day of four years against timegm */
	for (time_t t = 1700000000; t < 1700000000 + 4 * 366 * 86400;
	     t += 86400 + 3671) {
		struct tm tm;
		char buf[32];
		gmtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		assert_true(kb_time_parse(buf, strlen(buf), &ms));
		assert_int_equal(ms, (int64_t)t * 1000);
	}
}

static void test_object_key(void **state)
{
	(void)state;
	kb_body *b = configmap("ns1", "name1", NULL, NULL);
	char key[64], small[5];
	assert_string_equal(kb_object_key(kb_body_obj(b), key, sizeof(key)),
	    "ns1/name1");
	assert_null(kb_object_key(kb_body_obj(b), small, sizeof(small)));
	kb_body_unref(b);
	b = kb_mp_body("{s:{}}", "metadata");
	assert_null(kb_object_key(kb_body_obj(b), key, sizeof(key)));
	kb_body_unref(b);
	/* cluster-scoped, or an empty namespace: the name alone; the buffer
	 * holds the key and its NUL or nothing */
	char fit[6];
	b = kb_mp_body("{s:{s:s}}", "metadata", "name", "node1");
	assert_string_equal(kb_object_key(kb_body_obj(b), fit, sizeof(fit)), "node1");
	assert_null(kb_object_key(kb_body_obj(b), fit, 5));
	kb_body_unref(b);
	b = kb_mp_body("{s:{s:s, s:s}}", "metadata", "namespace", "", "name", "n");
	assert_string_equal(kb_object_key(kb_body_obj(b), key, sizeof(key)), "n");
	kb_body_unref(b);
	b = kb_mp_body("{s:{s:s, s:s}}", "metadata", "namespace", "a", "name", "bc");
	assert_string_equal(kb_object_key(kb_body_obj(b), fit, 5), "a/bc");
	assert_null(kb_object_key(kb_body_obj(b), fit, 4));
	kb_body_unref(b);
}

/* --- informers: what the handlers saw -------------------------------------------------- */

struct ev {
	char type; /* a, u, d */
	char key[96];
	int64_t rv, old_rv;
	char app[16];
};

struct evlog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ev *v;
	size_t n, cap;
	/* the gate: a handler for key `gate` waits while `closed` */
	char gate[96];
	bool closed, held;
	struct kb_informer *inf; /* to read the cache from a handler */
	atomic_int cache_misses;
	/* scheduler views made in a handler that did not share the
	 * informer's object (they should: kb_sched_pod_new) */
	atomic_int views_copied;
};

static struct evlog *logs[MAXLIVE];

static void log_free(void *p)
{
	struct evlog *l = p;
	for (int i = 0; i < MAXLIVE; i++)
		if (logs[i] == l)
			logs[i] = NULL;
	free(l->v);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

static struct evlog *log_new(void)
{
	struct evlog *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	for (int i = 0; i < MAXLIVE; i++) {
		if (logs[i] == NULL) {
			logs[i] = l;
			break;
		}
	}
	return track(l, log_free);
}

static void log_push(struct evlog *l, char type, const msgpack_object *old,
    const msgpack_object *obj)
{
	struct ev e = { .type = type,
		.rv = rv_of(obj),
		.old_rv = old ? rv_of(old) : 0 };
	kb_object_key(obj, e.key, sizeof(e.key));
	const char *app;
	size_t n;
	if (kb_mp_str(obj, "metadata.labels.app", &app, &n) &&
	    n < sizeof(e.app))
		memcpy(e.app, app, n);
	/* A scheduler's view made in a handler holds the informer's object
	 * (counted) instead of a copy: the same pointer, the same name, and
	 * valid after the handler returns; outside a handler a copy. */
	const msgpack_object *seen[2] = { obj, old };
	for (int i = 0; i < 2 && seen[i]; i++) {
		struct kb_sched_pod *v = kb_sched_pod_new(seen[i]);
		assert_non_null(v);
		if (v->obj != seen[i])
			atomic_fetch_add(&l->views_copied, 1);
		assert_true(kb_mp_streq(seen[i], "metadata.name", v->name));
		kb_sched_pod_unref(v);
	}
	/* Handlers may read the cache: the informer has applied the event. */
	if (l->inf && type != 'd') {
		char *ns = kb_mp_strdup(obj, "metadata.namespace");
		char *name = kb_mp_strdup(obj, "metadata.name");
		kb_body *b = kb_informer_get(l->inf, ns, name);
		if (b == NULL || rv_of(kb_body_obj(b)) < e.rv)
			atomic_fetch_add(&l->cache_misses, 1);
		/* a sub-object of it, or its root outside a handler's own
		 * arguments (here the same), never shares by mistake */
		if (b) {
			const msgpack_object *md =
			    kb_mp_key(kb_body_obj(b), "metadata");
			struct kb_sched_pod *v = kb_sched_pod_new(md);
			assert_non_null(v);
			assert_true(v->obj != md);
			kb_sched_pod_unref(v);
		}
		kb_body_unref(b);
		free(ns);
		free(name);
	}
	pthread_mutex_lock(&l->mu);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = e;
	pthread_cond_broadcast(&l->cv);
	if (l->gate[0] && strcmp(l->gate, e.key) == 0) {
		l->held = true;
		pthread_cond_broadcast(&l->cv);
		while (l->closed)
			pthread_cond_wait(&l->cv, &l->mu);
		l->held = false;
	}
	pthread_mutex_unlock(&l->mu);
}

static void on_add(void *arg, const msgpack_object *obj)
{
	log_push(arg, 'a', NULL, obj);
}

static void on_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	log_push(arg, 'u', old, obj);
}

static void on_del(void *arg, const msgpack_object *obj)
{
	log_push(arg, 'd', NULL, obj);
}

static const struct kb_informer_handlers log_handlers = { on_add, on_update,
	on_del };

/* The index of the first event of `type` for key at or after `from`, or -1. */
static ssize_t log_find(struct evlog *l, size_t from, char type,
    const char *key)
{
	pthread_mutex_lock(&l->mu);
	ssize_t at = -1;
	for (size_t i = from; i < l->n && at < 0; i++)
		if (l->v[i].type == type && strcmp(l->v[i].key, key) == 0)
			at = (ssize_t)i;
	pthread_mutex_unlock(&l->mu);
	return at;
}

/* Wait up to ms for such an event. */
static ssize_t log_wait(struct evlog *l, size_t from, char type,
    const char *key, int ms)
{
	int64_t until = now_ms() + ms;
	ssize_t at;
	while ((at = log_find(l, from, type, key)) < 0 && now_ms() < until)
		sleep_ms(5);
	if (at < 0)
		fail_msg("no '%c' event for %s within %d ms", type, key, ms);
	return at;
}

/* Event i, copied: the informer's thread may grow the log meanwhile. */
static struct ev log_at(struct evlog *l, ssize_t i)
{
	pthread_mutex_lock(&l->mu);
	assert_true(i >= 0 && (size_t)i < l->n);
	struct ev e = l->v[i];
	pthread_mutex_unlock(&l->mu);
	return e;
}

/* A copy of the whole log (malloc'd), to check without holding its lock. */
static struct ev *log_copy(struct evlog *l, size_t *n)
{
	pthread_mutex_lock(&l->mu);
	*n = l->n;
	struct ev *v = malloc((l->n ? l->n : 1) * sizeof(*v));
	if (v)
		memcpy(v, l->v, l->n * sizeof(*v));
	pthread_mutex_unlock(&l->mu);
	assert_non_null(v);
	return track(v, free);
}

static size_t log_len(struct evlog *l)
{
	pthread_mutex_lock(&l->mu);
	size_t n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

static void gate_close(struct evlog *l, const char *key)
{
	pthread_mutex_lock(&l->mu);
	snprintf(l->gate, sizeof(l->gate), "%s", key);
	l->closed = true;
	pthread_mutex_unlock(&l->mu);
}

static void gate_wait_held(struct evlog *l)
{
	int64_t until = now_ms() + 5000;
	pthread_mutex_lock(&l->mu);
	while (!l->held && now_ms() < until) {
		pthread_mutex_unlock(&l->mu);
		sleep_ms(5);
		pthread_mutex_lock(&l->mu);
	}
	bool held = l->held;
	pthread_mutex_unlock(&l->mu);
	assert_true(held);
}

static void gate_open(struct evlog *l)
{
	pthread_mutex_lock(&l->mu);
	l->closed = false;
	l->gate[0] = '\0';
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static void gate_open_all(void)
{
	for (int i = 0; i < MAXLIVE; i++)
		if (logs[i])
			gate_open(logs[i]);
}

/* The cache agrees with a fresh list: same keys, same resourceVersions. */
static void expect_cache_matches(struct kb_informer *inf, const char *ns,
    const char *ls)
{
	kb_msg *rep = NULL;
	assert_int_equal(kb_api_list(cli, &KB_GVR_CONFIGMAPS, ns, ls, NULL,
			     &rep),
	    0);
	const msgpack_object *items = kb_mp_get(kb_msg_body(rep), "items");
	assert_int_equal(kb_informer_len(inf), items->via.array.size);
	for (uint32_t i = 0; i < items->via.array.size; i++) {
		const msgpack_object *o = &items->via.array.ptr[i];
		char *name = kb_mp_strdup(o, "metadata.name");
		kb_body *b = kb_informer_get(inf, ns, name);
		if (b == NULL)
			fail_msg("%s/%s is not in the cache", ns, name);
		assert_int_equal(rv_of(kb_body_obj(b)), rv_of(o));
		kb_body_unref(b);
		free(name);
	}
	kb_msg_free(rep);
}

static void wait_cache_matches(struct kb_informer *inf, const char *ns,
    const char *ls, int64_t want_len)
{
	int64_t until = now_ms() + 5000;
	while ((int64_t)kb_informer_len(inf) != want_len && now_ms() < until)
		sleep_ms(5);
	sleep_ms(50);
	expect_cache_matches(inf, ns, ls);
}

static void count_one(void *arg, const msgpack_object *obj)
{
	(void)obj;
	(*(int *)arg)++;
}

/* --- informers --------------------------------------------------------------------------- */

enum {
	WRITERS = 4,
	EACH = 15
};

/* A writer of the concurrency check: EACH merge patches of its object. */
struct writer {
	kb_ctx *c;
	char name[16];
	pthread_t t;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	for (int i = 1; i <= EACH; i++) {
		char v[8];
		snprintf(v, sizeof(v), "%d", i);
		patch_cm(w->c, "inf", w->name, NULL, v);
	}
	return NULL;
}

static void test_informer_sync_and_events(void **state)
{
	(void)state;
	make_ns("inf");
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "pre%d", i);
		create_cm("inf", name, "a", "0");
	}
	/* elsewhere: not ours */
	create_cm("default", "other", "a", "0");

	kb_ctx *c =
	    kbt_client(host, "ctrl-sync", "plugin:ctrl-sync", groups, 1);
	struct evlog *l = log_new();
	struct kb_informer_opts o = { .ns = "inf" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	assert_non_null(inf);
	l->inf = inf;
	assert_false(kb_informer_synced(inf));
	assert_false(kb_informer_wait_synced(inf, 10)); /* not started */
	assert_int_equal(kb_informer_start(inf), 0);
	assert_int_equal(kb_informer_start(inf), KB_ESTATE);
	assert_true(kb_informer_wait_synced(inf, 5000));
	assert_true(kb_informer_synced(inf));
	/* synced means the first list was delivered */
	assert_int_equal(log_len(l), 3);
	assert_int_equal(kb_informer_len(inf), 3);
	for (int i = 0; i < 3; i++) {
		char key[16];
		snprintf(key, sizeof(key), "inf/pre%d", i);
		assert_true(log_find(l, 0, 'a', key) >= 0);
	}
	int n = 0;
	kb_informer_each(inf, count_one, &n);
	assert_int_equal(n, 3);

	/* add, update (old is the previous version), delete, in order */
	kb_body *b = kb_informer_get(inf, "inf", "pre1");
	assert_non_null(b);
	int64_t rv0 = rv_of(kb_body_obj(b));
	kb_body_unref(b);
	size_t mark = log_len(l);
	int64_t rv_new = create_cm("inf", "new", "a", "0");
	int64_t rv_upd = patch_cm(cli, "inf", "pre1", NULL, "1");
	delete_cm("inf", "pre2");
	ssize_t ia = log_wait(l, mark, 'a', "inf/new", 5000);
	ssize_t iu = log_wait(l, mark, 'u', "inf/pre1", 5000);
	ssize_t id = log_wait(l, mark, 'd', "inf/pre2", 5000);
	assert_true(ia < iu && iu < id);
	assert_int_equal(log_at(l, ia).rv, rv_new);
	assert_int_equal(log_at(l, iu).rv, rv_upd);
	assert_int_equal(log_at(l, iu).old_rv, rv0);
	assert_true(log_at(l, id).rv > rv_upd);
	assert_null(kb_informer_get(inf, "inf", "pre2"));
	b = kb_informer_get(inf, "inf", "pre1");
	assert_true(kb_mp_streq(kb_body_obj(b), "data.k", "1"));
	kb_body_unref(b);
	assert_null(kb_informer_get(inf, "default", "other"));
	assert_int_equal(log_find(l, 0, 'a', "default/other"), -1);

	/* concurrent writers: every key's updates arrive in order, each one's
	 * old is the one before, and all events in revision order */
	struct writer w[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		snprintf(w[i].name, sizeof(w[i].name), "w%d", i);
		create_cm("inf", w[i].name, "a", "0");
	}
	for (int i = 0; i < WRITERS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "inf/%s", w[i].name);
		log_wait(l, 0, 'a', key, 5000);
	}
	mark = log_len(l);
	for (int i = 0; i < WRITERS; i++) {
		char ep[32];
		snprintf(ep, sizeof(ep), "writer%d", i);
		w[i].c = kbt_client(host, ep, "plugin:writer", groups, 1);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_create(&w[i].t, NULL, writer_run, &w[i]);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(w[i].t, NULL);
	for (int i = 0; i < WRITERS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "inf/%s", w[i].name);
		/* the handler runs after the cache is updated: wait for it */
		ssize_t at = (ssize_t)mark - 1;
		for (int n = 0; n < EACH; n++)
			at = log_wait(l, (size_t)at + 1, 'u', key, 10000);
	}
	size_t nv;
	struct ev *v = log_copy(l, &nv);
	int64_t last_rv = 0;
	for (int i = 0; i < WRITERS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "inf/%s", w[i].name);
		int64_t prev = -1;
		int seen = 0;
		for (size_t j = mark; j < nv; j++) {
			if (strcmp(v[j].key, key) != 0)
				continue;
			assert_int_equal(v[j].type, 'u');
			if (prev >= 0)
				assert_int_equal(v[j].old_rv, prev);
			assert_true(v[j].rv > v[j].old_rv);
			prev = v[j].rv;
			seen++;
		}
		assert_int_equal(seen, EACH);
	}
	for (size_t j = mark; j < nv; j++) {
		assert_true(v[j].rv > last_rv);
		last_rv = v[j].rv;
	}
	release(v);
	assert_int_equal(atomic_load(&l->cache_misses), 0);
	assert_int_equal(atomic_load(&l->views_copied), 0);
	expect_cache_matches(inf, "inf", NULL);

	release(inf);
}

static void test_informer_selectors(void **state)
{
	(void)state;
	make_ns("sel");
	create_cm("sel", "a1", "a", "0");
	create_cm("sel", "b1", "b", "0");
	kb_ctx *c = kbt_client(host, "ctrl-sel", "plugin:ctrl-sel", groups, 1);
	struct evlog *l = log_new(), *lf = log_new();
	struct kb_informer_opts o = { .ns = "sel", .label_selector = "app=a" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	struct kb_informer_opts of = { .field_selector = "metadata.name=b1" };
	struct kb_informer *inff =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &of, &log_handlers, lf);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_int_equal(kb_informer_start(inff), 0);
	assert_true(kb_informer_wait_synced(inf, 5000));
	assert_true(kb_informer_wait_synced(inff, 5000));
	assert_int_equal(kb_informer_len(inf), 1);
	kb_body *b = kb_informer_get(inf, "sel", "a1");
	assert_non_null(b);
	kb_body_unref(b);
	assert_null(kb_informer_get(inf, "sel", "b1"));
	assert_int_equal(kb_informer_len(inff), 1);
	assert_int_equal(log_find(lf, 0, 'a', "sel/b1"), 0);

	/* a new non-matching object is never seen; leaving the selection is
	 * a delete, entering it an add */
	size_t mark = log_len(l);
	create_cm("sel", "b2", "b", "0");
	patch_cm(cli, "sel", "a1", "b", NULL);
	patch_cm(cli, "sel", "b1", "a", NULL);
	create_cm("sel", "a2", "a", "0");
	log_wait(l, mark, 'd', "sel/a1", 5000);
	log_wait(l, mark, 'a', "sel/b1", 5000);
	log_wait(l, mark, 'a', "sel/a2", 5000);
	assert_int_equal(log_find(l, 0, 'a', "sel/b2"), -1);
	assert_int_equal(kb_informer_len(inf), 2);
	expect_cache_matches(inf, "sel", "app=a");
	/* the field-selected one followed b1 only */
	log_wait(lf, 1, 'u', "sel/b1", 5000);
	assert_int_equal(kb_informer_len(inff), 1);
	assert_int_equal(log_find(lf, 0, 'a', "sel/b2"), -1);

	release(inf);
	release(inff);
}

/* --- views ---------------------------------------------------------------------------- */

/* A ConfigMap's view: its version and data.k read once, a pointer into
 * the object it was made of (its name's bytes: a view made of another
 * body, or left over from an older one, points elsewhere), and the serial
 * of its making. */
struct cm_view {
	int64_t rv;
	char k[16];
	const char *name;
	size_t namelen;
	unsigned serial;
};

static atomic_uint views_made;
/* views make found not zeroed */
static atomic_uint views_dirty;

static void cm_view_make(const msgpack_object *obj, void *view)
{
	struct cm_view *v = view;
	static const struct cm_view zero;
	if (memcmp(v, &zero, sizeof(zero)))
		atomic_fetch_add(&views_dirty, 1);
	v->rv = rv_of(obj);
	const char *k;
	size_t n;
	if (kb_mp_str(obj, "data.k", &k, &n) && n < sizeof(v->k))
		memcpy(v->k, k, n);
	kb_mp_str(obj, "metadata.name", &v->name, &v->namelen);
	v->serial = atomic_fetch_add(&views_made, 1) + 1;
}

/* Another informer's view of the same objects: its own, though the
 * bodies are shared. */
static atomic_uint neg_made;

static void neg_view_make(const msgpack_object *obj, void *view)
{
	*(int64_t *)view = -rv_of(obj);
	atomic_fetch_add(&neg_made, 1);
}

/* What kb_informer_each*_view showed: each object and its view. */
struct seen {
	int n;
	struct {
		char name[32];
		const char *name_ptr; /* in the object passed */
		int64_t rv;
		char k[16];
		struct cm_view v;
	} o[16];
	int no_view;
};

static void see(void *arg, const msgpack_object *obj, const void *view)
{
	struct seen *x = arg;
	if (view == NULL) {
		x->no_view++;
		return;
	}
	if (x->n >= 16)
		return;
	const char *s;
	size_t n;
	memset(&x->o[x->n], 0, sizeof(x->o[x->n]));
	if (kb_mp_str(obj, "metadata.name", &s, &n) && n < 32) {
		memcpy(x->o[x->n].name, s, n);
		x->o[x->n].name_ptr = s;
	}
	if (kb_mp_str(obj, "data.k", &s, &n) && n < 16)
		memcpy(x->o[x->n].k, s, n);
	x->o[x->n].rv = rv_of(obj);
	x->o[x->n].v = *(const struct cm_view *)view;
	x->n++;
}

/* Each view was made of the very object shown with it; the view of
 * `name` (NULL when not shown). */
static const struct cm_view *views_check(struct seen *x, const char *name)
{
	const struct cm_view *found = NULL;
	for (int i = 0; i < x->n; i++) {
		const struct cm_view *v = &x->o[i].v;
		assert_ptr_equal(v->name, x->o[i].name_ptr);
		assert_int_equal(v->namelen, strlen(x->o[i].name));
		assert_memory_equal(v->name, x->o[i].name, v->namelen);
		assert_int_equal(v->rv, x->o[i].rv);
		assert_string_equal(v->k, x->o[i].k);
		assert_true(v->serial > 0);
		if (name && !strcmp(x->o[i].name, name))
			found = v;
	}
	return found;
}

static void each_view(struct kb_informer *inf, struct seen *x)
{
	memset(x, 0, sizeof(*x));
	kb_informer_each_view(inf, see, x);
	views_check(x, NULL);
}

/* kb_informer_get_view: the body and a copy of its view. */
static struct cm_view get_view(struct kb_informer *inf, const char *name)
{
	struct cm_view v;
	memset(&v, 0, sizeof(v));
	kb_body *b = kb_informer_get_view(inf, "view", name, &v);
	assert_non_null(b);
	const char *s;
	size_t n;
	assert_true(kb_mp_str(kb_body_obj(b), "metadata.name", &s, &n));
	assert_ptr_equal(v.name, s);
	assert_int_equal(v.rv, rv_of(kb_body_obj(b)));
	kb_body_unref(b);
	return v;
}

static void wait_made(atomic_uint *made, unsigned want)
{
	int64_t until = now_ms() + 5000;
	while (atomic_load(made) < want && now_ms() < until)
		sleep_ms(5);
	sleep_ms(50); /* and no more than that */
	assert_int_equal(atomic_load(made), want);
}

/* --- a lost watch ------------------------------------------------------------------------ */

/* The spy: another endpoint of the informer's principal, on its topics.
 * Static: its topic handler may run after the test is over. */
struct spy {
	pthread_mutex_t mu;
	int64_t watch_id; /* of the latest event that was not an ERROR */
	int errors;
};

static struct spy spy = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void spy_on(void *arg, const kb_msg *m)
{
	struct spy *s = arg;
	const msgpack_object *b = kb_msg_body(m);
	int64_t id = 0;
	kb_mp_int(b, "watch_id", &id);
	pthread_mutex_lock(&s->mu);
	if (kb_mp_streq(b, "type", "ERROR"))
		s->errors++;
	else
		s->watch_id = id;
	pthread_mutex_unlock(&s->mu);
}

static int64_t spy_watch_id(struct spy *s)
{
	pthread_mutex_lock(&s->mu);
	int64_t id = s->watch_id;
	pthread_mutex_unlock(&s->mu);
	return id;
}

static void unwatch(kb_ctx *as, int64_t id)
{
	kb_msg *rep = NULL;
	int rc = kb_call(as, "api", "unwatch",
	    kb_mp_body("{s:I}", "watch_id", id), 5000, &rep);
	if (rc) {
		const char *m = "";
		kb_msg_err(rep, &m);
		fail_msg("unwatch %" PRId64 ": %s: %s", id, kb_strerror(rc), m);
	}
	kb_msg_free(rep);
}

static void test_informer_lost_watch(void **state)
{
	(void)state;
	make_ns("lost");
	create_cm("lost", "old1", "a", "0");
	create_cm("lost", "keep", "a", "0");
	kb_ctx *c = kbt_client(host, "ctrl", "plugin:ctrl", groups, 1);
	kb_ctx *spy_ctx =
	    kbt_client(host, "ctrl-spy", "plugin:ctrl", groups, 1);
	assert_int_equal(kb_subscribe(spy_ctx, "api/watch/ctrl/*", spy_on,
			     &spy),
	    0);

	struct evlog *l = log_new();
	struct kb_informer_opts o = { .ns = "lost" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	l->inf = inf;
	/* views, remade by the relist for what changed meanwhile */
	assert_int_equal(kb_informer_set_view(inf, sizeof(struct cm_view),
			     cm_view_make),
	    0);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_true(kb_informer_wait_synced(inf, 5000));

	/* 1. Lost, few changes meanwhile: watched again from the last
	 * resourceVersion, the ring replays them, every one is delivered. */
	gate_close(l, "lost/gate1");
	create_cm("lost", "gate1", "a", "0");
	gate_wait_held(l);
	/* the spy's copy of that event comes on its own dispatch thread */
	int64_t id1, until = now_ms() + 5000;
	while ((id1 = spy_watch_id(&spy)) == 0 && now_ms() < until)
		sleep_ms(5);
	assert_true(id1 > 0);
	unwatch(spy_ctx, id1);
	size_t mark = log_len(l);
	create_cm("lost", "tmp", "a", "0");
	patch_cm(cli, "lost", "tmp", NULL, "1");
	delete_cm("lost", "tmp");
	sleep_ms(100);
	assert_int_equal(log_len(l), mark); /* held: nothing delivered yet */
	gate_open(l);
	ssize_t a = log_wait(l, mark, 'a', "lost/tmp", 5000);
	ssize_t u = log_wait(l, mark, 'u', "lost/tmp", 5000);
	ssize_t d = log_wait(l, mark, 'd', "lost/tmp", 5000);
	assert_true(a < u && u < d);
	/* a new watch, and the end of the old one was published */
	until = now_ms() + 5000;
	while (spy_watch_id(&spy) == id1 && now_ms() < until) {
		patch_cm(cli, "lost", "keep", NULL, "ping");
		sleep_ms(20);
	}
	assert_true(spy_watch_id(&spy) != id1);
	pthread_mutex_lock(&spy.mu);
	assert_true(spy.errors >= 1);
	pthread_mutex_unlock(&spy.mu);

	/* 2. Lost, and more changes than the ring holds: the watch from the
	 * last resourceVersion is refused (410 Expired), the informer relists
	 * and delivers the difference only. */
	gate_close(l, "lost/gate2");
	create_cm("lost", "gate2", "a", "0");
	gate_wait_held(l);
	unwatch(spy_ctx, spy_watch_id(&spy));
	mark = log_len(l);
	for (int i = 0; i < 12; i++) {
		char name[16];
		snprintf(name, sizeof(name), "x%d", i);
		create_cm("lost", name, "a", "0");
	}
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "x%d", i);
		delete_cm("lost", name);
	}
	int64_t keep_rv = patch_cm(cli, "lost", "keep", NULL, "after");
	delete_cm("lost", "old1");
	gate_open(l);
	log_wait(l, mark, 'd', "lost/old1", 5000);
	log_wait(l, mark, 'a', "lost/x11", 5000);
	ssize_t ku = log_wait(l, mark, 'u', "lost/keep", 5000);
	assert_int_equal(log_at(l, ku).rv, keep_rv);
	for (int i = 0; i < 6; i++) {
		char key[16];
		snprintf(key, sizeof(key), "lost/x%d", i);
		/* created and deleted while the watch was lost: never seen */
		assert_int_equal(log_find(l, mark, 'a', key), -1);
		assert_int_equal(log_find(l, mark, 'd', key), -1);
	}
	for (int i = 6; i < 12; i++) {
		char key[16];
		snprintf(key, sizeof(key), "lost/x%d", i);
		assert_true(log_find(l, mark, 'a', key) >= 0);
	}
	/* and it watches again after the relist */
	mark = log_len(l);
	create_cm("lost", "later", "a", "0");
	log_wait(l, mark, 'a', "lost/later", 5000);
	wait_cache_matches(inf, "lost", NULL, 10);
	struct seen x;
	each_view(inf, &x); /* none stale */
	assert_int_equal(x.n, 10);
	assert_int_equal(atomic_load(&l->cache_misses), 0);
	assert_int_equal(atomic_load(&l->views_copied), 0);

	release(inf);
	kb_unsubscribe(spy_ctx, "api/watch/ctrl/*");
}

/* --- the index ---------------------------------------------------------------------------- */

/* Index key: the app label, none for "none". */
static bool app_key(const msgpack_object *obj, char *buf, size_t len)
{
	const char *s;
	size_t n;
	if (!kb_mp_str(obj, "metadata.labels.app", &s, &n) || n >= len ||
	    (n == 4 && !memcmp(s, "none", 4)))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

struct names {
	int n;
	char s[8][64];
};

static void name_one(void *arg, const msgpack_object *obj)
{
	struct names *x = arg;
	const char *s;
	size_t n;
	if (x->n < 8 && kb_mp_str(obj, "metadata.name", &s, &n) && n < 64) {
		memcpy(x->s[x->n], s, n);
		x->s[x->n][n] = '\0';
	}
	x->n++;
}

/* The sorted names under ikey, joined by ",". */
static void indexed(struct kb_informer *inf, const char *ikey, char *out,
    size_t len)
{
	struct names x = { 0 };
	kb_informer_each_indexed(inf, ikey, name_one, &x);
	qsort(x.s, (size_t)(x.n < 8 ? x.n : 8), sizeof(x.s[0]),
	    (int (*)(const void *, const void *))strcmp);
	out[0] = '\0';
	for (int i = 0; i < x.n && i < 8; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s",
		    i ? "," : "", x.s[i]);
}

static void wait_indexed(struct kb_informer *inf, const char *ikey,
    const char *want)
{
	char got[600];
	int64_t until = now_ms() + 5000;
	do {
		indexed(inf, ikey, got, sizeof(got));
		if (!strcmp(got, want))
			return;
		usleep(10000);
	} while (now_ms() < until);
	fail_msg("index %s: \"%s\", want \"%s\"", ikey, got, want);
}

/* kb_informer_set_index: objects found by their index key through the
 * list, adds, a label change (moving between keys), deletes; none for an
 * object without a key; set only before start. */
static void test_informer_index(void **state)
{
	(void)state;
	make_ns("idx");
	create_cm("idx", "x1", "a", "0");
	create_cm("idx", "x2", "a", "0");
	create_cm("idx", "x3", "b", "0");
	create_cm("idx", "x4", NULL, "0");
	kb_ctx *c = kbt_client(host, "ctrl-idx", "plugin:ctrl-idx", groups, 1);
	struct kb_informer_opts o = { .ns = "idx" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, NULL, NULL);
	struct kb_informer *plain =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, NULL, NULL);
	assert_int_equal(kb_informer_set_index(inf, NULL), KB_EINVAL);
	assert_int_equal(kb_informer_set_index(inf, app_key), 0);
	assert_int_equal(kb_informer_set_index(inf, app_key), KB_ESTATE);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_int_equal(kb_informer_start(plain), 0);
	assert_int_equal(kb_informer_set_index(plain, app_key), KB_ESTATE);
	assert_true(kb_informer_wait_synced(inf, 5000));
	assert_true(kb_informer_wait_synced(plain, 5000));
	wait_indexed(inf, "a", "x1,x2");
	wait_indexed(inf, "b", "x3");
	wait_indexed(inf, "none", "");
	wait_indexed(plain, "a", ""); /* no index: nothing */

	create_cm("idx", "x5", "b", "0");
	wait_indexed(inf, "b", "x3,x5");
	patch_cm(cli, "idx", "x1", "b", NULL);
	wait_indexed(inf, "a", "x2");
	wait_indexed(inf, "b", "x1,x3,x5");
	patch_cm(cli, "idx", "x1", "none", NULL);
	wait_indexed(inf, "b", "x3,x5");
	patch_cm(cli, "idx", "x4", "c", NULL);
	wait_indexed(inf, "c", "x4");
	patch_cm(cli, "idx", "x3", NULL, "1"); /* same key, new version */
	wait_indexed(inf, "b", "x3,x5");
	delete_cm("idx", "x3");
	wait_indexed(inf, "b", "x5");
	delete_cm("idx", "x2");
	wait_indexed(inf, "a", "");
	assert_int_equal(kb_informer_len(inf), 3);

	release(inf);
	release(plain);
}

/* Two informers of one process that receive the same object's bytes share
 * one body (sdk/src/body.c, kb_body_shared_decoded): the same pointer from
 * both caches, version after version; an update's old and new still
 * differ. */
static void test_informer_shared_bodies(void **state)
{
	(void)state;
	make_ns("share");
	kb_ctx *c1 = kbt_client(host, "ctrl-sh1", "plugin:ctrl-sh1", groups, 1);
	kb_ctx *c2 = kbt_client(host, "ctrl-sh2", "plugin:ctrl-sh2", groups, 1);
	struct evlog *l1 = log_new(), *l2 = log_new();
	struct kb_informer_opts o = { .ns = "share" };
	struct kb_informer *i1 =
	    informer_new(c1, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l1);
	struct kb_informer *i2 =
	    informer_new(c2, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l2);
	l1->inf = i1;
	l2->inf = i2;
	assert_int_equal(kb_informer_start(i1), 0);
	assert_int_equal(kb_informer_start(i2), 0);
	assert_true(kb_informer_wait_synced(i1, 5000));
	assert_true(kb_informer_wait_synced(i2, 5000));

	create_cm("share", "s1", "a", "0");
	log_wait(l1, 0, 'a', "share/s1", 5000);
	log_wait(l2, 0, 'a', "share/s1", 5000);
	kb_body *a1 = kb_informer_get(i1, "share", "s1");
	kb_body *a2 = kb_informer_get(i2, "share", "s1");
	assert_non_null(a1);
	assert_ptr_equal(a1, a2);
	for (int v = 1; v <= 3; v++) {
		char val[8];
		snprintf(val, sizeof(val), "%d", v);
		int64_t rv = patch_cm(cli, "share", "s1", NULL, val);
		size_t m1 = 0, m2 = 0;
		struct ev e1, e2;
		do {
			ssize_t at = log_wait(l1, m1, 'u', "share/s1", 5000);
			e1 = log_at(l1, at);
			m1 = (size_t)at + 1;
		} while (e1.rv < rv);
		do {
			ssize_t at = log_wait(l2, m2, 'u', "share/s1", 5000);
			e2 = log_at(l2, at);
			m2 = (size_t)at + 1;
		} while (e2.rv < rv);
		assert_true(e1.old_rv < e1.rv);
		kb_body *b1 = kb_informer_get(i1, "share", "s1");
		kb_body *b2 = kb_informer_get(i2, "share", "s1");
		assert_ptr_equal(b1, b2);
		assert_ptr_not_equal(b1, a1);
		assert_true(kb_mp_streq(kb_body_obj(b1), "data.k", val));
		kb_body_unref(a1);
		kb_body_unref(a2);
		a1 = b1;
		a2 = b2;
	}
	/* the body outlives one informer, and the other keeps it */
	release(i1);
	assert_true(kb_mp_streq(kb_body_obj(a1), "data.k", "3"));
	kb_body *b2 = kb_informer_get(i2, "share", "s1");
	assert_ptr_equal(b2, a2);
	kb_body_unref(b2);
	kb_body_unref(a1);
	kb_body_unref(a2);
	assert_int_equal(atomic_load(&l1->cache_misses), 0);
	assert_int_equal(atomic_load(&l2->cache_misses), 0);
	assert_int_equal(atomic_load(&l1->views_copied), 0);
	assert_int_equal(atomic_load(&l2->views_copied), 0);
	release(i2);
}

static void test_informer_resync(void **state)
{
	(void)state;
	make_ns("resync");
	create_cm("resync", "r1", "a", "0");
	create_cm("resync", "r2", "a", "0");
	kb_ctx *c =
	    kbt_client(host, "ctrl-resync", "plugin:ctrl-resync", groups, 1);
	struct evlog *l = log_new();
	struct kb_informer_opts o = { .ns = "resync", .resync_ms = 150 };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_true(kb_informer_wait_synced(inf, 5000));
	int64_t t0 = now_ms();
	sleep_ms(700);
	release(inf);
	int64_t dt = now_ms() - t0;
	int r1 = 0, r2 = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].type != 'u')
			continue;
		/* update(obj, obj): the same version on both sides */
		assert_int_equal(l->v[i].old_rv, l->v[i].rv);
		r1 += !strcmp(l->v[i].key, "resync/r1");
		r2 += !strcmp(l->v[i].key, "resync/r2");
	}
	assert_true(r1 >= 3 && r2 >= 3);
	assert_true(r1 <= dt / 150 + 1 && r2 <= dt / 150 + 1);
}

/* kb_informer_set_view: a view made once per version of each object, for
 * listed and watched ones, replaced on update, gone on delete, never
 * remade by a scan or a resync; each_indexed_view hands out the view of
 * the object it passes; two informers sharing bodies keep their own
 * views. */
static void test_informer_view(void **state)
{
	(void)state;
	make_ns("view");
	create_cm("view", "v1", "a", "0");
	create_cm("view", "v2", "a", "0");
	create_cm("view", "v3", "b", "0");
	kb_ctx *c =
	    kbt_client(host, "ctrl-view", "plugin:ctrl-view", groups, 1);
	struct evlog *l = log_new(), *lr = log_new();
	struct kb_informer_opts o = { .ns = "view" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	struct kb_informer *neg =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, NULL, NULL);
	struct kb_informer *plain =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, NULL, NULL);
	atomic_store(&views_made, 0);
	atomic_store(&views_dirty, 0);
	atomic_store(&neg_made, 0);
	assert_int_equal(kb_informer_set_view(inf, sizeof(struct cm_view),
			     NULL),
	    KB_EINVAL);
	assert_int_equal(kb_informer_set_view(inf, 0, cm_view_make), KB_EINVAL);
	assert_int_equal(kb_informer_set_view(inf, KB_INFORMER_VIEW_MAX + 1,
			     cm_view_make),
	    KB_EINVAL);
	assert_int_equal(kb_informer_set_view(inf, sizeof(struct cm_view),
			     cm_view_make),
	    0);
	assert_int_equal(kb_informer_set_view(inf, sizeof(struct cm_view),
			     cm_view_make),
	    KB_ESTATE);
	assert_int_equal(kb_informer_set_index(inf, app_key), 0);
	assert_int_equal(kb_informer_set_view(neg, sizeof(int64_t),
			     neg_view_make),
	    0);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_int_equal(kb_informer_start(neg), 0);
	assert_int_equal(kb_informer_start(plain), 0);
	assert_int_equal(kb_informer_set_view(plain, sizeof(struct cm_view),
			     cm_view_make),
	    KB_ESTATE);
	assert_true(kb_informer_wait_synced(inf, 5000));
	assert_true(kb_informer_wait_synced(neg, 5000));
	assert_true(kb_informer_wait_synced(plain, 5000));

	/* listed: one view each, made of the object shown with it */
	wait_made(&views_made, 3);
	struct seen x;
	each_view(inf, &x);
	assert_int_equal(x.n, 3);
	assert_int_equal(x.no_view, 0);
	struct cm_view v1 = get_view(inf, "v1"), v2 = get_view(inf, "v2"),
		       v3 = get_view(inf, "v3");
	/* scans and gets make none */
	each_view(inf, &x);
	assert_int_equal(atomic_load(&views_made), 3);
	/* without a view: NULL, and a get leaves the buffer alone */
	each_view(plain, &x);
	assert_int_equal(x.n, 0);
	assert_int_equal(x.no_view, 3);
	struct cm_view untouched;
	memset(&untouched, 0x5a, sizeof(untouched));
	kb_body *b = kb_informer_get_view(plain, "view", "v1", &untouched);
	assert_non_null(b);
	kb_body_unref(b);
	assert_int_equal(untouched.serial, 0x5a5a5a5au);
	assert_null(kb_informer_get_view(inf, "view", "none", &untouched));
	assert_int_equal(untouched.serial, 0x5a5a5a5au);

	/* watched: an update replaces the view; the others stay as made */
	size_t mark = log_len(l);
	int64_t rv = patch_cm(cli, "view", "v1", NULL, "1");
	log_wait(l, mark, 'u', "view/v1", 5000);
	wait_made(&views_made, 4);
	struct cm_view n1 = get_view(inf, "v1");
	assert_int_equal(n1.rv, rv);
	assert_string_equal(n1.k, "1");
	assert_true(n1.serial > v1.serial);
	assert_ptr_not_equal(n1.name, v1.name);
	assert_int_equal(get_view(inf, "v2").serial, v2.serial);
	assert_int_equal(get_view(inf, "v3").serial, v3.serial);
	/* and an add makes one */
	mark = log_len(l);
	create_cm("view", "v4", "b", "4");
	log_wait(l, mark, 'a', "view/v4", 5000);
	wait_made(&views_made, 5);
	assert_string_equal(get_view(inf, "v4").k, "4");

	/* each_indexed_view: the objects under the key, with their views,
	 * as they move between keys */
	memset(&x, 0, sizeof(x));
	kb_informer_each_indexed_view(inf, "a", see, &x);
	assert_int_equal(x.n, 2);
	assert_int_equal(views_check(&x, "v1")->serial, n1.serial);
	assert_int_equal(views_check(&x, "v2")->serial, v2.serial);
	mark = log_len(l);
	rv = patch_cm(cli, "view", "v1", "b", NULL);
	log_wait(l, mark, 'u', "view/v1", 5000);
	wait_made(&views_made, 6);
	memset(&x, 0, sizeof(x));
	kb_informer_each_indexed_view(inf, "b", see, &x);
	assert_int_equal(x.n, 3);
	const struct cm_view *in_b = views_check(&x, "v1");
	assert_non_null(in_b);
	assert_int_equal(in_b->rv, rv);
	assert_true(in_b->serial > n1.serial);
	memset(&x, 0, sizeof(x));
	kb_informer_each_indexed_view(inf, "a", see, &x);
	assert_int_equal(x.n, 1);
	assert_non_null(views_check(&x, "v2"));

	/* a delete takes the view with the object, and makes none */
	mark = log_len(l);
	delete_cm("view", "v2");
	log_wait(l, mark, 'd', "view/v2", 5000);
	assert_null(kb_informer_get_view(inf, "view", "v2", &untouched));
	each_view(inf, &x);
	assert_int_equal(x.n, 3);
	assert_null(views_check(&x, "v2"));
	assert_int_equal(atomic_load(&views_made), 6);

	/* the other informer: the same bodies, views of its own */
	int64_t until = now_ms() + 5000;
	while (kb_informer_len(neg) != 3 && now_ms() < until)
		sleep_ms(5);
	int64_t nv = 0;
	kb_body *a = kb_informer_get_view(neg, "view", "v1", &nv);
	b = kb_informer_get_view(inf, "view", "v1", NULL);
	assert_ptr_equal(a, b);
	assert_int_equal(nv, -rv);
	kb_body_unref(a);
	kb_body_unref(b);
	/* 3 listed, v1 twice, v4 */
	wait_made(&neg_made, 6);
	release(neg);
	release(plain);

	/* a resync hands every object to update() again and makes no view */
	struct kb_informer_opts ro = { .ns = "view", .resync_ms = 50 };
	struct kb_informer *rinf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &ro, &log_handlers, lr);
	atomic_store(&neg_made, 0);
	assert_int_equal(kb_informer_set_view(rinf, sizeof(int64_t),
			     neg_view_make),
	    0);
	assert_int_equal(kb_informer_start(rinf), 0);
	assert_true(kb_informer_wait_synced(rinf, 5000));
	until = now_ms() + 5000;
	while (log_len(lr) < 3 + 3 * 3 && now_ms() < until)
		sleep_ms(5);
	assert_true(log_len(lr) >= 3 + 3 * 3);
	assert_int_equal(atomic_load(&neg_made), 3);
	release(rinf);

	assert_int_equal(atomic_load(&views_dirty), 0);
	assert_int_equal(atomic_load(&l->cache_misses), 0);
	release(inf);
}

/* kb_count_*: calls to the `api` service by instance, verb and resource,
 * watch events by instance, resource and type; nothing while off. */
static unsigned long long count_of(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l;) {
		if (!strncmp(l, key, kl) && l[kl] == '\t')
			return strtoull(l + kl + 1, NULL, 10);
		l = strchr(l, '\n');
		l = l ? l + 1 : NULL;
	}
	return 0;
}

static void test_counting(void **state)
{
	(void)state;
	make_ns("count");
	kb_ctx *c =
	    kbt_client(host, "ctrl-count", "plugin:ctrl-count", groups, 1);
	struct evlog *l = log_new();
	struct kb_informer_opts o = { .ns = "count" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_true(kb_informer_wait_synced(inf, 5000));

	free(kb_count_dump(true));
	assert_false(kb_counting());
	create_cm("count", "off", "a", "0");
	assert_true(log_wait(l, 0, 'a', "count/off", 5000) >= 0);
	char *text = kb_count_dump(true);
	assert_non_null(text);
	assert_string_equal(text, "");
	free(text);

	kb_count_enable(true);
	assert_true(kb_counting());
	size_t mark = log_len(l);
	create_cm("count", "on", "a", "0");
	patch_cm(c, "count", "on", NULL, "1");
	assert_int_equal(
	    kb_api_get(c, &KB_GVR_PODS, "count", "nope", NULL), KB_ENOTFOUND);
	assert_true(log_wait(l, mark, 'u', "count/on", 5000) >= 0);
	kb_count_enable(false);
	text = kb_count_dump(true);
	assert_non_null(text);
	assert_int_equal(count_of(text, "call tester create configmaps"), 1);
	assert_int_equal(count_of(text, "call ctrl-count patch configmaps"), 1);
	assert_int_equal(count_of(text, "call ctrl-count get pods"), 1);
	assert_true(count_of(text, "Call ctrl-count get pods") > 0);
	assert_int_equal(
	    count_of(text, "event ctrl-count configmaps ADDED"), 1);
	assert_int_equal(
	    count_of(text, "event ctrl-count configmaps MODIFIED"), 1);
	assert_true(count_of(text, "Event ctrl-count configmaps ADDED") > 0);
	free(text);
	/* reset: the counters read zero */
	text = kb_count_dump(false);
	assert_int_equal(count_of(text, "call tester create configmaps"), 0);
	free(text);
	release(inf);
}

/* A list the server refuses (a bad selector): the informer keeps trying,
 * with backoff, never syncs, and frees cleanly. */
static void test_informer_errors(void **state)
{
	(void)state;
	kb_ctx *c = kbt_client(host, "ctrl-err", "plugin:ctrl-err", groups, 1);
	struct evlog *l = log_new();
	struct kb_informer_opts o = { .label_selector = "app in (" };
	struct kb_informer *inf =
	    informer_new(c, &KB_GVR_CONFIGMAPS, &o, &log_handlers, l);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_false(kb_informer_wait_synced(inf, 300));
	release(inf);
	/* never started */
	inf = informer_new(c, &KB_GVR_PODS, NULL, NULL, NULL);
	assert_non_null(inf);
	release(inf);
	assert_int_equal(l->n, 0);
}

/* --- work queues --------------------------------------------------------------------------- */

static char *get_now(struct kb_workqueue *q)
{
	char *k = NULL;
	assert_int_equal(kb_workqueue_get(q, &k, 0), 0);
	return k;
}

static void test_wq_dedup_and_done(void **state)
{
	(void)state;
	struct kb_workqueue *q = kb_workqueue_new("t");
	char *k = NULL;
	assert_int_equal(kb_workqueue_get(q, &k, 0), KB_ETIMEOUT);
	assert_null(k);
	kb_workqueue_add(q, "a");
	kb_workqueue_add(q, "b");
	kb_workqueue_add(q, "a");
	assert_int_equal(kb_workqueue_len(q), 2);
	k = get_now(q);
	assert_string_equal(k, "a");
	/* added while processing: not handed to another worker now … */
	kb_workqueue_add(q, "a");
	kb_workqueue_add(q, "a");
	assert_int_equal(kb_workqueue_len(q), 1);
	char *k2 = get_now(q), *none = NULL;
	assert_string_equal(k2, "b");
	assert_int_equal(kb_workqueue_get(q, &none, 0), KB_ETIMEOUT);
	assert_null(none);
	/* … but queued again, once, by done */
	kb_workqueue_done(q, "a");
	free(k);
	assert_int_equal(kb_workqueue_len(q), 1);
	k = get_now(q);
	assert_string_equal(k, "a");
	kb_workqueue_done(q, "a");
	kb_workqueue_done(q, "b");
	free(k);
	free(k2);
	assert_int_equal(kb_workqueue_len(q), 0);
	/* FIFO */
	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		kb_workqueue_add(q, key);
	}
	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		k = get_now(q);
		assert_string_equal(k, key);
		kb_workqueue_done(q, k);
		free(k);
	}
	/* done for a key never handed out is harmless */
	kb_workqueue_done(q, "zzz");
	kb_workqueue_shutdown(q);
	kb_workqueue_free(q);
}

/* Time from add to get for a rate-limited key. */
static int64_t backoff_once(struct kb_workqueue *q, const char *key)
{
	int64_t t0 = now_ms();
	kb_workqueue_add_rate_limited(q, key);
	char *k = NULL;
	assert_int_equal(kb_workqueue_get(q, &k, 5000), 0);
	int64_t dt = now_ms() - t0;
	assert_string_equal(k, key);
	kb_workqueue_done(q, k);
	free(k);
	return dt;
}

static void test_wq_backoff(void **state)
{
	(void)state;
	struct kb_workqueue *q = kb_workqueue_new("t");
	/* 5, 10, 20, 40, 80, 160 ms */
	for (int i = 0; i < 6; i++) {
		int64_t want = 5LL << i;
		int64_t dt = backoff_once(q, "x");
		if (dt < want - 1 || dt > want + 500)
			fail_msg("retry %d came after %" PRId64
				 " ms, expected ~%" PRId64,
			    i, dt, want);
		assert_int_equal(kb_workqueue_retries(q, "x"), i + 1);
	}
	/* per key: another key starts at 5 ms */
	int64_t dt = backoff_once(q, "y");
	assert_true(dt >= 4 && dt < 500);
	/* forget resets */
	kb_workqueue_forget(q, "x");
	assert_int_equal(kb_workqueue_retries(q, "x"), 0);
	dt = backoff_once(q, "x");
	assert_true(dt >= 4 && dt < 500);
	/* re-added while waiting out a backoff: deduplicated, and the
	 * earliest time (5 ms) wins over the later ones */
	kb_workqueue_forget(q, "x");
	for (int i = 0; i < 20; i++)
		kb_workqueue_add_rate_limited(q, "x");
	assert_int_equal(kb_workqueue_retries(q, "x"), 20);
	char *k = NULL;
	int64_t t0 = now_ms();
	assert_int_equal(kb_workqueue_get(q, &k, 1000), 0);
	assert_true(now_ms() - t0 < 500);
	kb_workqueue_done(q, k);
	free(k);
	assert_int_equal(kb_workqueue_get(q, &k, 20), KB_ETIMEOUT);
	kb_workqueue_forget(q, "x");
	/* after 40 failures the next wait is the cap, 1000 s: no overflow
	 * to a short or negative delay */
	struct kb_workqueue *q2 = kb_workqueue_new("cap");
	for (int i = 0; i < 40; i++)
		kb_workqueue_add_rate_limited(q2, "c");
	assert_int_equal(kb_workqueue_get(q2, &k, 1000), 0);
	kb_workqueue_done(q2, k);
	free(k);
	kb_workqueue_add_rate_limited(q2, "c");
	assert_int_equal(kb_workqueue_retries(q2, "c"), 41);
	assert_int_equal(kb_workqueue_get(q2, &k, 50), KB_ETIMEOUT);
	assert_int_equal(kb_workqueue_len(q2), 0);
	kb_workqueue_shutdown(q2);
	kb_workqueue_free(q2);
	kb_workqueue_shutdown(q);
	kb_workqueue_free(q);
}

static void test_wq_add_after(void **state)
{
	(void)state;
	struct kb_workqueue *q = kb_workqueue_new("t");
	int64_t t0 = now_ms();
	kb_workqueue_add_after(q, "later", 300);
	assert_int_equal(kb_workqueue_len(q), 0);
	char *k = NULL;
	assert_int_equal(kb_workqueue_get(q, &k, 30), KB_ETIMEOUT);
	assert_int_equal(kb_workqueue_get(q, &k, 3000), 0);
	int64_t dt = now_ms() - t0;
	assert_string_equal(k, "later");
	assert_true(dt >= 299 && dt < 1000);
	kb_workqueue_done(q, k);
	free(k);
	/* an earlier add_after of the same key wins; the later is dropped */
	t0 = now_ms();
	kb_workqueue_add_after(q, "k", 400);
	kb_workqueue_add_after(q, "k", 50);
	assert_int_equal(kb_workqueue_get(q, &k, 2000), 0);
	dt = now_ms() - t0;
	assert_true(dt >= 49 && dt < 390);
	kb_workqueue_done(q, k);
	free(k);
	assert_int_equal(kb_workqueue_get(q, &k, 500), KB_ETIMEOUT);
	/* ordering by due time; <= 0 is now */
	kb_workqueue_add_after(q, "c", 90);
	kb_workqueue_add_after(q, "b", 60);
	kb_workqueue_add_after(q, "a", 0);
	const char *want[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kb_workqueue_get(q, &k, 2000), 0);
		assert_string_equal(k, want[i]);
		kb_workqueue_done(q, k);
		free(k);
	}
	/* a waiter blocked without a deadline wakes for a due delay */
	kb_workqueue_add_after(q, "d", 40);
	assert_int_equal(kb_workqueue_get(q, &k, -1), 0);
	assert_string_equal(k, "d");
	kb_workqueue_done(q, k);
	free(k);
	/* pending delays are freed with the queue */
	kb_workqueue_add_after(q, "never", 100000);
	kb_workqueue_shutdown(q);
	kb_workqueue_free(q);
}

struct waiter {
	struct kb_workqueue *q;
	int rc;
	int64_t woke;
	pthread_t t;
};

static void *wait_get(void *arg)
{
	struct waiter *w = arg;
	char *k = NULL;
	w->rc = kb_workqueue_get(w->q, &k, -1);
	w->woke = now_ms();
	free(k);
	return NULL;
}

static void test_wq_shutdown(void **state)
{
	(void)state;
	struct kb_workqueue *q = kb_workqueue_new("t");
	struct waiter w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .q = q, .rc = -1 };
		pthread_create(&w[i].t, NULL, wait_get, &w[i]);
	}
	sleep_ms(50);
	int64_t t0 = now_ms();
	kb_workqueue_shutdown(q);
	for (int i = 0; i < 4; i++) {
		pthread_join(w[i].t, NULL);
		assert_int_equal(w[i].rc, KB_ECLOSED);
		assert_true(w[i].woke - t0 < 1000);
	}
	/* after shutdown: adds are dropped and get returns at once */
	kb_workqueue_add(q, "x");
	assert_int_equal(kb_workqueue_len(q), 0);
	char *k = NULL;
	assert_int_equal(kb_workqueue_get(q, &k, 1000), KB_ECLOSED);
	kb_workqueue_free(q);
}

enum {
	NKEYS = 64,
	PRODUCERS = 4,
	CONSUMERS = 4,
	ADDS = 3000
};

struct mt {
	struct kb_workqueue *q;
	atomic_int busy[NKEYS];
	atomic_int processed[NKEYS];
	atomic_int overlap;
	atomic_int total;
};

static void *producer(void *arg)
{
	struct mt *m = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	for (int i = 0; i < ADDS; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", rand_r(&seed) % NKEYS);
		if (i % 7 == 0)
			kb_workqueue_add_after(m->q, key, 1 + i % 5);
		else
			kb_workqueue_add(m->q, key);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct mt *m = arg;
	char *k;
	while (kb_workqueue_get(m->q, &k, -1) == 0) {
		int i = atoi(k + 1);
		if (atomic_fetch_add(&m->busy[i], 1) != 0)
			atomic_fetch_add(&m->overlap, 1);
		if (i % 5 == 0)
			sched_yield();
		atomic_fetch_sub(&m->busy[i], 1);
		atomic_fetch_add(&m->processed[i], 1);
		atomic_fetch_add(&m->total, 1);
		kb_workqueue_done(m->q, k);
		free(k);
	}
	return NULL;
}

static void test_wq_many_threads(void **state)
{
	(void)state;
	struct mt *m = calloc(1, sizeof(*m));
	m->q = kb_workqueue_new("mt");
	pthread_t p[PRODUCERS], c[CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		pthread_create(&c[i], NULL, consumer, m);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_create(&p[i], NULL, producer, m);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(p[i], NULL);
	/* then every key once more: each must be processed after this */
	int before[NKEYS];
	for (int i = 0; i < NKEYS; i++) {
		before[i] = atomic_load(&m->processed[i]);
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		kb_workqueue_add(m->q, key);
	}
	int64_t until = now_ms() + 5000;
	bool all = false;
	while (!all && now_ms() < until) {
		all = true;
		for (int i = 0; i < NKEYS; i++)
			all &= atomic_load(&m->processed[i]) > before[i];
		if (!all)
			sleep_ms(5);
	}
	assert_true(all);
	until = now_ms() + 2000;
	while (kb_workqueue_len(m->q) && now_ms() < until)
		sleep_ms(5);
	kb_workqueue_shutdown(m->q);
	for (int i = 0; i < CONSUMERS; i++)
		pthread_join(c[i], NULL);
	assert_int_equal(atomic_load(&m->overlap), 0);
	/* deduplication: far fewer runs than adds */
	assert_true(atomic_load(&m->total) <= PRODUCERS * ADDS + NKEYS);
	assert_true(atomic_load(&m->total) >= NKEYS);
	kb_workqueue_free(m->q);
	free(m);
}

/* Getters that sleep in get: one of them waits for the first delay, the
 * others for work. Each key's time taken, by key number. */
enum { DKEYS = 48 };

struct dq {
	struct kb_workqueue *q;
	atomic_llong taken[DKEYS + 2];
	atomic_int n;
};

static void *dq_getter(void *arg)
{
	struct dq *d = arg;
	char *k;
	while (kb_workqueue_get(d->q, &k, -1) == 0) {
		atomic_store(&d->taken[atoi(k + 1)], now_ms());
		atomic_fetch_add(&d->n, 1);
		kb_workqueue_done(d->q, k);
		free(k);
	}
	return NULL;
}

static int64_t dq_wait(struct dq *d, int key, int64_t limit_ms)
{
	int64_t until = now_ms() + limit_ms;
	while (atomic_load(&d->taken[key]) == 0 && now_ms() < until)
		sleep_ms(1);
	return atomic_load(&d->taken[key]);
}

static void test_wq_delays_idle_getters(void **state)
{
	(void)state;
	for (int getters = 1; getters <= 4; getters += 3) {
		struct dq *d = calloc(1, sizeof(*d));
		d->q = kb_workqueue_new("dq");
		pthread_t t[4];
		for (int i = 0; i < getters; i++)
			pthread_create(&t[i], NULL, dq_getter, d);
		sleep_ms(20); /* all asleep in get */

		/* A getter waits for a far delay: work added now is still
		 * taken at once, even by the only getter. */
		int64_t t0 = now_ms();
		kb_workqueue_add_after(d->q, "k0", 5000);
		sleep_ms(20);
		kb_workqueue_add(d->q, "k1");
		int64_t at = dq_wait(d, 1, 2000);
		assert_true(at != 0 && at - t0 < 1000);

		/* A delay earlier than the one waited for moves the wait. */
		t0 = now_ms();
		kb_workqueue_add_after(d->q, "k2", 60);
		at = dq_wait(d, 2, 3000);
		assert_true(at != 0 && at - t0 >= 59 && at - t0 < 1500);

		/* Many delays in no order, and work between them: each taken
		 * once, none before its time, every one in the end. */
		int64_t due[DKEYS + 2] = { 0 };
		t0 = now_ms();
		for (int i = 3; i < DKEYS + 2; i++) {
			char key[16];
			snprintf(key, sizeof(key), "k%d", i);
			int64_t delay = i % 4 == 0 ? 0 : (i * 37) % 150 + 5;
			due[i] = t0 + delay;
			kb_workqueue_add_after(d->q, key, delay);
		}
		for (int i = 3; i < DKEYS + 2; i++) {
			at = dq_wait(d, i, 5000);
			assert_true(at != 0);
			assert_true(at >= due[i]);
		}
		assert_int_equal(atomic_load(&d->n), DKEYS + 1);
		assert_int_equal(atomic_load(&d->taken[0]), 0); /* not due */
		kb_workqueue_shutdown(d->q);
		for (int i = 0; i < getters; i++)
			pthread_join(t[i], NULL);
		kb_workqueue_free(d->q);
		free(d);
	}
}

/* --- leader election --------------------------------------------------------------------- */

struct cand {
	const char *id;
	struct kb_leader *l;
	atomic_int started, stopped;
	atomic_bool leading;
	struct cand *other;
	atomic_int both; /* started while the other was leading */
	int64_t started_at;
};

static void cand_started(void *arg)
{
	struct cand *c = arg;
	if (atomic_load(&c->other->leading))
		atomic_fetch_add(&c->both, 1);
	atomic_store(&c->leading, true);
	c->started_at = now_ms();
	atomic_fetch_add(&c->started, 1);
}

static void cand_stopped(void *arg)
{
	struct cand *c = arg;
	atomic_store(&c->leading, false);
	atomic_fetch_add(&c->stopped, 1);
}

static struct kb_leader *cand_new(struct cand *c, kb_ctx *ctx)
{
	struct kb_leader_opts o = { .ns = "kube-system",
		.name = "test-lease",
		.identity = c->id,
		.lease_ms = 1500,
		.started = cand_started,
		.stopped = cand_stopped,
		.arg = c };
	c->l = track(kb_leader_new(ctx, &o), leader_free);
	return c->l;
}

static kb_msg *get_lease(void)
{
	kb_msg *rep = NULL;
	assert_int_equal(kb_api_get(cli, &KB_GVR_LEASES, "kube-system",
			     "test-lease", &rep),
	    0);
	return rep;
}

static void test_leader_election(void **state)
{
	(void)state;
	kb_ctx *ca = kbt_client(host, "cand-a", "plugin:cand-a", groups, 1);
	kb_ctx *cb = kbt_client(host, "cand-b", "plugin:cand-b", groups, 1);
	struct cand *a = track(calloc(1, sizeof(*a)), free),
		    *b = track(calloc(1, sizeof(*b)), free);
	a->id = "host-a_ctrl";
	b->id = "host-b_ctrl";
	a->other = b;
	b->other = a;
	assert_non_null(cand_new(a, ca));
	assert_non_null(cand_new(b, cb));
	assert_int_equal(kb_leader_start(a->l), 0);
	assert_int_equal(kb_leader_start(b->l), 0);
	assert_int_equal(kb_leader_start(b->l), KB_ESTATE);

	/* exactly one leads, and keeps leading (renewing every 500 ms) */
	int64_t until = now_ms() + 4000;
	while (!kb_leader_is_leader(a->l) && !kb_leader_is_leader(b->l) &&
	    now_ms() < until)
		sleep_ms(5);
	int64_t t_end = now_ms() + 2000;
	int leader_changes = 0;
	bool was_a = kb_leader_is_leader(a->l);
	while (now_ms() < t_end) {
		bool la = kb_leader_is_leader(a->l),
		     lb = kb_leader_is_leader(b->l);
		assert_false(la && lb);
		assert_true(la || lb);
		leader_changes += la != was_a;
		was_a = la;
		sleep_ms(5);
	}
	assert_int_equal(leader_changes, 0);
	struct cand *lead = kb_leader_is_leader(a->l) ? a : b;
	struct cand *follow = lead == a ? b : a;
	assert_int_equal(atomic_load(&lead->started), 1);
	assert_int_equal(atomic_load(&follow->started), 0);

	kb_msg *rep = get_lease();
	const msgpack_object *lease = kb_msg_body(rep);
	assert_true(kb_mp_streq(lease, "spec.holderIdentity", lead->id));
	int64_t v = 0;
	assert_true(kb_mp_int(lease, "spec.leaseDurationSeconds", &v));
	assert_int_equal(v, 2);
	assert_true(kb_mp_int(lease, "spec.leaseTransitions", &v));
	assert_int_equal(v, 0);
	const char *rt;
	size_t rtl;
	assert_true(kb_mp_str(lease, "spec.renewTime", &rt, &rtl));
	assert_int_equal(rtl, strlen("2006-01-02T15:04:05.000000Z"));
	assert_true(kb_mp_str(lease, "spec.acquireTime", &rt, &rtl));
	kb_msg_free(rep);

	/* the leader goes away: stopped() runs, the lease is released and
	 * the other takes over well within the lease duration */
	int64_t t0 = now_ms();
	release(lead->l);
	lead->l = NULL;
	assert_int_equal(atomic_load(&lead->stopped), 1);
	until = now_ms() + 3000;
	while (!kb_leader_is_leader(follow->l) && now_ms() < until)
		sleep_ms(5);
	assert_true(kb_leader_is_leader(follow->l));
	int64_t took = now_ms() - t0;
	if (took > 1500)
		fail_msg("takeover after a release took %" PRId64 " ms", took);
	rep = get_lease();
	assert_true(
	    kb_mp_streq(kb_msg_body(rep), "spec.holderIdentity", follow->id));
	assert_true(kb_mp_int(kb_msg_body(rep), "spec.leaseTransitions", &v));
	assert_int_equal(v, 1);
	kb_msg_free(rep);

	/* the leader loses the lease to someone else (a holder that then
	 * stops renewing): stopped() at once, and taken back only once that
	 * holder's renewTime + duration has passed */
	struct cand *ghost = follow;
	int64_t t_ghost = 0;
	for (int tries = 0; tries < 50 && t_ghost == 0; tries++) {
		rep = get_lease();
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		char now[64];
		time_t s = time(NULL);
		struct tm tm;
		gmtime_r(&s, &tm);
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
		kb_mp_pack(&pk, "{s:s, s:s, s:o, s:{s:s, s:i, s:s, s:s, s:i}}",
		    "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
		    "metadata", kb_mp_key(kb_msg_body(rep), "metadata"), "spec",
		    "holderIdentity", "ghost", "leaseDurationSeconds", 2,
		    "acquireTime", now, "renewTime", now, "leaseTransitions",
		    2);
		kb_msg_free(rep);
		kb_body *nb = kb_body_from_sbuf(&sb);
		msgpack_sbuffer_destroy(&sb);
		/* renewTime has whole seconds: it may be up to 1 s old */
		int64_t t = now_ms();
		int rc = kb_api_update(cli, &KB_GVR_LEASES, "kube-system",
		    "test-lease", NULL, nb, NULL);
		if (rc == 0)
			t_ghost = t;
		else
			assert_int_equal(rc, KB_ECONFLICT);
	}
	assert_true(t_ghost > 0);
	until = now_ms() + 2000;
	while (atomic_load(&ghost->stopped) == 0 && now_ms() < until)
		sleep_ms(5);
	assert_int_equal(atomic_load(&ghost->stopped), 1);
	assert_false(kb_leader_is_leader(ghost->l));
	int64_t lost_after = now_ms() - t_ghost;
	assert_true(lost_after < 2500); /* noticed at the next renew (500 ms) */
	until = now_ms() + 5000;
	while (!kb_leader_is_leader(ghost->l) && now_ms() < until)
		sleep_ms(5);
	assert_true(kb_leader_is_leader(ghost->l));
	int64_t back = now_ms() - t_ghost;
	/* not before the ghost's lease ran out by this candidate's own clock
	 * (1.5 s from when it saw the record), and within that + polling */
	if (back < 1450 || back > 3500)
		fail_msg("taken back after %" PRId64 " ms", back);
	assert_int_equal(atomic_load(&ghost->started), 2);
	rep = get_lease();
	assert_true(
	    kb_mp_streq(kb_msg_body(rep), "spec.holderIdentity", ghost->id));
	assert_true(kb_mp_int(kb_msg_body(rep), "spec.leaseTransitions", &v));
	assert_int_equal(v, 3);
	kb_msg_free(rep);

	assert_int_equal(atomic_load(&a->both) + atomic_load(&b->both), 0);
	release(ghost->l);
	assert_int_equal(atomic_load(&ghost->stopped), 2);
	rep = get_lease();
	assert_true(kb_mp_streq(kb_msg_body(rep), "spec.holderIdentity", ""));
	kb_msg_free(rep);
	release(a);
	release(b);
}

/* Two candidates racing for a fresh lease many times: never both. */
static void test_leader_race(void **state)
{
	(void)state;
	for (int round = 0; round < 4; round++) {
		char ea[32], eb[32], name[32];
		snprintf(ea, sizeof(ea), "race-a%d", round);
		snprintf(eb, sizeof(eb), "race-b%d", round);
		snprintf(name, sizeof(name), "race-%d", round);
		kb_ctx *ca = kbt_client(host, ea, "plugin:race", groups, 1);
		kb_ctx *cb = kbt_client(host, eb, "plugin:race", groups, 1);
		struct cand *a = track(calloc(1, sizeof(*a)), free),
			    *b = track(calloc(1, sizeof(*b)), free);
		a->id = "a";
		b->id = "b";
		a->other = b;
		b->other = a;
		struct kb_leader_opts o = { .ns = "kube-system",
			.name = name,
			.lease_ms = 900,
			.started = cand_started,
			.stopped = cand_stopped };
		o.identity = a->id;
		o.arg = a;
		a->l = track(kb_leader_new(ca, &o), leader_free);
		o.identity = b->id;
		o.arg = b;
		b->l = track(kb_leader_new(cb, &o), leader_free);
		kb_leader_start(a->l);
		kb_leader_start(b->l);
		int64_t until = now_ms() + 5000, quiet = 0;
		while (now_ms() < until && (quiet == 0 || now_ms() < quiet)) {
			bool la = kb_leader_is_leader(a->l),
			     lb = kb_leader_is_leader(b->l);
			assert_false(la && lb);
			/* once one leads, watch for 500 ms more */
			if ((la || lb) && quiet == 0)
				quiet = now_ms() + 500;
			sleep_ms(2);
		}
		assert_true(
		    kb_leader_is_leader(a->l) || kb_leader_is_leader(b->l));
		assert_int_equal(atomic_load(&a->started) +
			atomic_load(&b->started),
		    1);
		release(a->l);
		release(b->l);
		assert_int_equal(atomic_load(&a->both) + atomic_load(&b->both),
		    0);
		release(a);
		release(b);
	}
}

int main(void)
{
	const struct CMUnitTest wq[] = {
		cmocka_unit_test(test_object_key),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_wq_dedup_and_done),
		cmocka_unit_test(test_wq_backoff),
		cmocka_unit_test(test_wq_add_after),
		cmocka_unit_test(test_wq_shutdown),
		cmocka_unit_test(test_wq_many_threads),
		cmocka_unit_test(test_wq_delays_idle_getters),
	};
	const struct CMUnitTest api[] = {
		cmocka_unit_test_teardown(test_calls, cleanup),
		cmocka_unit_test_teardown(test_informer_sync_and_events,
		    cleanup),
		cmocka_unit_test_teardown(test_informer_selectors, cleanup),
		cmocka_unit_test_teardown(test_informer_lost_watch, cleanup),
		cmocka_unit_test_teardown(test_informer_shared_bodies, cleanup),
		cmocka_unit_test_teardown(test_informer_index, cleanup),
		cmocka_unit_test_teardown(test_informer_resync, cleanup),
		cmocka_unit_test_teardown(test_informer_view, cleanup),
		cmocka_unit_test_teardown(test_informer_errors, cleanup),
		cmocka_unit_test_teardown(test_counting, cleanup),
		cmocka_unit_test_teardown(test_leader_election, cleanup),
		cmocka_unit_test_teardown(test_leader_race, cleanup),
	};
	int failed = cmocka_run_group_tests_name("workqueue", wq, NULL, NULL);
	failed +=
	    cmocka_run_group_tests_name("api", api, setup_host, teardown_host);
	return failed;
}
