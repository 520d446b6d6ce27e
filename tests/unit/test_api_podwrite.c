/* tests/unit/test_api_podwrite.c — pod writes made on the watch cache's
 * bytes (plugins/apiserver/podwrite.c) against the JSON path they stand
 * in for.
 *
 * A status merge patch made on the
 * watch cache's bytes (plugins/apiserver/podstatus.c) against the JSON
 * path it stands in for: for each patch, the bytes api_pod_status_mp_rv
 * makes of the pod as a get reads it are the bytes the JSON path stores
 * (api_patch on the decoded pod, then admitted and stored by a PUT of the
 * status, do_patch's write_over), and the bytes a patch over the `api`
 * service or through HTTP stores. The cases it leaves to the JSON path get
 * that path's answers: a type decoding refuses, another node's pod,
 * unknown fields dropped.
 *
 * A deletion: the pod kept with its deletionTimestamp, or deleted and
 * answered as it was, as the JSON path makes them (a deletion with a
 * resourceVersion precondition, which the fast path leaves to it) and
 * as a deletion over the bus makes them, for each grace period case.
 *
 * Against concurrent writers: status patches (the fast path) and label
 * patches (the JSON path) on one pod lose neither's last word, and a
 * deletion racing status patches leaves the pod deleting, not gone. A
 * pod's grace period as Kubernetes gives it: none for a pod no node runs,
 * so it goes with its last finalizer; a running one's stays until its
 * kubelet deletes it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <curl/curl.h>

#include "api.h"
#include "auth.h"
#include "harness.h"
#include <kubus/client.h>
#include "podwrite.h"

#include "api_bind_util.h"
#include "api_http_util.h"

struct fixture {
	struct kbt_host *h;
	kb_ctx *c, *kubelet;
	CURL *curl;
	int port;
	char token[128];
	const struct api_resource *pods;
};

static struct fixture fx;

/* PATCH (a merge patch) or PUT pods/NAME/status over HTTP: the code,
 * the answer in *out (NULL when it is not one JSON write). */
static long http_write(const char *method, const char *name, const char *body, json_t **out)
{
	char url[256];
	snprintf(url, sizeof url,
	    "http://127.0.0.1:%d/api/v1/namespaces/default/pods/%s/status", fx.port, name);
	return http_json(fx.curl, method, url, fx.token,
	    strcmp(method, "PUT") ? "application/merge-patch+json" : "application/json", body, out);
}

/* A merge patch (JSON text) of pods/NAME/status over the bus. */
static int bus_patch(kb_ctx *c, const char *name, const char *patch, kb_msg **rep)
{
	json_t *p = parse(patch);
	char *mp = NULL;
	size_t len = 0;
	assert_int_equal(api_mp_encode(p, &mp, &len), 0);
	json_decref(p);
	return kb_api_patch(c, &KB_GVR_PODS, "default", name, "status", "merge",
	    kb_body_take(mp, len), rep);
}

/* The pod's bytes as a get over the bus reads them (resourceVersion last
 * in metadata), once its version is at least `rev`. */
static kb_msg *get_at(const char *name, int64_t rev, const char **data, size_t *len)
{
	for (int i = 0; i < 200; i++) {
		kb_msg *rep = NULL;
		expect_ok(kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &rep), rep, "get");
		const char *rv = NULL;
		size_t n = 0;
		const msgpack_object *o = kb_mp_get(kb_msg_body(rep), "metadata.resourceVersion");
		char buf[32] = "";
		if (o && o->type == MSGPACK_OBJECT_STR && (n = o->via.str.size) < sizeof buf) {
			rv = o->via.str.ptr;
			memcpy(buf, rv, n);
		}
		if (strtoll(buf, NULL, 10) >= rev) {
			kb_body *b = kb_msg_body_ref(rep);
			*data = kb_body_data(b, len);
			kb_body_unref(b); /* rep keeps it */
			return rep;
		}
		kb_msg_free(rep);
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
	}
	fail_msg("%s never reached version %lld", name, (long long)rev);
	return NULL;
}

static int64_t rev_of_json(const json_t *obj)
{
	return strtoll(api_get_str(obj, "metadata.resourceVersion") ?: "0", NULL, 10);
}

static int64_t rev_of_mp(const msgpack_object *obj)
{
	const msgpack_object *o = kb_mp_get(obj, "metadata.resourceVersion");
	char buf[32] = "";
	if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < sizeof buf)
		memcpy(buf, o->via.str.ptr, o->via.str.size);
	return strtoll(buf, NULL, 10);
}

/* The fast path's bytes for this pod and patch, which must be made. */
static char *fast(const char *name, const char *patch, int64_t at, int64_t *rev, size_t *len)
{
	const char *data;
	size_t dlen;
	kb_msg *cur = get_at(name, at, &data, &dlen);
	*rev = rev_of_mp(kb_msg_body(cur));
	json_t *p = parse(patch);
	char *out = NULL;
	/* an exact-size copy, so ASan sees a read past the end */
	char *exact = malloc(dlen);
	memcpy(exact, data, dlen);
	enum api_pstat r = api_pod_status_mp_rv(fx.pods, exact, dlen, p, NULL, &out, len);
	if (r != API_PSTAT_OK)
		fail_msg("%s: the fast path left %s to JSON (%d)", name, patch, (int)r);
	/* the patch, which it may have decoded in part, makes the same
	 * again (a write that meets a conflict is made again from it) */
	char *again = NULL;
	size_t alen = 0;
	r = api_pod_status_mp_rv(fx.pods, exact, dlen, p, NULL, &again, &alen);
	if (r != API_PSTAT_OK || alen != *len || memcmp(again, out, alen))
		fail_msg("%s: %s made again made %d, other bytes", name, patch, (int)r);
	free(again);
	free(exact);
	json_decref(p);
	kb_msg_free(cur);
	return out;
}

/* The stored bytes at version rev are `want` (no resourceVersion). */
static void expect_stored(const char *name, int64_t rev, const char *want, size_t wlen,
    const char *what)
{
	const char *data;
	size_t len;
	kb_msg *got = get_at(name, rev, &data, &len);
	char *with = NULL;
	size_t wl = 0;
	assert_int_equal(api_mp_with_rv(want, wlen, rev, &with, &wl), 0);
	if (len != wl || memcmp(data, with, len)) {
		json_t *g = api_mp_decode(data, len), *w = api_mp_decode(with, wl);
		char *gs = json_dumps(g, JSON_COMPACT), *ws = json_dumps(w, JSON_COMPACT);
		fail_msg("%s: %s\n got  %s\n want %s", what, name, gs, ws);
	}
	free(with);
	kb_msg_free(got);
}

static void create_pod(const char *name, const char *node)
{
	kb_msg *rep = NULL;
	kb_body *b = kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:[{s:s, s:s, s:{s:{s:s}}}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "labels", "app", "x",
	    "spec", "nodeName", node, "containers", "name", "c", "image", "busybox:1.36",
	    "resources", "limits", "cpu", "250m");
	expect_ok(kb_api_create(fx.c, &KB_GVR_PODS, "default", b, &rep), rep, "create");
	kb_msg_free(rep);
}

/* The patches, in order, each on what the ones before left. */
static const char *const patches[] = {
	/* a kubelet's first: everything new */
	"{\"status\":{\"phase\":\"Running\",\"hostIP\":\"10.0.0.1\",\"hostIPs\":[{\"ip\":\"10.0.0.1\"}],"
	"\"podIP\":\"10.244.0.5\",\"podIPs\":[{\"ip\":\"10.244.0.5\"}],\"startTime\":\"2026-11-29T03:00:00Z\","
	"\"conditions\":[{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,"
	"\"lastTransitionTime\":\"2026-11-29T03:00:00Z\"},{\"type\":\"Ready\",\"status\":\"True\","
	"\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-29T03:00:01Z\"},{\"type\":"
	"\"ContainersReady\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":"
	"\"2026-11-29T03:00:01Z\"},{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,"
	"\"lastTransitionTime\":\"2026-11-29T02:59:59Z\"}],\"containerStatuses\":[{\"name\":\"c\","
	"\"state\":{\"running\":{\"startedAt\":\"2026-11-29T03:00:00Z\"}},\"lastState\":{},\"ready\":true,"
	"\"restartCount\":0,\"image\":\"busybox:1.36\",\"imageID\":\"sha256:abc\",\"containerID\":"
	"\"runc://0123\",\"started\":true,\"allocatedResources\":{\"cpu\":\"0.25\",\"memory\":\"1Gi\"}}],"
	"\"qosClass\":\"Burstable\"}}",
	/* keys set in place and appended, in another order than the pod's;
	 * an empty time (decoding drops it: the old one goes) and an empty
	 * optional string; quantities and times in a list written back */
	"{\"status\":{\"message\":\"m\",\"startTime\":\"\",\"containerStatuses\":[{\"name\":\"c\","
	"\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\",\"message\":\"back-off\"}},"
	"\"lastState\":{\"terminated\":{\"exitCode\":1,\"reason\":\"Error\",\"startedAt\":"
	"\"2026-11-29T03:00:00Z\",\"finishedAt\":\"2026-11-29T04:00:05.25+01:00\",\"containerID\":"
	"\"runc://0123\"}},\"ready\":false,\"restartCount\":1,\"image\":\"busybox:1.36\","
	"\"imageID\":\"sha256:abc\",\"started\":false,\"allocatedResources\":{\"cpu\":\"1.5\","
	"\"memory\":\"0.5Gi\"}}],\"hostIP\":\"10.0.0.2\",\"nominatedNodeName\":\"\"}}",
	/* nested maps merged, keys deleted, a list replaced, new keys; times
	 * that decoding writes back otherwise (an empty one is unset) */
	"{\"status\":{\"podIP\":null,\"podIPs\":null,\"message\":\"moved\",\"reason\":\"Evicted\","
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"PodFailed\"}],"
	"\"nominatedNodeName\":null,\"containerStatuses\":[{\"name\":\"c\",\"state\":{\"terminated\":"
	"{\"exitCode\":137,\"reason\":\"Error\",\"startedAt\":\"\",\"finishedAt\":\"2026-11-29T04:01:00.5+01:00\"}},"
	"\"ready\":false,\"restartCount\":1,\"image\":\"busybox:1.36\",\"imageID\":\"\"}]}}",
	/* an empty patch of the status; then one that empties it */
	"{\"status\":{}}",
	"{\"status\":{\"phase\":null,\"hostIP\":null,\"hostIPs\":null,\"startTime\":null,\"conditions\":null,"
	"\"containerStatuses\":null,\"message\":null,\"reason\":null}}",
	/* an empty time where there is none; a key set again */
	"{\"status\":{\"startTime\":\"\",\"phase\":\"Running\",\"qosClass\":\"BestEffort\"}}",
	/* text past 255 bytes and outside ASCII */
	"{\"status\":{\"phase\":\"Pending\",\"message\":\"h\\u00e9llo \\u4e16\\u754c "
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
};

/* The JSON path's object for a merge patch of the pod's status, made
 * with what do_patch makes it with (api_patch on the decoded pod) and
 * written as a PUT of pods/NAME/status, which admits and stores it as
 * do_patch's JSON path does (write_over): its new version. */
static int64_t json_path(const char *name, const char *patch, int64_t at)
{
	const char *data;
	size_t len;
	kb_msg *cur = get_at(name, at, &data, &len);
	json_t *old = api_mp_decode(data, len), *p = parse(patch);
	struct api_error e = { 0 };
	json_t *obj = api_patch(API_PATCH_MERGE, fx.pods, old, p, &e);
	assert_non_null(obj);
	char *text = json_dumps(obj, JSON_COMPACT);
	json_t *ans = NULL;
	long code = http_write("PUT", name, text, &ans);
	if (code != 200)
		fail_msg("PUT %s: %ld", name, code);
	int64_t rev = rev_of_json(ans);
	assert_true(rev > rev_of_mp(kb_msg_body(cur)));
	free(text);
	json_decref(ans);
	json_decref(obj);
	json_decref(p);
	json_decref(old);
	kb_msg_free(cur);
	return rev;
}

/* A patch made by the JSON path on pod j, over the bus on b and through
 * HTTP's PATCH on h: each stores what the fast path makes of its pod
 * before (*jrev, *brev, *hrev: the versions each is at). */
static void same_bytes(size_t i, const char *patch, int64_t *jrev, int64_t *brev, int64_t *hrev)
{
	char what[64];
	int64_t rev;
	size_t len;
	char *want = fast("j", patch, *jrev, &rev, &len);
	*jrev = json_path("j", patch, rev);
	snprintf(what, sizeof what, "patch %zu by the JSON path", i);
	expect_stored("j", *jrev, want, len, what);
	free(want);
	/* the bus: the fast path, answering with what it stored */
	want = fast("b", patch, *brev, &rev, &len);
	kb_msg *rep = NULL;
	snprintf(what, sizeof what, "patch %zu over the bus", i);
	expect_ok(bus_patch(fx.kubelet, "b", patch, &rep), rep, what);
	*brev = rev_of_mp(kb_msg_body(rep));
	assert_true(*brev > rev);
	char *with = NULL;
	size_t wl = 0, al = 0;
	kb_body *ab = kb_msg_body_ref(rep);
	const void *ad = kb_body_data(ab, &al);
	assert_int_equal(api_mp_with_rv(want, len, *brev, &with, &wl), 0);
	assert_int_equal(al, wl);
	assert_memory_equal(ad, with, wl);
	kb_body_unref(ab);
	kb_msg_free(rep);
	free(with);
	expect_stored("b", *brev, want, len, what);
	free(want);
	/* HTTP's PATCH */
	want = fast("h", patch, *hrev, &rev, &len);
	json_t *ans = NULL;
	long code = http_write("PATCH", "h", patch, &ans);
	if (code != 200)
		fail_msg("patch %zu over HTTP: %ld", i, code);
	*hrev = rev_of_json(ans);
	assert_true(*hrev > rev);
	snprintf(what, sizeof what, "patch %zu over HTTP", i);
	expect_stored("h", *hrev, want, len, what);
	json_decref(ans);
	free(want);
}

/* A kubelet's patches of a pod it is stopping (flat: the fast path
 * takes them while the pod is in its grace period). */
static const char *const stopping[] = {
	"{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
	"\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-29T05:00:00Z\",\"reason\":"
	"\"ContainersNotReady\",\"message\":\"containers with unready status: [c]\"}],"
	"\"containerStatuses\":[{\"name\":\"c\",\"state\":{\"terminated\":{\"exitCode\":0,"
	"\"reason\":\"Completed\",\"startedAt\":\"2026-11-29T03:00:00Z\",\"finishedAt\":"
	"\"2026-11-29T05:00:00Z\",\"containerID\":\"runc://0123\"}},\"lastState\":{},\"ready\":false,"
	"\"restartCount\":0,\"image\":\"busybox:1.36\",\"imageID\":\"sha256:abc\",\"started\":false}]}}",
	"{\"status\":{\"phase\":\"Succeeded\"}}",
};

/* Each patch on three pods, one way each; then, the pods deleted (their
 * grace period begun), a kubelet's patches of a stopping pod. */
static void test_same_bytes(void **state)
{
	(void)state;
	create_pod("j", "node-a");
	create_pod("b", "node-a");
	create_pod("h", "node-a");
	int64_t jrev = 0, brev = 0, hrev = 0;
	for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++)
		same_bytes(i, patches[i], &jrev, &brev, &hrev);
	const char *names[] = { "j", "b", "h" };
	int64_t *revs[] = { &jrev, &brev, &hrev };
	for (int i = 0; i < 3; i++) {
		kb_msg *rep = NULL;
		expect_ok(kb_api_delete(fx.c, &KB_GVR_PODS, "default", names[i], NULL, &rep), rep,
		    "graceful delete");
		*revs[i] = rev_of_mp(kb_msg_body(rep));
		int64_t grace = 0;
		if (!kb_mp_get(kb_msg_body(rep), "metadata.deletionTimestamp") ||
		    !kb_mp_int(kb_msg_body(rep), "metadata.deletionGracePeriodSeconds", &grace) ||
		    grace <= 0)
			fail_msg("%s: not in a grace period", names[i]);
		kb_msg_free(rep);
	}
	for (size_t i = 0; i < sizeof stopping / sizeof stopping[0]; i++)
		same_bytes(100 + i, stopping[i], &jrev, &brev, &hrev);
}

/* The fast path's answer for a pod of this shape and a patch. */
static enum api_pstat fast_of(const char *pod, const char *patch, const char *node)
{
	json_t *p = parse(pod), *pt = parse(patch);
	char *mp = NULL, *with = NULL, *out = NULL;
	size_t len = 0, wl = 0, outlen = 0;
	assert_int_equal(api_mp_encode(p, &mp, &len), 0);
	assert_int_equal(api_mp_with_rv(mp, len, 7, &with, &wl), 0);
	enum api_pstat r = api_pod_status_mp_rv(fx.pods, with, wl, pt, node, &out, &outlen);
	if (r == API_PSTAT_OK) {
		json_t *o = api_mp_decode(out, outlen);
		assert_non_null(o);
		assert_null(api_get(o, "metadata.resourceVersion"));
		json_decref(o);
	} else {
		assert_null(out);
	}
	free(out);
	free(with);
	free(mp);
	json_decref(p);
	json_decref(pt);
	return r;
}

#define POD "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":\"node-a\"}"

/* What the fast path leaves to the JSON path, and that path's answers. */
static void test_left_to_json(void **state)
{
	(void)state;
	static const struct {
		const char *pod, *patch, *node;
		enum api_pstat want;
	} cases[] = {
		{ POD "}", "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_OK },
		{ POD "}", "{\"status\":{\"phase\":\"Running\"}}", "node-a", API_PSTAT_OK },
		{ POD ",\"status\":{\"phase\":\"Pending\"}}", "{\"status\":{\"phase\":null}}", NULL,
		    API_PSTAT_OK },
		/* another node's pod: the JSON path's 403 */
		{ POD "}", "{\"status\":{\"phase\":\"Running\"}}", "node-b", API_PSTAT_JSON },
		/* not a status alone */
		{ POD "}", "{\"status\":null}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"status\":[]}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"status\":{}}", NULL, API_PSTAT_JSON },
		{ POD "}", "[]", NULL, API_PSTAT_JSON },
		/* unknown fields, a type decoding refuses */
		{ POD "}", "{\"status\":{\"bogus\":1}}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"status\":{\"phase\":5}}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"status\":{\"conditions\":{}}}", NULL, API_PSTAT_JSON },
		/* a pod being deleted, a status that is no map, no kind */
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
		  "\"deletionTimestamp\":\"2026-11-29T03:00:00Z\"}}",
		    "{\"status\":{}}", NULL, API_PSTAT_JSON },
		{ POD ",\"status\":7}", "{\"status\":{}}", NULL, API_PSTAT_JSON },
		{ "{\"metadata\":{\"name\":\"p\"}}", "{\"status\":{}}", NULL, API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v2\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}",
		    "{\"status\":{}}", NULL, API_PSTAT_JSON },
		/* the same with a status, read from the bytes for a flat patch */
		{ POD ",\"status\":{\"phase\":\"Pending\"}}", "{\"status\":{\"phase\":\"Running\"}}",
		    "node-a", API_PSTAT_OK },
		{ POD ",\"status\":{\"phase\":\"Pending\"}}", "{\"status\":{\"phase\":\"Running\"}}",
		    "node-b", API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", "node-a", API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
		  "\"deletionTimestamp\":\"2026-11-29T03:00:00Z\"},\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v2\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pods\",\"metadata\":{\"name\":\"p\"},\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v1\",\"kind\":5,\"metadata\":{\"name\":\"p\"},\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_JSON },
		{ POD ",\"status\":[]}", "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_JSON },
		/* deleting: in its grace period a flat patch is taken; with none
		 * left (the write may finish it) or a patch that is not flat,
		 * not */
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
		  "\"deletionTimestamp\":\"2026-11-29T03:00:00Z\",\"deletionGracePeriodSeconds\":30},"
		  "\"spec\":{\"nodeName\":\"node-a\"},\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", "node-a", API_PSTAT_OK },
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
		  "\"deletionTimestamp\":\"2026-11-29T03:00:00Z\",\"deletionGracePeriodSeconds\":0},"
		  "\"status\":{}}",
		    "{\"status\":{\"phase\":\"Running\"}}", NULL, API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
		  "\"deletionTimestamp\":\"2026-11-29T03:00:00Z\",\"deletionGracePeriodSeconds\":30},"
		  "\"status\":{}}",
		    "{\"status\":{\"phase\":null}}", NULL, API_PSTAT_JSON },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum api_pstat r = fast_of(cases[i].pod, cases[i].patch, cases[i].node);
		if (r != cases[i].want)
			fail_msg("case %zu: %d, want %d", i, (int)r, (int)cases[i].want);
	}
	/* a flat patch that decoding refuses is left as it came (its nulls
	 * and quantities too), for the JSON path's answer */
	{
		const char *bad = "{\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":"
				  "\"c\",\"imageID\":null,\"allocatedResources\":{\"cpu\":\"0.5\"}}],"
				  "\"conditions\":[{\"type\":\"Ready\",\"lastProbeTime\":null,\"status\":5}]}}";
		json_t *pod = parse(POD ",\"status\":{}}"), *pt = parse(bad), *orig = parse(bad);
		char *mp = NULL, *with = NULL, *o = NULL;
		size_t ml = 0, wl = 0, ol = 0;
		assert_int_equal(api_mp_encode(pod, &mp, &ml), 0);
		assert_int_equal(api_mp_with_rv(mp, ml, 7, &with, &wl), 0);
		assert_int_equal(api_pod_status_mp_rv(fx.pods, with, wl, pt, NULL, &o, &ol),
		    API_PSTAT_JSON);
		assert_true(json_equal(pt, orig));
		free(mp);
		free(with);
		json_decref(pod);
		json_decref(pt);
		json_decref(orig);
	}
	/* bytes without a version last in metadata, or that do not unpack */
	char *out = NULL;
	size_t outlen = 0;
	json_t *st = parse("{\"status\":{}}");
	assert_int_equal(api_pod_status_mp_rv(fx.pods, "\x81\xa1", 2, st, NULL, &out, &outlen),
	    API_PSTAT_JSON);
	json_t *p = parse(POD "}");
	char *mp;
	size_t len;
	assert_int_equal(api_mp_encode(p, &mp, &len), 0);
	assert_int_equal(api_pod_status_mp_rv(fx.pods, mp, len, st, NULL, &out, &outlen),
	    API_PSTAT_JSON);
	free(mp);
	json_decref(p);
	json_decref(st);

	/* over the bus, each answered as the JSON path answers it */
	create_pod("x", "node-b");
	kb_msg *rep = NULL;
	const char *data;
	size_t dlen;
	kb_msg *before = get_at("x", 0, &data, &dlen);
	int64_t rev = rev_of_mp(kb_msg_body(before));
	assert_int_equal(bus_patch(fx.kubelet, "x", "{\"status\":{\"phase\":\"Running\"}}", &rep),
	    KB_EFORBIDDEN);
	kb_msg_free(rep);
	rep = NULL;
	assert_int_not_equal(bus_patch(fx.c, "x", "{\"status\":{\"phase\":5}}", &rep), 0);
	kb_msg_free(rep);
	/* nothing changed */
	rep = NULL;
	expect_ok(kb_api_get(fx.c, &KB_GVR_PODS, "default", "x", &rep), rep, "get x");
	assert_int_equal(rev_of_mp(kb_msg_body(rep)), rev);
	kb_msg_free(rep);
	kb_msg_free(before);
	/* unknown fields dropped, metadata left alone */
	rep = NULL;
	expect_ok(bus_patch(fx.c, "x",
		      "{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"status\":{\"phase\":\"Running\",\"bogus\":1}}",
		      &rep),
	    rep, "patch x");
	const msgpack_object *o = kb_msg_body(rep);
	assert_null(kb_mp_get(o, "status.bogus"));
	assert_null(kb_mp_get(o, "metadata.labels.a"));
	const msgpack_object *ph = kb_mp_get(o, "status.phase");
	assert_non_null(ph);
	assert_int_equal(ph->via.str.size, 7);
	assert_memory_equal(ph->via.str.ptr, "Running", 7);
	kb_msg_free(rep);
}

/* --- deletion ---------------------------------------------------------------------- */

/* A pod from JSON text, created over the bus; then its status, if given,
 * patched in. */
static void create_meta(const char *name, const char *meta, const char *spec,
    const char *status)
{
	char text[1024];
	snprintf(text, sizeof text,
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"%s},\"spec\":%s}", name,
	    meta, spec);
	json_t *p = parse(text);
	char *mp = NULL;
	size_t len = 0;
	assert_int_equal(api_mp_encode(p, &mp, &len), 0);
	json_decref(p);
	kb_msg *rep = NULL;
	expect_ok(kb_api_create(fx.c, &KB_GVR_PODS, "default", kb_body_take(mp, len), &rep), rep,
	    name);
	kb_msg_free(rep);
	if (status == NULL)
		return;
	snprintf(text, sizeof text, "{\"status\":%s}", status);
	rep = NULL;
	expect_ok(bus_patch(fx.c, name, text, &rep), rep, "status");
	kb_msg_free(rep);
}

static void create_json(const char *name, const char *spec, const char *status)
{
	create_meta(name, "", spec, status);
}

static void str_at(const msgpack_object *o, const char *path, char *buf, size_t len)
{
	const msgpack_object *v = kb_mp_get(o, path);
	buf[0] = '\0';
	if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size < len) {
		memcpy(buf, v->via.str.ptr, v->via.str.size);
		buf[v->via.str.size] = '\0';
	}
}

/* Delete the pod with options (JSON text, NULL: none) by c; with
 * rv_pre, with a resourceVersion precondition of the version read (the
 * JSON path's). Then what the fast path makes of the version read, at
 * the deletion's time, is what the deletion answered and left. Returns
 * whether the pod stayed. */
static bool delete_as(kb_ctx *c, const char *name, const char *opts, bool rv_pre, bool want_keep)
{
	const char *data;
	size_t dlen;
	kb_msg *cur = get_at(name, 0, &data, &dlen);
	char rv[32], what[400];
	str_at(kb_msg_body(cur), "metadata.resourceVersion", rv, sizeof rv);
	json_t *o = opts ? parse(opts) : NULL;
	kb_body *body = NULL;
	if (o || rv_pre) {
		json_t *send = o ? json_deep_copy(o) : json_object();
		if (rv_pre) {
			json_t *pre = json_object_get(send, "preconditions");
			if (!json_is_object(pre))
				json_object_set_new(send, "preconditions", pre = json_object());
			json_object_set_new(pre, "resourceVersion", json_string(rv));
		}
		char *mp = NULL;
		size_t len = 0;
		assert_int_equal(api_mp_encode(send, &mp, &len), 0);
		json_decref(send);
		body = kb_body_take(mp, len);
	}
	kb_msg *rep = NULL;
	snprintf(what, sizeof what, "delete %s %s%s", name, opts ? opts : "", rv_pre ? " (JSON)" : "");
	expect_ok(kb_api_delete(c, &KB_GVR_PODS, "default", name, body, &rep), rep, what);
	char now[64];
	str_at(kb_msg_body(rep), "metadata.deletionTimestamp", now, sizeof now);
	char *put = NULL, *ans = NULL;
	size_t putlen = 0, anslen = 0;
	bool keep = !want_keep;
	char *exact = malloc(dlen);
	memcpy(exact, data, dlen);
	const char *node = c == fx.kubelet ? "node-a" : NULL;
	enum api_pstat r = api_pod_delete_mp_rv(exact, dlen, o, node, now, &keep, &put, &putlen,
	    &ans, &anslen);
	free(exact);
	if (r != API_PSTAT_OK)
		fail_msg("%s: the fast path left it to JSON (%d)", what, (int)r);
	if (keep != want_keep)
		fail_msg("%s: keep %d, want %d", what, keep, want_keep);
	kb_body *rb = kb_msg_body_ref(rep);
	size_t rlen = 0;
	const char *rdata = kb_body_data(rb, &rlen);
	if (keep) {
		assert_null(ans);
		int64_t nrev = rev_of_mp(kb_msg_body(rep));
		char *with = NULL;
		size_t wl = 0;
		assert_int_equal(api_mp_with_rv(put, putlen, nrev, &with, &wl), 0);
		assert_int_equal(rlen, wl);
		assert_memory_equal(rdata, with, wl);
		free(with);
		expect_stored(name, nrev, put, putlen, what);
	} else {
		assert_null(put);
		if (rlen != anslen || memcmp(rdata, ans, anslen)) {
			json_t *g = api_mp_decode(rdata, rlen), *w = api_mp_decode(ans, anslen);
			fail_msg("%s: answered\n %s\n want %s", what, json_dumps(g, JSON_COMPACT),
			    json_dumps(w, JSON_COMPACT));
		}
		kb_msg *gone = NULL;
		assert_int_equal(kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &gone), KB_ENOTFOUND);
		kb_msg_free(gone);
	}
	kb_body_unref(rb);
	free(put);
	free(ans);
	json_decref(o);
	kb_msg_free(rep);
	kb_msg_free(cur);
	return keep;
}

#define BOUND "{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}"
#define UNBOUND "{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}"
#define NOGRACE "{\"nodeName\":\"node-a\",\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}"
#define RUNNING "{\"phase\":\"Running\"}"

/* Each case on two pods alike: d<i>j by the JSON path, d<i>b over the bus. */
static void test_delete_same_bytes(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *status;
		struct {
			const char *opts;
			bool by_node, keep;
		} steps[4];
	} cases[] = {
		/* a controller's deletion, then its kubelet's at the end of the grace period */
		{ BOUND, RUNNING, { { NULL, false, true }, { "{\"gracePeriodSeconds\":0}", true, false } } },
		/* not bound, or done: deleted at once */
		{ UNBOUND, NULL, { { NULL, false, false } } },
		{ BOUND, "{\"phase\":\"Succeeded\"}", { { NULL, false, false } } },
		{ NOGRACE, RUNNING, { { NULL, false, false } } },
		/* a grace period shortened, not lengthened; options kubectl sends */
		{ BOUND, RUNNING,
		    { { "{\"gracePeriodSeconds\":5,\"propagationPolicy\":\"Background\"}", false, true },
			{ "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"gracePeriodSeconds\":10}", false,
			    true },
			{ "{\"gracePeriodSeconds\":2,\"orphanDependents\":false}", false, true },
			{ "{\"gracePeriodSeconds\":0}", true, false } } },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (int path = 0; path < 2; path++) {
			char name[16];
			snprintf(name, sizeof name, "d%zu%c", i, path ? 'b' : 'j');
			create_json(name, cases[i].spec, cases[i].status);
			for (int s = 0; s < 4 && (s == 0 || cases[i].steps[s].opts); s++) {
				kb_ctx *c = cases[i].steps[s].by_node ? fx.kubelet : fx.c;
				char opts[256];
				const char *o = cases[i].steps[s].opts;
				/* a kubelet names the uid it deletes, as terminate.c does */
				if (cases[i].steps[s].by_node) {
					const char *data;
					size_t dl;
					char uid[64];
					kb_msg *cur = get_at(name, 0, &data, &dl);
					str_at(kb_msg_body(cur), "metadata.uid", uid, sizeof uid);
					kb_msg_free(cur);
					snprintf(opts, sizeof opts,
					    "{\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"%s\"}}", uid);
					o = opts;
				}
				delete_as(c, name, o, path == 0, cases[i].steps[s].keep);
			}
		}
	}
}

/* What the fast path leaves to the JSON path, and that path's answers. */
static void test_delete_left_to_json(void **state)
{
	(void)state;
	static const struct {
		const char *pod, *opts, *node;
		enum api_pstat want;
	} cases[] = {
		{ POD "}", NULL, NULL, API_PSTAT_OK },
		{ POD "}", "{\"preconditions\":{\"uid\":\"u1\"}}", "node-a", API_PSTAT_OK },
		{ POD ",\"status\":{\"phase\":5}}", NULL, NULL, API_PSTAT_OK },
		{ POD "}", "{\"propagationPolicy\":\"Foreground\"}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"propagationPolicy\":\"Orphan\"}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"orphanDependents\":true}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"preconditions\":{\"resourceVersion\":\"7\"}}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"preconditions\":{\"uid\":\"u2\"}}", NULL, API_PSTAT_JSON },
		{ POD "}", "{\"dryRun\":[\"All\"]}", NULL, API_PSTAT_JSON },
		{ POD "}", "[]", NULL, API_PSTAT_JSON },
		{ POD "}", NULL, "node-b", API_PSTAT_JSON },
		{ "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"finalizers\":[]}}", NULL,
		    NULL, API_PSTAT_JSON },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *p = parse(cases[i].pod), *o = cases[i].opts ? parse(cases[i].opts) : NULL;
		/* the uid the preconditions name */
		api_set(p, "metadata.uid", json_string("u1"));
		char *mp = NULL, *with = NULL, *put = NULL, *ans = NULL;
		size_t len = 0, wl = 0, putlen = 0, anslen = 0;
		bool keep;
		assert_int_equal(api_mp_encode(p, &mp, &len), 0);
		assert_int_equal(api_mp_with_rv(mp, len, 7, &with, &wl), 0);
		enum api_pstat r = api_pod_delete_mp_rv(with, wl, o, cases[i].node,
		    "2026-11-29T03:00:00Z", &keep, &put, &putlen, &ans, &anslen);
		if (r != cases[i].want)
			fail_msg("case %zu: %d, want %d", i, (int)r, (int)cases[i].want);
		if (r == API_PSTAT_JSON) {
			assert_null(put);
			assert_null(ans);
		} else {
			assert_true(keep ? put != NULL : ans != NULL);
		}
		free(put);
		free(ans);
		free(mp);
		free(with);
		json_decref(p);
		json_decref(o);
	}
	/* over the bus: another node's pod is refused and kept */
	create_json("dx", "{\"nodeName\":\"node-b\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}",
	    NULL);
	kb_msg *rep = NULL;
	assert_int_equal(kb_api_delete(fx.kubelet, &KB_GVR_PODS, "default", "dx", NULL, &rep),
	    KB_EFORBIDDEN);
	kb_msg_free(rep);
	rep = NULL;
	expect_ok(kb_api_get(fx.c, &KB_GVR_PODS, "default", "dx", &rep), rep, "get dx");
	assert_null(kb_mp_get(kb_msg_body(rep), "metadata.deletionTimestamp"));
	kb_msg_free(rep);
	/* a stale uid: the JSON path's Conflict */
	rep = NULL;
	assert_int_equal(kb_api_delete(fx.c, &KB_GVR_PODS, "default", "dx",
			     kb_mp_body("{s:{s:s}}", "preconditions", "uid", "not-its-uid"), &rep),
	    KB_ECONFLICT);
	kb_msg_free(rep);
}

/* --- against concurrent writers ---------------------------------------------------- */

struct writer {
	kb_ctx *c;
	const char *name;
	bool status; /* status patches (the fast path), else label patches */
	int n, failed;
	char err[300]; /* the first failure */
};

static void *write_many(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < w->n; i++) {
		char text[128];
		kb_msg *rep = NULL;
		int rc;
		if (w->status) {
			snprintf(text, sizeof text, "{\"status\":{\"message\":\"m%d\"}}", i);
			rc = bus_patch(w->c, w->name, text, &rep);
		} else {
			char v[16];
			snprintf(v, sizeof v, "v%d", i);
			rc = kb_api_patch(w->c, &KB_GVR_PODS, "default", w->name, NULL, "merge",
			    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "mark", v), &rep);
		}
		w->failed += rc != 0;
		if (rc && w->failed == 1) {
			const char *m = "";
			if (rep)
				kb_msg_err(rep, &m);
			snprintf(w->err, sizeof w->err, "%s %d: %s %s", w->status ? "status" : "label", i,
			    kb_strerror(rc), m);
		}
		kb_msg_free(rep);
	}
	return NULL;
}

static void expect_str(const msgpack_object *o, const char *path, const char *want)
{
	char got[64];
	str_at(o, path, got, sizeof got);
	if (strcmp(got, want))
		fail_msg("%s: \"%s\", want \"%s\"", path, got, want);
}

/* Status patches made on the cache's bytes while another client writes
 * the pod's labels: each write lands on the version it read or goes back
 * to be made again, so neither writer loses the other's last word. */
static void test_concurrent_writers(void **state)
{
	(void)state;
	kb_ctx *c2 = kbt_client(fx.h, "tester2", "plugin:tester2", groups, 3);
	assert_non_null(c2);
	for (int round = 0; round < 3; round++) {
		char name[16];
		snprintf(name, sizeof name, "cw%d", round);
		create_json(name, BOUND, RUNNING);
		struct writer st = { fx.kubelet, name, true, 40, 0, "" },
			      lb = { c2, name, false, 40, 0, "" };
		pthread_t a, b;
		assert_int_equal(pthread_create(&a, NULL, write_many, &st), 0);
		assert_int_equal(pthread_create(&b, NULL, write_many, &lb), 0);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		if (st.failed || lb.failed)
			fail_msg("%d status and %d label writes failed: %s%s", st.failed, lb.failed,
			    st.err, lb.err);
		kb_msg *rep = NULL;
		expect_ok(kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &rep), rep, name);
		expect_str(kb_msg_body(rep), "status.message", "m39");
		expect_str(kb_msg_body(rep), "status.phase", "Running");
		expect_str(kb_msg_body(rep), "metadata.labels.mark", "v39");
		kb_msg_free(rep);
		/* a deletion racing status patches: the pod ends deleting, with
		 * the patches' last status */
		st.n = 20;
		assert_int_equal(pthread_create(&a, NULL, write_many, &st), 0);
		rep = NULL;
		expect_ok(kb_api_delete(fx.c, &KB_GVR_PODS, "default", name, NULL, &rep), rep, "delete");
		kb_msg_free(rep);
		pthread_join(a, NULL);
		rep = NULL;
		expect_ok(kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &rep), rep, name);
		assert_non_null(kb_mp_get(kb_msg_body(rep), "metadata.deletionTimestamp"));
		expect_str(kb_msg_body(rep), "status.message", "m19");
		kb_msg_free(rep);
	}
}

/* Kubernetes' CheckGracefulDelete and shouldDeleteDuringUpdate: a pod
 * held by a finalizer and deleted while a node runs it keeps its grace
 * period when the finalizer goes (its kubelet deletes it); one no node
 * runs (unbound, or finished) has none, and goes with its last finalizer.
 * On both the JSON path (finalizers) and the fast path's refusals. */
static void test_finalizers_and_grace(void **state)
{
	(void)state;
	static const struct {
		const char *name, *spec, *status;
		bool stays;
		const char *grace;
	} cases[] = {
		{ "fb", BOUND, RUNNING, true, "30" },
		{ "fu", UNBOUND, NULL, false, "0" },
		{ "fs", BOUND, "{\"phase\":\"Succeeded\"}", false, "0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *name = cases[i].name;
		create_meta(name, ",\"finalizers\":[\"example.com/hold\"]", cases[i].spec, cases[i].status);
		kb_msg *rep = NULL;
		expect_ok(kb_api_delete(fx.c, &KB_GVR_PODS, "default", name, NULL, &rep), rep, name);
		const msgpack_object *g = kb_mp_get(kb_msg_body(rep), "metadata.deletionGracePeriodSeconds");
		char got[16] = "";
		if (g && g->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			snprintf(got, sizeof got, "%llu", (unsigned long long)g->via.u64);
		if (strcmp(got, cases[i].grace))
			fail_msg("%s: deletionGracePeriodSeconds %s, want %s", name, got, cases[i].grace);
		kb_msg_free(rep);
		/* the finalizer goes */
		rep = NULL;
		expect_ok(kb_api_patch(fx.c, &KB_GVR_PODS, "default", name, NULL, "merge",
			      kb_mp_body("{s:{s:n}}", "metadata", "finalizers"), &rep),
		    rep, name);
		kb_msg_free(rep);
		rep = NULL;
		int rc = kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &rep);
		kb_msg_free(rep);
		if (rc != (cases[i].stays ? 0 : KB_ENOTFOUND))
			fail_msg("%s: %s after its finalizer went", name, kb_strerror(rc));
		if (!cases[i].stays)
			continue;
		/* a status write in its grace period keeps it */
		rep = NULL;
		expect_ok(bus_patch(fx.kubelet, name, "{\"status\":{\"message\":\"stopping\"}}", &rep), rep,
		    name);
		kb_msg_free(rep);
		rep = NULL;
		expect_ok(kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &rep), rep, name);
		kb_msg_free(rep);
		/* its kubelet's deletion ends it */
		rep = NULL;
		expect_ok(kb_api_delete(fx.kubelet, &KB_GVR_PODS, "default", name,
			      kb_mp_body("{s:i}", "gracePeriodSeconds", 0), &rep),
		    rep, name);
		kb_msg_free(rep);
		rep = NULL;
		assert_int_equal(kb_api_get(fx.c, &KB_GVR_PODS, "default", name, &rep), KB_ENOTFOUND);
		kb_msg_free(rep);
	}
}

int main(void)
{
	static const char *const node_groups[] = { "system:nodes" };
	if ((fx.h = http_host(&fx.port, fx.token)) == NULL)
		return 1;
	fx.c = kbt_client(fx.h, "tester", "plugin:tester", groups, 3);
	fx.kubelet = kbt_client(fx.h, "kubelet-a", "node:node-a", node_groups, 1);
	fx.pods = api_resource_find("", "v1", "pods");
	if (fx.c == NULL || fx.kubelet == NULL || fx.pods == NULL) {
		fprintf(stderr, "set-up: no client\n");
		return 1;
	}
	fx.curl = curl_easy_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_left_to_json),
		cmocka_unit_test(test_delete_same_bytes),
		cmocka_unit_test(test_delete_left_to_json),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_finalizers_and_grace),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_easy_cleanup(fx.curl);
	kbt_host_stop(fx.h);
	return rc;
}
