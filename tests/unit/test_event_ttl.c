/* tests/unit/test_event_ttl.c — Events expire, as kube-apiserver's
 * --event-ttl: with `event_ttl: 3s` an Event goes 3 s after its last
 * write (never before), whatever times it shows, core and events.k8s.io
 * alike; a
 * kubelet-like repeat (a merge patch of lastTimestamp and count) keeps
 * it, and so does any other write (a label); informers see the delete; `event_ttl: 0` keeps Events (and a
 * restart with a TTL deletes those it finds expired); a bad value fails
 * the start. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define TTL_MS 3000
#define GONE_BY_MS 10000 /* after an Event's last write */
#define PATCH_EVERY_MS 500
#define PATCH_FOR_MS 4000
#define STEP_MS 50

static const struct kb_gvr gvr_events_v1 = { "events.k8s.io", "v1", "events" };

/* RFC 3339 for now + off_s; micro: MicroTime, with microseconds. */
static void stamp(char *buf, size_t len, int64_t off_s, bool micro)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t t = ts.tv_sec + (time_t)off_s;
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (micro)
		snprintf(buf + n, len - n, ".%06ldZ", ts.tv_nsec / 1000);
	else
		snprintf(buf + n, len - n, "Z");
}

static void create_core(kb_ctx *c, const char *name, int64_t last_off_s)
{
	char last[64];
	stamp(last, sizeof(last), last_off_s, false);
	kb_body *b =
	    kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:s, s:s, "
		       "s:s, s:s, s:i, s:{s:s}}",
		"apiVersion", "v1", "kind", "Event", "metadata", "name", name,
		"namespace", "default", "involvedObject", "kind", "Pod", "name",
		"p", "namespace", "default", "reason", "Pulled", "message",
		"pulled", "type", "Normal", "firstTimestamp", last,
		"lastTimestamp", last, "count", 1, "source", "component",
		"kubelet");
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, &KB_GVR_EVENTS, "default", b, &rep);
	const char *msg = "";
	if (rc && rep)
		kb_msg_err(rep, &msg);
	kb_msg_free(rep);
	if (rc)
		fail_msg("create %s: %s %s", name, kb_strerror(rc), msg);
}

static void create_v1(kb_ctx *c, const char *name, int64_t off_s)
{
	char t[64];
	stamp(t, sizeof(t), off_s, true);
	kb_body *b =
	    kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
		       "s:{s:s, s:s, s:s}}",
		"apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata",
		"name", name, "namespace", "default", "eventTime", t, "type",
		"Normal", "reason", "Pulled", "action", "Pull", "note",
		"pulled", "reportingController", "kubelet", "reportingInstance",
		"n1", "regarding", "kind", "Pod", "name", "p", "namespace",
		"default");
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, &gvr_events_v1, "default", b, &rep);
	const char *msg = "";
	if (rc && rep)
		kb_msg_err(rep, &msg);
	kb_msg_free(rep);
	if (rc)
		fail_msg("create %s (events.k8s.io): %s %s", name,
		    kb_strerror(rc), msg);
}

/* The Event is there (true), or gone (false); any other answer fails. */
static bool present(kb_ctx *c, const struct kb_gvr *r, const char *name)
{
	kb_msg *rep = NULL;
	int rc = kb_api_get(c, r, "default", name, &rep);
	kb_msg_free(rep);
	if (rc != 0 && rc != KB_ENOTFOUND)
		fail_msg("get %s: %s", name, kb_strerror(rc));
	return rc == 0;
}

/* A kubelet's repeat: lastTimestamp now, count up. */
static int repeat(kb_ctx *c, const char *name, int count)
{
	char last[64];
	stamp(last, sizeof(last), 0, false);
	kb_body *p =
	    kb_mp_body("{s:s, s:i}", "lastTimestamp", last, "count", count);
	kb_msg *rep = NULL;
	int rc = kb_api_patch(c, &KB_GVR_EVENTS, "default", name, NULL, "merge",
	    p, &rep);
	kb_msg_free(rep);
	return rc;
}

/* Any other write: a label. It renews the Event as well (Kubernetes
 * renews the lease at every write), though no time in it moves. */
static int touch(kb_ctx *c, const char *name, int count)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", count);
	kb_body *p = kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "n", v);
	kb_msg *rep = NULL;
	int rc = kb_api_patch(c, &KB_GVR_EVENTS, "default", name, NULL, "merge",
	    p, &rep);
	kb_msg_free(rep);
	return rc;
}

/* The names an informer's del handler saw. */
struct dels {
	pthread_mutex_t mu;
	char names[16][64];
	int n;
};

static void on_del(void *arg, const msgpack_object *obj)
{
	struct dels *d = arg;
	char *name = kb_mp_strdup(obj, "metadata.name");
	pthread_mutex_lock(&d->mu);
	if (name && d->n < 16)
		snprintf(d->names[d->n++], sizeof(d->names[0]), "%s", name);
	pthread_mutex_unlock(&d->mu);
	free(name);
}

static bool saw_del(struct dels *d, const char *name)
{
	bool seen = false;
	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->n && !seen; i++)
		seen = !strcmp(d->names[i], name);
	pthread_mutex_unlock(&d->mu);
	return seen;
}

/* What the test follows of one Event. */
struct tracked {
	const char *name;
	const struct kb_gvr *r;
	int64_t written;    /* monotonic ms at (before) its last write */
	int64_t not_before; /* it must be there until then (ms after t0) */
	int64_t gone;       /* ms after t0 when it was first seen gone; -1 */
	struct dels *d;
};

static void test_events_expire(void **state)
{
	(void)state;
	char err[1024];
	struct kbt_host *h = kbt_api_host_start(
	    "listen: \"127.0.0.1:0\", kubeconfig: false, event_ttl: 3s", err,
	    sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);

	struct dels core_dels = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dels v1_dels = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct kb_informer_handlers hd = { .del = on_del };
	struct kb_informer_opts o = { .ns = "default" };
	struct kb_informer *inf =
	    kb_informer_new(c, &KB_GVR_EVENTS, &o, &hd, &core_dels);
	struct kb_informer *inf1 =
	    kb_informer_new(c, &gvr_events_v1, &o, &hd, &v1_dels);
	assert_non_null(inf);
	assert_non_null(inf1);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_int_equal(kb_informer_start(inf1), 0);
	assert_true(kb_informer_wait_synced(inf, 5000));
	assert_true(kb_informer_wait_synced(inf1, 5000));

	int64_t t0 = kbt_now_ms();
	/* lastTimestamp 2 h ago: the creation is the last write */
	create_core(c, "old", -7200);
	create_core(c, "fresh", 0);
	/* a lastTimestamp 5 s ahead (a node's clock) does not keep it: gone
	 * at a sweep (one a second) after its TTL, well before 7 s */
	create_core(c, "ahead", 5);
	create_core(c, "repeated", 0);
	create_core(c, "touched", -7200);
	create_v1(c, "v1-old", -7200);
	struct tracked ev[] = {
		{ "old", &KB_GVR_EVENTS, 0, TTL_MS - 50, -1, &core_dels },
		{ "fresh", &KB_GVR_EVENTS, 0, TTL_MS - 50, -1, &core_dels },
		{ "ahead", &KB_GVR_EVENTS, 0, TTL_MS - 50, -1, &core_dels },
		{ "repeated", &KB_GVR_EVENTS, 0, TTL_MS - 50, -1, &core_dels },
		{ "touched", &KB_GVR_EVENTS, 0, TTL_MS - 50, -1, &core_dels },
		{ "v1-old", &gvr_events_v1, 0, TTL_MS - 50, -1, &v1_dels },
	};
	const size_t n = sizeof(ev) / sizeof(ev[0]);
	struct tracked *rep = &ev[3], *tch = &ev[4];

	/* Every STEP_MS: which are gone; every PATCH_EVERY_MS for
	 * PATCH_FOR_MS: a repeat of `repeated`, which must find it. */
	int count = 1, left = (int)n;
	int64_t next_patch = PATCH_EVERY_MS, last_patch = 0;
	bool checked_1s = false;
	while (left > 0) {
		int64_t t = kbt_now_ms() - t0;
		if (t > PATCH_FOR_MS + GONE_BY_MS + 2000)
			break;
		if (t >= next_patch && t < PATCH_FOR_MS) {
			int64_t before = kbt_now_ms() - t0;
			int rc = repeat(c, rep->name, ++count);
			if (rc == 0)
				rc = touch(c, tch->name, count);
			if (rc)
				fail_msg("repeat %d at %lld ms: %s", count,
				    (long long)t, kb_strerror(rc));
			last_patch = before;
			rep->not_before = tch->not_before =
			    before + TTL_MS - 50;
			next_patch += PATCH_EVERY_MS;
		}
		for (size_t i = 0; i < n; i++) {
			if (ev[i].gone >= 0)
				continue;
			int64_t at = kbt_now_ms() - t0;
			if (present(c, ev[i].r, ev[i].name))
				continue;
			ev[i].gone = at;
			left--;
			print_message("%s gone at %lld ms\n", ev[i].name,
			    (long long)at);
		}
		if (!checked_1s && t >= 1000) {
			/* ~1 s after their creation, all are there */
			for (size_t i = 0; i < n; i++)
				if (ev[i].gone >= 0)
					fail_msg("%s gone at %lld ms, before its TTL",
					    ev[i].name, (long long)ev[i].gone);
			checked_1s = true;
		}
		kbt_sleep_ms(STEP_MS);
	}
	assert_true(checked_1s);
	assert_true(count >= PATCH_FOR_MS / PATCH_EVERY_MS - 1);
	print_message("repeated %d times, the last at %lld ms\n", count - 1,
	    (long long)last_patch);
	for (size_t i = 0; i < n; i++) {
		struct tracked *e = &ev[i];
		int64_t last = e == rep || e == tch ? last_patch : e->written;
		if (e->gone < 0)
			fail_msg("%s still there %lld ms after its last write",
			    e->name, (long long)(kbt_now_ms() - t0 - last));
		/* never before its TTL, and within GONE_BY_MS of its last write */
		if (e->gone < e->not_before)
			fail_msg("%s gone at %lld ms, before %lld", e->name,
			    (long long)e->gone, (long long)e->not_before);
		if (!strcmp(e->name, "ahead") && e->gone > TTL_MS + 2500)
			fail_msg("ahead gone at %lld ms: its own time kept it",
			    (long long)e->gone);
		if (e->gone > last + GONE_BY_MS)
			fail_msg("%s gone at %lld ms, its last write at %lld",
			    e->name, (long long)e->gone, (long long)last);
	}
	/* The repeats kept them past their first TTL many times over. */
	assert_true(rep->gone >= PATCH_FOR_MS - PATCH_EVERY_MS + TTL_MS - 50);
	assert_true(tch->gone >= PATCH_FOR_MS - PATCH_EVERY_MS + TTL_MS - 50);

	/* Deleted through the store: the informers saw each delete. */
	int64_t until = kbt_now_ms() + 5000;
	for (size_t i = 0; i < n; i++)
		while (!saw_del(ev[i].d, ev[i].name) && kbt_now_ms() < until)
			kbt_sleep_ms(STEP_MS);
	for (size_t i = 0; i < n; i++)
		if (!saw_del(ev[i].d, ev[i].name))
			fail_msg("no informer delete for %s", ev[i].name);
	assert_int_equal(kb_informer_len(inf), 0);
	assert_int_equal(kb_informer_len(inf1), 0);

	kb_informer_free(inf);
	kb_informer_free(inf1);
	kbt_host_stop(h);
}

/* A host on data dir `dir` whose API server has event_ttl `ttl`. */
static struct kbt_host *host_in(const char *dir, const char *ttl)
{
	char host[512], cfg[128], err[1024];
	snprintf(host, sizeof(host), "data_dir: \"%s\"", dir);
	snprintf(cfg, sizeof(cfg),
	    "listen: \"127.0.0.1:0\", kubeconfig: false, event_ttl: %s", ttl);
	struct kbt_host *h =
	    kbt_api_host_start_with(host, cfg, NULL, err, sizeof(err));
	if (h == NULL)
		fail_msg("host (event_ttl %s): %s", ttl, err);
	return h;
}

/* event_ttl: 0 keeps Events: past the time they would have gone with
 * 3 s (see above: by 4 s or so), both kinds are there. Started again
 * on the same data with 3 s, the server finds them expired in the store
 * (its caches' first list) and deletes them at its first sweeps. */
static void test_ttl_zero_keeps(void **state)
{
	(void)state;
	char *dir = kbt_mkdtemp("evttl");
	assert_non_null(dir);
	const char *groups[] = { "kubus:plugins" };
	struct kbt_host *h = host_in(dir, "0");
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	create_core(c, "old", -7200);
	create_v1(c, "v1-old", -7200);
	int64_t t0 = kbt_now_ms();
	while (kbt_now_ms() - t0 < 3000 + TTL_MS) {
		assert_true(present(c, &KB_GVR_EVENTS, "old"));
		assert_true(present(c, &gvr_events_v1, "v1-old"));
		kbt_sleep_ms(250);
	}
	kbt_host_stop(h);

	h = host_in(dir, "3s");
	c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	t0 = kbt_now_ms();
	bool core = true, v1 = true;
	while ((core || v1) && kbt_now_ms() - t0 < GONE_BY_MS) {
		core = core && present(c, &KB_GVR_EVENTS, "old");
		v1 = v1 && present(c, &gvr_events_v1, "v1-old");
		kbt_sleep_ms(STEP_MS);
	}
	print_message("after the restart: gone in %lld ms\n",
	    (long long)(kbt_now_ms() - t0));
	assert_false(core);
	assert_false(v1);
	kbt_host_stop(h);
	kbt_rmrf(dir);
	free(dir);
}

/* A negative or unreadable event_ttl fails the start, naming the key. */
static void test_bad_ttl(void **state)
{
	(void)state;
	static const char *const bad[] = { "-1s", "soon", "5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char cfg[128], err[1024] = "";
		snprintf(cfg, sizeof(cfg),
		    "listen: \"127.0.0.1:0\", kubeconfig: false, event_ttl: \"%s\"",
		    bad[i]);
		struct kbt_host *h = kbt_api_host_start(cfg, err, sizeof(err));
		if (h) {
			kbt_host_stop(h);
			fail_msg("event_ttl `%s` was taken", bad[i]);
		}
		print_message("event_ttl `%s`: %s\n", bad[i], err);
		assert_non_null(strstr(err, "event_ttl"));
		assert_non_null(strstr(err, bad[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_ttl),
		cmocka_unit_test(test_events_expire),
		cmocka_unit_test(test_ttl_zero_keeps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
