/* tests/unit/test_api_bindrv.c — pods/NAME/binding and pod patches from
 * the watch cache's bytes (api_cache_stored, api_pod_bind_mp_rv,
 * cached_pod in rest.c): the cached bytes are the stored ones with the
 * resourceVersion spliced in; binding them gives the bytes binding the
 * stored ones gives. Then through the `api` service where the cache may be
 * behind the store: a write just before the binding is kept, a pod
 * replaced under the same name is judged by what the store holds, a
 * kubelet's status patch right after the binding is not refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "api.h"
#include "harness.h"
#include <kubus/client.h>
#include "podbind.h"

#include "api_bind_util.h"

#define NOW "2026-11-27T10:30:00Z"

/* Stored bytes -> both paths: the same result, for OK the same bytes. */
static enum api_bind both_bytes(const char *mp, size_t len, int64_t rev, const char *node)
{
	char *cached = NULL, *out = NULL, *want = NULL;
	size_t clen = 0, outlen = 0, wantlen = 0, curlen = 0, wcurlen = 0;
	const char *cur = NULL, *wcur = NULL;
	enum api_bind wr = api_pod_bind_mp(mp, len, node, NOW, &want, &wantlen, &wcur, &wcurlen);
	/* no metadata map, or a version in it: the cache keeps no such
	 * bytes as the store's (api_cache_stored never gives them) */
	if (api_mp_with_rv(mp, len, rev, &cached, &clen) != 0) {
		free(want);
		return API_BIND_JSON;
	}
	/* an exact-size copy, so ASan sees a read past the end */
	char *exact = malloc(clen);
	memcpy(exact, cached, clen);
	enum api_bind r = api_pod_bind_mp_rv(exact, clen, node, NOW, &out, &outlen, &cur, &curlen);
	assert_int_equal(r, wr);
	if (r == API_BIND_OK) {
		assert_int_equal(outlen, wantlen);
		assert_memory_equal(out, want, outlen);
	}
	if (r == API_BIND_ASSIGNED) {
		assert_int_equal(curlen, wcurlen);
		assert_memory_equal(cur, wcur, curlen);
	}
	free(out);
	free(want);
	free(cached);
	free(exact);
	return r;
}

static enum api_bind both(const char *text, const char *node)
{
	json_t *pod = parse(text);
	char *mp;
	size_t len;
	assert_int_equal(api_mp_encode(pod, &mp, &len), 0);
	enum api_bind r = both_bytes(mp, len, 1234567, node);
	free(mp);
	json_decref(pod);
	return r;
}

static void test_same_bytes(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"default\","
		"\"uid\":\"u1\",\"creationTimestamp\":\"2026-11-27T08:00:00Z\",\"labels\":{\"app\":\"x\"}},"
		"\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"resources\":{\"requests\":"
		"{\"cpu\":\"100m\",\"memory\":\"500Mi\"}}}],\"schedulerName\":\"default-scheduler\"},"
		"\"status\":{\"phase\":\"Pending\",\"qosClass\":\"Burstable\"}}",
		"{\"metadata\":{\"name\":\"c\"},\"spec\":{\"nodeName\":\"\"},\"status\":{\"conditions\":"
		"[{\"type\":\"Ready\",\"status\":\"False\"},{\"type\":\"PodScheduled\",\"status\":\"False\"}]}}",
		"{\"metadata\":{},\"spec\":{}}",
		"{\"status\":{},\"metadata\":{\"name\":\"m\"}}",
		/* metadata with 15 keys: 16 with the version (fixmap -> map16) */
		"{\"metadata\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
		"\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"name\":\"o\"},\"spec\":{}}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		assert_int_equal(both(ok[i], "node-1"), API_BIND_OK);
	assert_int_equal(both("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"nodeName\":\"n2\"}}", "n1"),
	    API_BIND_ASSIGNED);
	assert_int_equal(both("{\"metadata\":{\"name\":\"a\",\"deletionTimestamp\":\"x\"},\"spec\":{}}",
	    "n1"), API_BIND_DELETING);
	assert_int_equal(both("{\"spec\":{}}", "n1"), API_BIND_JSON);
	assert_int_equal(both("{\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{}}", "n1"),
	    API_BIND_JSON);
	/* stored with headers wider than needed (map16 for 2 pairs, str8
	 * for a short key): both paths pack them again the same way */
	static const char wide[] = "\xde\x00\x02" "\xd9\x08metadata" "\x81\xa4name\xa1w"
	    "\xa4spec" "\x80";
	assert_int_equal(both_bytes(wide, sizeof wide - 1, 9, "n"), API_BIND_OK);
}

static void test_version_not_last(void **state)
{
	(void)state;
	/* a version that is not metadata's last entry: not the cache's bytes */
	json_t *pod = parse("{\"metadata\":{\"resourceVersion\":\"5\",\"name\":\"a\"},\"spec\":{}}");
	char *mp, *out = NULL;
	size_t len, outlen, curlen;
	const char *cur;
	assert_int_equal(api_mp_encode(pod, &mp, &len), 0);
	assert_int_equal(api_pod_bind_mp_rv(mp, len, "n", NOW, &out, &outlen, &cur, &curlen),
	    API_BIND_JSON);
	assert_null(out);
	free(mp);
	json_decref(pod);
	pod = parse("{\"metadata\":{\"name\":\"a\"},\"spec\":{}}");
	assert_int_equal(api_mp_encode(pod, &mp, &len), 0);
	assert_int_equal(api_pod_bind_mp_rv(mp, len, "n", NOW, &out, &outlen, &cur, &curlen),
	    API_BIND_JSON);
	free(mp);
	json_decref(pod);
}

/* --- through the `api` service ------------------------------------------------ */

static void create_pod(kb_ctx *c, const char *name, const char *node)
{
	kb_msg *rep = NULL;
	kb_body *b = node
	    ? kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}", "apiVersion", "v1",
		  "kind", "Pod", "metadata", "name", name, "spec", "nodeName", node,
		  "containers", "name", "c", "image", "busybox")
	    : kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1", "kind",
		  "Pod", "metadata", "name", name, "spec", "containers", "name", "c", "image",
		  "busybox");
	char what[96];
	snprintf(what, sizeof what, "create %s", name);
	expect_ok(kb_api_create(c, &KB_GVR_PODS, "default", b, &rep), rep, what);
	kb_msg_free(rep);
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* A thread writing labels key=v0..v<n-1> to one pod, one merge patch
 * each, counting the ones refused. */
struct labeler {
	kb_ctx *c;
	const char *name, *key;
	int n;
	int failed;
};

static void *patch_labels(void *arg)
{
	struct labeler *l = arg;
	for (int i = 0; i < l->n; i++) {
		char v[16];
		snprintf(v, sizeof v, "v%d", i);
		kb_msg *rep = NULL;
		if (kb_api_patch(l->c, &KB_GVR_PODS, "default", l->name, NULL, "merge",
		        kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", l->key, v), &rep))
			l->failed++;
		kb_msg_free(rep);
	}
	return NULL;
}

static void test_cache_behind(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = bind_host(&c);
	kb_msg *rep = NULL;
	int rc;
	/* The cache has the pod, then a label is written and the pod bound
	 * at once: whichever version the cache holds, the label stays. */
	for (int i = 0; i < 20; i++) {
		char name[32], label[32];
		snprintf(name, sizeof name, "p%d", i);
		snprintf(label, sizeof label, "v%d", i);
		create_pod(c, name, NULL);
		if (i % 2)
			pause_ms(50);
		rep = NULL;
		assert_int_equal(kb_api_patch(c, &KB_GVR_PODS, "default", name, NULL, "merge",
		    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "mark", label), &rep), 0);
		kb_msg_free(rep);
		rep = NULL;
		assert_int_equal(bind_call(c, name, "node-a", &rep), 0);
		kb_msg_free(rep);
		rep = NULL;
		assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", name, &rep), 0);
		const msgpack_object *pod = kb_msg_body(rep);
		assert_true(kb_mp_streq(pod, "spec.nodeName", "node-a"));
		assert_true(kb_mp_streq(pod, "metadata.labels.mark", label));
		assert_true(kbt_cond_true(pod, "PodScheduled"));
		assert_null(kb_mp_get(pod, "status.conditions[1]"));
		kb_msg_free(rep);
		/* bound already: the cache may not know yet, the store does */
		rep = NULL;
		char msg[96];
		snprintf(msg, sizeof msg, "pod %s is already assigned to node \"node-a\"", name);
		rc = bind_call(c, name, "node-b", &rep);
		expect_err(rc, rep, KB_ECONFLICT, msg);
	}
	/* Bindings racing label writes from another client: every write
	 * and the binding are in the end, whichever the cache held. */
	kb_ctx *c2 = kbt_client(h, "tester2", "plugin:tester2", groups, 3);
	assert_non_null(c2);
	for (int i = 0; i < 30; i++) {
		char name[32];
		snprintf(name, sizeof name, "race%d", i);
		create_pod(c, name, NULL);
		pause_ms(20);
		/* labels written while the pod is being bound: each one kept */
		struct labeler p = { c2, name, "mark", 5, 0 };
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, patch_labels, &p), 0);
		/* somewhere among the patches */
		struct timespec ts = { 0, (i % 10) * 150000L };
		nanosleep(&ts, NULL);
		rep = NULL;
		int rc = bind_call(c, name, "node-a", &rep);
		kb_msg_free(rep);
		pthread_join(t, NULL);
		assert_int_equal(rc, 0);
		assert_int_equal(p.failed, 0);
		rep = NULL;
		assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", name, &rep), 0);
		const msgpack_object *pod = kb_msg_body(rep);
		assert_true(kb_mp_streq(pod, "spec.nodeName", "node-a"));
		assert_true(kb_mp_streq(pod, "metadata.labels.mark", "v4"));
		assert_true(kbt_cond_true(pod, "PodScheduled"));
		kb_msg_free(rep);
	}
	/* A pod replaced under its name by one created bound: the cache's
	 * old unbound one must not be bound over it. */
	create_pod(c, "q", NULL);
	pause_ms(100);
	rep = NULL;
	assert_int_equal(kb_api_delete(c, &KB_GVR_PODS, "default", "q",
	    kb_mp_body("{s:i}", "gracePeriodSeconds", 0), &rep), 0);
	kb_msg_free(rep);
	create_pod(c, "q", "node-z");
	rep = NULL;
	rc = bind_call(c, "q", "node-b", &rep);
	expect_err(rc, rep, KB_ECONFLICT,
	    "pod q is already assigned to node \"node-z\"");
	/* gone: the store says so, whatever the cache holds */
	create_pod(c, "r", NULL);
	pause_ms(100);
	rep = NULL;
	assert_int_equal(kb_api_delete(c, &KB_GVR_PODS, "default", "r",
	    kb_mp_body("{s:i}", "gracePeriodSeconds", 0), &rep), 0);
	kb_msg_free(rep);
	rep = NULL;
	rc = bind_call(c, "r", "node-b", &rep);
	expect_err(rc, rep, KB_ENOTFOUND, "pods \"r\" not found");
	kbt_host_stop(h);
}

/* A pod's patches start from the cache's copy: a kubelet's status patch
 * right after the binding (the cache may not hold the bound pod yet, and
 * would refuse the node) succeeds; patches racing each other all land. */
static void test_patch_from_cache(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = bind_host(&c);
	static const char *const node_groups[] = { "system:nodes" };
	kb_ctx *kubelet = kbt_client(h, "kubelet-a", "node:node-a", node_groups, 1);
	assert_non_null(kubelet);
	kb_msg *rep = NULL;
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof name, "s%d", i);
		create_pod(c, name, NULL);
		if (i % 2)
			pause_ms(30);
		rep = NULL;
		assert_int_equal(bind_call(c, name, "node-a", &rep), 0);
		kb_msg_free(rep);
		rep = NULL;
		char what[96];
		snprintf(what, sizeof what, "status patch of %s", name);
		expect_ok(kb_api_patch(kubelet, &KB_GVR_PODS, "default", name, "status", "merge",
		    kb_mp_body("{s:{s:s}}", "status", "phase", "Running"), &rep), rep, what);
		kb_msg_free(rep);
		rep = NULL;
		assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", name, &rep), 0);
		const msgpack_object *pod = kb_msg_body(rep);
		assert_true(kb_mp_streq(pod, "spec.nodeName", "node-a"));
		assert_true(kb_mp_streq(pod, "status.phase", "Running"));
		assert_true(kbt_cond_true(pod, "PodScheduled"));
		kb_msg_free(rep);
	}
	/* a node may not patch a pod bound elsewhere, cache or not */
	create_pod(c, "other", "node-b");
	pause_ms(50);
	rep = NULL;
	int rc = kb_api_patch(kubelet, &KB_GVR_PODS, "default", "other", "status", "merge",
	    kb_mp_body("{s:{s:s}}", "status", "phase", "Running"), &rep);
	assert_int_equal(rc, KB_EFORBIDDEN);
	kb_msg_free(rep);
	/* two writers on one pod: every patch lands on the other's */
	kb_ctx *c2 = kbt_client(h, "tester2", "plugin:tester2", groups, 3);
	create_pod(c, "busy", NULL);
	pause_ms(50);
	struct labeler a = { c, "busy", "a", 10, 0 }, b = { c2, "busy", "b", 10, 0 };
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, patch_labels, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, patch_labels, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.failed + b.failed, 0);
	rep = NULL;
	assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", "busy", &rep), 0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "metadata.labels.a", "v9"));
	assert_true(kb_mp_streq(kb_msg_body(rep), "metadata.labels.b", "v9"));
	kb_msg_free(rep);
	/* Deletes from the cache's copy: with the resourceVersion a write
	 * just answered as precondition (the cache may be a version behind),
	 * by the pod's node right after its binding, and one whose
	 * precondition is wrong for the store too. */
	for (int i = 0; i < 10; i++) {
		char name[32], rv[32];
		snprintf(name, sizeof name, "d%d", i);
		create_pod(c, name, NULL);
		pause_ms(20);
		rep = NULL;
		assert_int_equal(kb_api_patch(c, &KB_GVR_PODS, "default", name, NULL, "merge",
		    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "x", "y"), &rep), 0);
		const char *s_rv;
		size_t n;
		assert_true(kb_mp_str(kb_msg_body(rep), "metadata.resourceVersion", &s_rv, &n));
		snprintf(rv, sizeof rv, "%.*s", (int)n, s_rv);
		kb_msg_free(rep);
		rep = NULL;
		rc = kb_api_delete(c, &KB_GVR_PODS, "default", name,
		    kb_mp_body("{s:i, s:{s:s}}", "gracePeriodSeconds", 0, "preconditions",
			"resourceVersion", rv), &rep);
		if (rc) {
			const char *m = "";
			if (rep)
				kb_msg_err(rep, &m);
			fail_msg("delete %s at %s: %s %s", name, rv, kb_strerror(rc), m);
		}
		kb_msg_free(rep);
		rep = NULL;
		assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", name, &rep), KB_ENOTFOUND);
		kb_msg_free(rep);
		/* bound, then deleted by its node: kept for its grace period */
		snprintf(name, sizeof name, "k%d", i);
		create_pod(c, name, NULL);
		rep = NULL;
		assert_int_equal(bind_call(c, name, "node-a", &rep), 0);
		kb_msg_free(rep);
		rep = NULL;
		assert_int_equal(kb_api_delete(kubelet, &KB_GVR_PODS, "default", name, NULL, &rep), 0);
		assert_non_null(kb_mp_get(kb_msg_body(rep), "metadata.deletionTimestamp"));
		/* the reply, as the put made it, is the object a get reads */
		kb_msg *got = NULL;
		assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", name, &got), 0);
		kb_body *rb = kb_msg_body_ref(rep), *gb = kb_msg_body_ref(got);
		size_t rl, gl;
		const void *rd = kb_body_data(rb, &rl), *gd = kb_body_data(gb, &gl);
		assert_int_equal(rl, gl);
		assert_memory_equal(rd, gd, rl);
		kb_body_unref(rb);
		kb_body_unref(gb);
		kb_msg_free(got);
		kb_msg_free(rep);
	}
	rep = NULL;
	rc = kb_api_delete(c, &KB_GVR_PODS, "default", "busy",
	    kb_mp_body("{s:{s:s}}", "preconditions", "uid", "nope"), &rep);
	assert_int_equal(rc, KB_ECONFLICT);
	const char *m = "";
	kb_msg_err(rep, &m);
	assert_non_null(strstr(m, "Precondition failed: UID in precondition: nope"));
	kb_msg_free(rep);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_version_not_last),
		cmocka_unit_test(test_cache_behind),
		cmocka_unit_test(test_patch_from_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
