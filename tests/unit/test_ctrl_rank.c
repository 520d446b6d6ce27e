/* tests/unit/test_ctrl_rank.c — ctrl-replicaset's deletion order
 * (rank.c) reads each pod's keys once and sorts the keys; this checks it
 * orders random pods exactly as the comparator that read the pods at every
 * comparison (kept here as the reference) did. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
