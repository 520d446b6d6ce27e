/* tests/unit/test_api_bind.c — pods/NAME/binding on the stored msgpack
 * bytes (plugins/apiserver/podbind.c, mpedit.c) against the JSON path it
 * replaced: the same bytes for every pod shape, the same refusals; then
 * the subresource through the `api` service on a real store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "harness.h"
#include <kubus/client.h>
#include "mpedit.h"
#include "podbind.h"

#include "api_bind_util.h"

#define NOW "2026-11-27T08:30:00Z"

/* The pod as stored: api_mp_encode of it, as api_store_put writes it. */
static void encode(const json_t *pod, char **mp, size_t *len)
{
	assert_int_equal(api_mp_encode(pod, mp, len), 0);
}

/* Both paths on one pod: the same result, and for OK the same bytes. */
static enum api_bind both(const char *text, const char *node)
{
	json_t *pod = parse(text);
	char *mp, *out = NULL, *want = NULL;
	size_t len, outlen = 0, wantlen = 0, curlen = 0;
	const char *cur = NULL, *jcur = NULL;
	encode(pod, &mp, &len);
	/* an exact-size copy, so ASan sees a read past the end */
	char *exact = malloc(len);
	memcpy(exact, mp, len);
	enum api_bind r = api_pod_bind_mp(exact, len, node, NOW, &out, &outlen, &cur, &curlen);
	json_t *old = api_mp_decode(mp, len);
	assert_non_null(old);
	enum api_bind jr = api_pod_bind_json(old, node, NOW, &jcur);
	if (r != API_BIND_JSON)
		assert_int_equal(r, jr);
	if (r == API_BIND_OK) {
		assert_int_equal(api_mp_encode(old, &want, &wantlen), 0);
		if (outlen != wantlen || memcmp(out, want, outlen)) {
			json_t *got = api_mp_decode(out, outlen);
			char *g = got ? json_dumps(got, JSON_COMPACT) : strdup("(undecodable)");
			char *w = json_dumps(old, JSON_COMPACT);
			fail_msg("bytes differ for %s\n got  %s\n want %s", text, g, w);
		}
	}
	if (r == API_BIND_ASSIGNED) {
		assert_int_equal(strlen(jcur), curlen);
		assert_memory_equal(jcur, cur, curlen);
	}
	free(out);
	free(want);
	free(mp);
	free(exact);
	json_decref(old);
	json_decref(pod);
	return r;
}

static void test_same_bytes(void **state)
{
	(void)state;
	static const char *const pods[] = {
		/* no status */
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"default\","
		"\"uid\":\"u1\",\"creationTimestamp\":\"2026-11-27T08:00:00Z\",\"labels\":{\"app\":\"x\"}},"
		"\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"resources\":{\"requests\":"
		"{\"cpu\":\"100m\",\"memory\":\"500Mi\"}},\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}]}],"
		"\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"schedulerName\":\"default-scheduler\","
		"\"priority\":0,\"enableServiceLinks\":true}}",
		/* status without conditions */
		"{\"metadata\":{\"name\":\"b\"},\"spec\":{\"containers\":[]},\"status\":{\"phase\":\"Pending\","
		"\"qosClass\":\"Burstable\"}}",
		/* an old PodScheduled (False, with a reason) among others */
		"{\"metadata\":{\"name\":\"c\"},\"spec\":{\"nodeName\":\"\",\"containers\":[]},\"status\":{\"phase\":"
		"\"Pending\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},{\"type\":\"PodScheduled\","
		"\"status\":\"False\",\"reason\":\"Unschedulable\",\"message\":\"0/3 nodes are available\","
		"\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-27T08:00:00Z\"},{\"type\":\"Initialized\","
		"\"status\":\"True\"}]}}",
		/* other conditions only; two PodScheduled; elements that are not maps */
		"{\"metadata\":{\"name\":\"d\"},\"spec\":{},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
		"\"True\"}]}}",
		"{\"metadata\":{\"name\":\"e\"},\"spec\":{},\"status\":{\"conditions\":[{\"type\":\"PodScheduled\"},"
		"7,\"x\",{\"status\":\"True\"},{\"type\":5},{\"type\":\"PodScheduled\",\"status\":\"False\"}]}}",
		/* conditions that are not an array; empty conditions; no spec; nothing */
		"{\"metadata\":{\"name\":\"f\"},\"spec\":{\"containers\":[]},\"status\":{\"conditions\":null,\"phase\":\"Pending\"}}",
		"{\"metadata\":{\"name\":\"f2\"},\"spec\":{},\"status\":{\"conditions\":{\"type\":\"PodScheduled\"}}}",
		"{\"metadata\":{\"name\":\"g\"},\"spec\":{},\"status\":{\"conditions\":[]}}",
		"{\"metadata\":{\"name\":\"h\"},\"status\":{}}",
		"{\"kind\":\"Pod\"}",
		"{}",
		/* a nodeName that is no string is replaced, an empty one too */
		"{\"spec\":{\"nodeName\":12,\"x\":1}}",
		"{\"spec\":{\"a\":1,\"nodeName\":\"\",\"z\":2}}",
		/* every msgpack type and size the encoder writes */
		"{\"metadata\":{\"name\":\"i\",\"annotations\":{\"long\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
		"\"utf8\":\"h\\u00e9llo \\u4e16\\u754c\"}},\"spec\":{\"ints\":[0,1,127,128,255,256,65535,65536,4294967295,"
		"4294967296,9223372036854775807,-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649,"
		"-9223372036854775808],\"reals\":[0.5,-1.25,1e300,0.0],\"b\":[true,false,null],\"deep\":{\"a\":{\"b\":{\"c\":[[[]]]}}},"
		"\"m\":{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"ka\":10,"
		"\"kb\":11,\"kc\":12,\"kd\":13,\"ke\":14,\"kf\":15,\"kg\":16}},\"status\":{\"conditions\":[{\"type\":\"PodScheduled\","
		"\"status\":\"False\"}],\"podIPs\":[]}}",
	};
	for (size_t i = 0; i < sizeof pods / sizeof pods[0]; i++)
		assert_int_equal(both(pods[i], "node-1"), API_BIND_OK);
	/* a node name of 40 and of 300 bytes (str8, str16) */
	char big[301];
	memset(big, 'n', 300);
	big[300] = '\0';
	assert_int_equal(both(pods[0], big), API_BIND_OK);
	big[40] = '\0';
	assert_int_equal(both(pods[2], big), API_BIND_OK);
	/* a pod with more than 15 keys at the top (map 16) */
	assert_int_equal(both("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11,"
	    "\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"kind\":\"Pod\"}", "n"), API_BIND_OK);
}

static void test_refusals(void **state)
{
	(void)state;
	assert_int_equal(both("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"nodeName\":\"n2\"}}", "n1"),
	    API_BIND_ASSIGNED);
	/* bound and being deleted: bound is said first, as before */
	assert_int_equal(both("{\"metadata\":{\"deletionTimestamp\":\"2026-11-27T08:00:00Z\"},"
	    "\"spec\":{\"nodeName\":\"n2\"}}", "n1"), API_BIND_ASSIGNED);
	assert_int_equal(both("{\"metadata\":{\"name\":\"a\",\"deletionTimestamp\":\"2026-11-27T08:00:00Z\"},"
	    "\"spec\":{}}", "n1"), API_BIND_DELETING);
	assert_int_equal(both("{\"metadata\":{\"deletionTimestamp\":null},\"spec\":{}}", "n1"),
	    API_BIND_DELETING);
	/* shapes left to the JSON path */
	assert_int_equal(both("{\"spec\":\"x\"}", "n1"), API_BIND_JSON);
	assert_int_equal(both("{\"spec\":{},\"status\":[1]}", "n1"), API_BIND_JSON);
	assert_int_equal(both("{\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{}}", "n1"), API_BIND_JSON);
	assert_int_equal(both("[1,2]", "n1"), API_BIND_JSON);
	/* deeper than msgpack-c unpacks */
	char deep[512] = "{\"spec\":{},\"x\":";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	for (int i = 0; i < 40; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	assert_int_equal(both(deep, "n1"), API_BIND_JSON);
	char *out;
	size_t outlen, curlen;
	const char *cur;
	assert_int_equal(api_pod_bind_mp("\x81\xa1", 2, "n", NOW, &out, &outlen, &cur, &curlen),
	    API_BIND_JSON);
	assert_null(out);
}

/* mpedit on its own: paths that create maps, collisions, non-maps. */
static void test_mpedit(void **state)
{
	(void)state;
	json_t *j = parse("{\"a\":{\"b\":1},\"l\":[{\"k\":\"x\",\"v\":1},{\"k\":\"y\"}]}");
	char *mp;
	size_t len;
	encode(j, &mp, &len);
	msgpack_zone z;
	msgpack_zone_init(&z, 1024);
	msgpack_object o;
	size_t off = 0;
	assert_int_equal(msgpack_unpack(mp, len, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
	msgpack_object s = mpe_cstr("new");
	msgpack_object_kv kv[2] = { { mpe_cstr("k"), mpe_cstr("x") }, { mpe_cstr("v"), mpe_cstr("2") } };
	msgpack_object el = { .type = MSGPACK_OBJECT_MAP };
	el.via.map.size = 2;
	el.via.map.ptr = kv;
	const struct mpe_edit e[] = {
		{ "a.c", MPE_SET, &s, NULL },
		{ "x.y.z", MPE_SET, &s, NULL },
		{ "a.b", MPE_SET, &s, NULL },
		{ "l", MPE_UPSERT, &el, "k" },
		{ "x.w", MPE_UPSERT, &el, "k" },
	};
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(mpe_pack(&pk, &o, e, 5), 0);
	json_t *got = api_mp_decode(sb.data, sb.size);
	char *txt = json_dumps(got, JSON_COMPACT);
	assert_string_equal(txt, "{\"a\":{\"b\":\"new\",\"c\":\"new\"},\"l\":[{\"k\":\"y\"},{\"k\":\"x\",\"v\":\"2\"}],"
	    "\"x\":{\"y\":{\"z\":\"new\"},\"w\":[{\"k\":\"x\",\"v\":\"2\"}]}}");
	free(txt);
	json_decref(got);
	/* a prefix of another path; through a non-map; no match field */
	const struct mpe_edit bad1[] = { { "a", MPE_SET, &s, NULL }, { "a.b", MPE_SET, &s, NULL } };
	const struct mpe_edit bad2[] = { { "a.b.c", MPE_SET, &s, NULL } };
	const struct mpe_edit bad3[] = { { "l", MPE_UPSERT, &el, "nope" } };
	const struct mpe_edit bad4[] = { { "a..b", MPE_SET, &s, NULL } };
	msgpack_sbuffer_clear(&sb);
	assert_int_equal(mpe_pack(&pk, &o, bad1, 2), KB_EINVAL);
	assert_int_equal(mpe_pack(&pk, &o, bad2, 1), KB_EINVAL);
	assert_int_equal(mpe_pack(&pk, &o, bad3, 1), KB_EINVAL);
	assert_int_equal(mpe_pack(&pk, &o, bad4, 1), KB_EINVAL);
	/* no edits: the same bytes */
	msgpack_sbuffer_clear(&sb);
	assert_int_equal(mpe_pack(&pk, &o, NULL, 0), 0);
	assert_int_equal(sb.size, len);
	assert_memory_equal(sb.data, mp, len);
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&z);
	free(mp);
	json_decref(j);
}

/* --- through the `api` service ------------------------------------------------ */

static void create_pod(kb_ctx *c, const char *name, bool finalizer)
{
	kb_msg *rep = NULL;
	kb_body *b = finalizer
	    ? kb_mp_body("{s:s, s:s, s:{s:s, s:[s]}, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1",
		  "kind", "Pod", "metadata", "name", name, "finalizers", "example.com/hold", "spec",
		  "containers", "name", "c", "image", "busybox")
	    : kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1", "kind",
		  "Pod", "metadata", "name", name, "spec", "containers", "name", "c", "image",
		  "busybox");
	int rc = kb_api_create(c, &KB_GVR_PODS, "default", b, &rep);
	if (rc) {
		const char *m = "";
		if (rep)
			kb_msg_err(rep, &m);
		fail_msg("create %s: %s %s", name, kb_strerror(rc), m);
	}
	kb_msg_free(rep);
}

static void test_binding_over_the_bus(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = bind_host(&c);
	int rc;
	create_pod(c, "p1", false);
	kb_msg *rep = NULL;
	assert_int_equal(bind_call(c, "p1", "node-a", &rep), 0);
	kb_msg_free(rep);
	rep = NULL;
	assert_int_equal(kb_api_get(c, &KB_GVR_PODS, "default", "p1", &rep), 0);
	const msgpack_object *pod = kb_msg_body(rep);
	assert_true(kb_mp_streq(pod, "spec.nodeName", "node-a"));
	assert_true(kbt_cond_true(pod, "PodScheduled"));
	assert_non_null(kb_mp_get(pod, "metadata.resourceVersion"));
	assert_non_null(kb_mp_get(pod, "status.conditions[0].lastTransitionTime"));
	assert_null(kb_mp_get(pod, "status.conditions[1]"));
	kb_msg_free(rep);
	rep = NULL;
	rc = bind_call(c, "p1", "node-b", &rep);
	expect_err(rc, rep, KB_ECONFLICT,
	    "pod p1 is already assigned to node \"node-a\"");
	rep = NULL;
	rc = bind_call(c, "nope", "node-b", &rep);
	expect_err(rc, rep, KB_ENOTFOUND,
	    "pods \"nope\" not found");
	/* a pod held by a finalizer while being deleted */
	create_pod(c, "p2", true);
	rep = NULL;
	assert_int_equal(kb_api_delete(c, &KB_GVR_PODS, "default", "p2",
	    kb_mp_body("{s:i}", "gracePeriodSeconds", 0), &rep), 0);
	kb_msg_free(rep);
	rep = NULL;
	rc = bind_call(c, "p2", "node-b", &rep);
	expect_err(rc, rep, KB_ECONFLICT,
	    "pod p2 is being deleted, cannot be assigned to a host");
	/* no target */
	rep = NULL;
	assert_int_equal(bind_call(c, "p1", "", &rep), KB_EINVAL);
	kb_msg_free(rep);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_mpedit),
		cmocka_unit_test(test_binding_over_the_bus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
