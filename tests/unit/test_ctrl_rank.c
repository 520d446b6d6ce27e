/* tests/unit/test_ctrl_rank.c — ctrl-replicaset's deletion order
 * (rank.c) sorts on keys read once per pod version, into the pod's view
 * (podview.c); this checks it orders random pods exactly as the
 * comparator that read the pods at every comparison (kept here as the
 * reference) did, and that the view of odd and ordinary pods holds what
 * a reconcile's lookups in the pod (kept here too) found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The plugin's sources, built into this test. */
#include "../../plugins/ctrl-common/obj.c"
#include "../../plugins/ctrl-replicaset/rank.c"
#include "../../plugins/ctrl-replicaset/podview.c"

/* The comparator before keys were read once (the reference). */
static int ref_cmp(const void *pa, const void *pb)
{
	const msgpack_object *a = ((const struct rsc_pod *)pa)->o;
	const msgpack_object *b = ((const struct rsc_pod *)pb)->o;
	if (assigned(a) != assigned(b))
		return assigned(a) ? 1 : -1;
	if (phase_rank(a) != phase_rank(b))
		return phase_rank(a) - phase_rank(b);
	bool ra = ctrl_pod_ready(a), rb = ctrl_pod_ready(b);
	if (ra != rb)
		return ra ? 1 : -1;
	if (ra && rb) {
		int64_t ta = ctrl_pod_ready_since(a),
			tb = ctrl_pod_ready_since(b);
		if (ta != tb)
			return ta > tb ? -1 : 1;
	}
	int64_t xa = restarts(a), xb = restarts(b);
	if (xa != xb)
		return xa > xb ? -1 : 1;
	int64_t ca = ctrl_parse_time(a, "metadata.creationTimestamp");
	int64_t cb = ctrl_parse_time(b, "metadata.creationTimestamp");
	if (ca != cb)
		return ca > cb ? -1 : 1;
	const char *na = "", *nb = "";
	size_t la = 0, lb = 0;
	kb_mp_str(a, "metadata.resourceVersion", &na, &la);
	kb_mp_str(b, "metadata.resourceVersion", &nb, &lb);
	if (la != lb)
		return la > lb ? -1 : 1;
	return -memcmp(na, nb, la);
}

static kb_body *random_pod(unsigned *seed, int i)
{
	static const char *const phases[] = { "Pending", "Running", "Unknown",
		"Succeeded", "" };
	char rv[32], created[32], since[32], node[16] = "";
	/* unique resourceVersions of 1 to 4 digits: no two pods tie */
	snprintf(rv, sizeof(rv), "%d", (i * 7919) % 10000);
	snprintf(created, sizeof(created), "2026-11-27T03:%02d:%02dZ",
	    rand_r(seed) % 3, rand_r(seed) % 4);
	snprintf(since, sizeof(since), "2026-11-27T04:%02d:%02dZ",
	    rand_r(seed) % 2, rand_r(seed) % 3);
	if (rand_r(seed) % 4)
		snprintf(node, sizeof(node), "n%d", rand_r(seed) % 3);
	const char *phase = phases[rand_r(seed) % 5];
	const char *ready = rand_r(seed) % 3 ? "True" : "False";
	int r1 = rand_r(seed) % 3, r2 = rand_r(seed) % 2;
	return kb_mp_body("{s:{s:s, s:s, s:s}, s:{s:s}, "
			  "s:{s:s, s:[{s:s, s:s, s:s}], "
			  "s:[{s:s, s:i}, {s:s, s:i}]}}",
	    "metadata", "name", rv, "resourceVersion", rv, "creationTimestamp",
	    created, "spec", "nodeName", node, "status", "phase", phase,
	    "conditions", "type", "Ready", "status", ready,
	    "lastTransitionTime", since, "containerStatuses", "name", "a",
	    "restartCount", r1, "name", "b", "restartCount", r2);
}

static void test_same_order(void **state)
{
	(void)state;
	unsigned seed = 7;
	for (int round = 0; round < 50; round++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % 400);
		struct rsc_pod *a = calloc(n, sizeof(*a)),
			       *b = calloc(n, sizeof(*b));
		assert_non_null(a);
		assert_non_null(b);
		for (size_t i = 0; i < n; i++) {
			a[i].b = random_pod(&seed, (int)i);
			assert_non_null(a[i].b);
			a[i].o = kb_body_obj(a[i].b);
			assert_non_null(a[i].o);
			struct rsc_podv v;
			rsc_pod_view(a[i].o, &v);
			a[i].k = v.rank;
			b[i] = a[i];
		}
		qsort(a, n, sizeof(*a), ref_cmp);
		rsc_rank_for_deletion(b, n);
		for (size_t i = 0; i < n; i++)
			assert_ptr_equal(a[i].b, b[i].b);
		for (size_t i = 0; i < n; i++)
			kb_body_unref(a[i].b);
		free(a);
		free(b);
	}
}

/* --- the view ------------------------------------------------------------------- */

/* What sync.c looked up in the pod at every pass before the view (the
 * reference). */
struct ref_view {
	const msgpack_object *md, *labels, *ctl_ref, *ready_cond;
	bool deleting, terminal;
};

static bool ref_str_is(const msgpack_object *o, const char *s, size_t len)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
	    !memcmp(o->via.str.ptr, s, len);
}

static void ref_view(const msgpack_object *pod, struct ref_view *v)
{
	memset(v, 0, sizeof(*v));
	v->md = kb_mp_key(pod, "metadata");
	const msgpack_object *refs = kb_mp_key(v->md, "ownerReferences");
	for (uint32_t i = 0; refs && refs->type == MSGPACK_OBJECT_ARRAY &&
	     i < refs->via.array.size && !v->ctl_ref;
	     i++) {
		const msgpack_object *c =
		    kb_mp_key(&refs->via.array.ptr[i], "controller");
		if (c && c->type == MSGPACK_OBJECT_BOOLEAN && c->via.boolean)
			v->ctl_ref = &refs->via.array.ptr[i];
	}
	v->labels = kb_mp_key(v->md, "labels");
	const msgpack_object *d = kb_mp_key(v->md, "deletionTimestamp");
	v->deleting = d && d->type != MSGPACK_OBJECT_NIL;
	const msgpack_object *st = kb_mp_key(pod, "status");
	const msgpack_object *ph = kb_mp_key(st, "phase");
	v->terminal = ref_str_is(ph, "Succeeded", 9) ||
	    ref_str_is(ph, "Failed", 6);
	const msgpack_object *conds = kb_mp_key(st, "conditions");
	for (uint32_t i = 0; conds && conds->type == MSGPACK_OBJECT_ARRAY &&
	     i < conds->via.array.size && !v->ready_cond;
	     i++)
		if (ref_str_is(kb_mp_key(&conds->via.array.ptr[i], "type"),
			"Ready", 5))
			v->ready_cond = &conds->via.array.ptr[i];
}

/* A key, or (one time in `absent`) another that is not looked for. */
static void pack_key(msgpack_packer *pk, unsigned *seed, const char *key,
    int absent)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s%s", rand_r(seed) % absent ? "" : "x",
	    key);
	kb_mp_pack_cstr(pk, buf);
}

/* A string, or now and then an integer or nil in its place. */
static void pack_str(msgpack_packer *pk, unsigned *seed, const char *s)
{
	int r = rand_r(seed) % 8;
	if (r == 0)
		msgpack_pack_int(pk, 7);
	else if (r == 1)
		msgpack_pack_nil(pk);
	else
		kb_mp_pack_cstr(pk, s);
}

/* Pods of every shape a view must read as the lookups did: fields absent
 * or of the wrong type, several ownerReferences and Ready conditions,
 * controller flags that are not booleans, unparseable times. */
static kb_body *odd_pod(unsigned *seed, int i)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char name[32];
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	snprintf(name, sizeof(name), "p%d", i);
	msgpack_pack_map(&pk, 3);
	pack_key(&pk, seed, "metadata", 16);
	msgpack_pack_map(&pk, 7);
	pack_key(&pk, seed, "name", 8);
	pack_str(&pk, seed, name);
	pack_key(&pk, seed, "namespace", 8);
	pack_str(&pk, seed, rand_r(seed) % 2 ? "default" : "other");
	pack_key(&pk, seed, "resourceVersion", 8);
	pack_str(&pk, seed, name + 1);
	pack_key(&pk, seed, "creationTimestamp", 8);
	pack_str(&pk, seed,
	    rand_r(seed) % 4 ? "2026-11-27T03:01:02Z" : "yesterday");
	pack_key(&pk, seed, "labels", 4);
	if (rand_r(seed) % 4)
		kb_mp_pack(&pk, "{s:s}", "app", rand_r(seed) % 2 ? "a" : "b");
	else
		msgpack_pack_nil(&pk);
	pack_key(&pk, seed, "deletionTimestamp", 2);
	if (rand_r(seed) % 3)
		msgpack_pack_nil(&pk);
	else
		kb_mp_pack_cstr(&pk, "2026-11-27T05:00:00Z");
	pack_key(&pk, seed, "ownerReferences", 4);
	uint32_t nrefs = (uint32_t)(rand_r(seed) % 4);
	msgpack_pack_array(&pk, nrefs);
	for (uint32_t r = 0; r < nrefs; r++) {
		char uid[16];
		snprintf(uid, sizeof(uid), "uid-%u", r);
		msgpack_pack_map(&pk, 3);
		kb_mp_pack_cstr(&pk, "kind");
		kb_mp_pack_cstr(&pk, "ReplicaSet");
		pack_key(&pk, seed, "controller", 4);
		int c = rand_r(seed) % 4;
		if (c == 0)
			kb_mp_pack_cstr(&pk, "true"); /* not a boolean */
		else if (c == 1)
			msgpack_pack_false(&pk);
		else
			msgpack_pack_true(&pk);
		pack_key(&pk, seed, "uid", 6);
		pack_str(&pk, seed, uid);
	}
	pack_key(&pk, seed, "spec", 4);
	kb_mp_pack(&pk, "{s:s}", "nodeName", rand_r(seed) % 2 ? "n1" : "");
	pack_key(&pk, seed, "status", 8);
	msgpack_pack_map(&pk, 2);
	pack_key(&pk, seed, "phase", 4);
	static const char *const phases[] = { "Pending", "Running", "Succeeded",
		"Failed", "Unknown" };
	pack_str(&pk, seed, phases[rand_r(seed) % 5]);
	pack_key(&pk, seed, "conditions", 6);
	uint32_t nconds = (uint32_t)(rand_r(seed) % 4);
	msgpack_pack_array(&pk, nconds);
	for (uint32_t c = 0; c < nconds; c++) {
		msgpack_pack_map(&pk, 3);
		pack_key(&pk, seed, "type", 8);
		pack_str(&pk, seed, rand_r(seed) % 3 ? "Ready" : "Initialized");
		pack_key(&pk, seed, "status", 8);
		pack_str(&pk, seed, rand_r(seed) % 3 ? "True" : "False");
		pack_key(&pk, seed, "lastTransitionTime", 6);
		char t[32];
		snprintf(t, sizeof(t), "2026-11-27T04:%02d:%02d.%03dZ",
		    rand_r(seed) % 60, rand_r(seed) % 60, rand_r(seed) % 1000);
		pack_str(&pk, seed, rand_r(seed) % 6 ? t : "soon");
	}
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

/* A view's string against what the lookup finds. */
static void expect_str(const char *s, size_t len, const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
		assert_null(s);
		assert_int_equal(len, 0);
		return;
	}
	assert_ptr_equal(s, o->via.str.ptr);
	assert_int_equal(len, o->via.str.size);
}

static void test_view(void **state)
{
	(void)state;
	unsigned seed = 11;
	int owned = 0, ready = 0, deleting = 0, terminal = 0;
	for (int i = 0; i < 5000; i++) {
		kb_body *b = i % 2 ? odd_pod(&seed, i) : random_pod(&seed, i);
		assert_non_null(b);
		const msgpack_object *o = kb_body_obj(b);
		assert_non_null(o);
		struct rsc_podv v;
		struct ref_view r;
		struct rsc_rank k;
		memset(&v, 0xa5, sizeof(v)); /* the view needs no zeroing */
		rsc_pod_view(o, &v);
		ref_view(o, &r);
		rsc_rank_read(o, &k);
		assert_ptr_equal(v.md, r.md);
		assert_ptr_equal(v.labels, r.labels);
		assert_ptr_equal(v.ctl_ref, r.ctl_ref);
		expect_str(v.ns, v.nslen, kb_mp_key(r.md, "namespace"));
		expect_str(v.name, v.namelen, kb_mp_key(r.md, "name"));
		expect_str(v.ctl_uid, v.ctl_uidlen,
		    r.ctl_ref ? kb_mp_key(r.ctl_ref, "uid") : NULL);
		assert_int_equal(v.deleting, r.deleting);
		assert_int_equal(v.terminal, r.terminal);
		/* the Ready condition as tally_pod read it */
		bool rd = r.ready_cond &&
		    ref_str_is(kb_mp_key(r.ready_cond, "status"), "True", 4);
		assert_int_equal(v.rank.ready, rd);
		if (rd)
			assert_int_equal(v.rank.ready_since,
			    ctrl_parse_time(r.ready_cond,
				"lastTransitionTime"));
		/* and the deletion order's key as rank.c reads it */
		assert_int_equal(v.rank.assigned, k.assigned);
		assert_int_equal(v.rank.phase, k.phase);
		assert_int_equal(v.rank.ready_since, k.ready_since);
		assert_int_equal(v.rank.restarts, k.restarts);
		assert_int_equal(v.rank.created, k.created);
		assert_ptr_equal(v.rank.rv, k.rv);
		assert_int_equal(v.rank.rvlen, k.rvlen);
		owned += v.ctl_ref != NULL;
		ready += rd;
		deleting += v.deleting;
		terminal += v.terminal;
		kb_body_unref(b);
	}
	/* every branch was taken */
	assert_true(owned > 100 && owned < 4900);
	assert_true(ready > 100 && ready < 4900);
	assert_true(deleting > 100 && deleting < 4900);
	assert_true(terminal > 100 && terminal < 4900);
}

/* --- times ------------------------------------------------------------------------ */

/* ctrl_parse_time is the SDK's kb_time_parse (test_client checks it
 * against timegm) on a field: fractions and offsets count, a field that
 * is absent or not RFC 3339 is -1. */
static void test_parse_time(void **state)
{
	(void)state;
	/* and as a whole, with fractions */
	kb_body *b = kb_mp_body("{s:s, s:s, s:s, s:s, s:s}", "a",
	    "2026-11-27T03:01:02.345Z", "b", "2024-02-29T23:59:59Z", "c",
	    "2023-02-29T00:00:00Z", "d", " 2026-11-27T03:01:02Z", "f",
	    "2026-11-27T04:01:02+01:00");
	const msgpack_object *o = kb_body_obj(b);
	assert_int_equal(ctrl_parse_time(o, "a"), 1795748462345LL);
	assert_int_equal(ctrl_parse_time(o, "b"), 1709251199000LL);
	/* no 29th in 2023: it runs on to 1 March, as timegm has it */
	assert_int_equal(ctrl_parse_time(o, "c"), 1677628800000LL);
	assert_int_equal(ctrl_parse_time(o, "d"), -1);
	assert_int_equal(ctrl_parse_time(o, "e"), -1);
	assert_int_equal(ctrl_parse_time(o, "f"), 1795748462000LL);
	kb_body_unref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_order),
		cmocka_unit_test(test_view),
		cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
