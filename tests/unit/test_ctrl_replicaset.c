/* tests/unit/test_ctrl_replicaset.c — the ReplicaSet controller through a
 * real host: pods with owner references, scale up and down (not-ready pods
 * go first), adoption and release by selector, status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

static const char controllers[] = "  - name: ctrl-replicaset\n"
				  "    use: ctrl-replicaset\n"
				  "    config: {resync: 2s}\n";

static kb_body *rs_body(const char *name, int replicas)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}},"
			  " s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name",
	    name, "spec", "replicas", replicas, "selector", "matchLabels",
	    "app", name, "template", "metadata", "labels", "app", name, "spec",
	    "containers", "name", "c", "image", "busybox");
}

static void scale(struct ct *t, const char *name, int n)
{
	kb_body *p = kb_mp_body("{s:{s:i}}", "spec", "replicas", n);
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_REPLICASETS, "default",
			     name, NULL, "merge", p, NULL),
	    0);
}

struct owned {
	int n, owned, ready;
	char rs_uid[64];
	char last_ready[256];
};

static void count_owned(void *arg, const msgpack_object *pod)
{
	struct owned *o = arg;
	o->n++;
	const msgpack_object *ref =
	    kb_mp_get(pod, "metadata.ownerReferences[0]");
	bool ctl = false, block = false;
	if (ref && kb_mp_bool(ref, "controller", &ctl) && ctl &&
	    kb_mp_bool(ref, "blockOwnerDeletion", &block) && block &&
	    kb_mp_streq(ref, "kind", "ReplicaSet") &&
	    kb_mp_streq(ref, "uid", o->rs_uid) &&
	    kb_mp_get(pod, "metadata.generateName"))
		o->owned++;
	if (kb_mp_streq(pod, "status.phase", "Running")) {
		o->ready++;
		const char *s;
		size_t l;
		if (kb_mp_str(pod, "metadata.name", &s, &l))
			snprintf(o->last_ready, sizeof(o->last_ready), "%.*s",
			    (int)l, s);
	}
}

static struct owned pods_of(struct ct *t, const char *uid, const char *sel)
{
	struct owned o = { 0 };
	snprintf(o.rs_uid, sizeof(o.rs_uid), "%s", uid);
	ct_list(t, &KB_GVR_PODS, "default", sel, count_owned, &o);
	return o;
}

static void test_replicaset(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	kb_msg *rs =
	    ct_create(&t, &KB_GVR_REPLICASETS, "default", rs_body("web", 3));
	assert_non_null(rs);
	char uid[64];
	const char *u;
	size_t ul;
	assert_true(kb_mp_str(kb_msg_body(rs), "metadata.uid", &u, &ul));
	snprintf(uid, sizeof(uid), "%.*s", (int)ul, u);
	kb_msg_free(rs);

	/* three pods, each controlled by the ReplicaSet */
	assert_true(CT_WAIT(10000, pods_of(&t, uid, "app=web").owned == 3));
	ct_sleep_ms(300);
	assert_int_equal(pods_of(&t, uid, "app=web").n, 3);

	/* up to five, then one pod ready, then down to one: the ready one stays */
	scale(&t, "web", 5);
	assert_true(CT_WAIT(10000, pods_of(&t, uid, "app=web").owned == 5));
	struct owned o = pods_of(&t, uid, "app=web");
	kb_msg *one = NULL;
	assert_int_equal(kb_api_list(t.c, &KB_GVR_PODS, "default", "app=web",
			     NULL, &one),
	    0);
	ct_ready_one(&t, kb_mp_get(kb_msg_body(one), "items[2]"));
	kb_msg_free(one);
	assert_true(CT_WAIT(5000, pods_of(&t, uid, "app=web").ready == 1));
	o = pods_of(&t, uid, "app=web");
	char keep[256];
	snprintf(keep, sizeof(keep), "%s", o.last_ready);
	scale(&t, "web", 1);
	assert_true(CT_WAIT(10000, pods_of(&t, uid, "app=web").n == 1));
	ct_sleep_ms(300);
	o = pods_of(&t, uid, "app=web");
	assert_int_equal(o.n, 1);
	assert_string_equal(o.last_ready, keep);

	/* status */
	assert_true(CT_WAIT(5000,
	    ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "web",
		"status.readyReplicas") == 1 &&
		ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "web",
		    "status.replicas") == 1 &&
		ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "web",
		    "status.availableReplicas") == 1 &&
		ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "web",
		    "status.fullyLabeledReplicas") == 1 &&
		ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "web",
		    "status.observedGeneration") ==
		    ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "web",
			"metadata.generation")));

	/* an orphan with matching labels is adopted instead of a new pod */
	kb_msg *orphan = ct_create(&t, &KB_GVR_PODS, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:[{s:s, s:s}]}}",
		"apiVersion", "v1", "kind", "Pod", "metadata", "name", "stray",
		"labels", "app", "adopt", "spec", "containers", "name", "c",
		"image", "busybox"));
	assert_non_null(orphan);
	kb_msg_free(orphan);
	rs = ct_create(&t, &KB_GVR_REPLICASETS, "default", rs_body("adopt", 2));
	assert_non_null(rs);
	assert_true(kb_mp_str(kb_msg_body(rs), "metadata.uid", &u, &ul));
	snprintf(uid, sizeof(uid), "%.*s", (int)ul, u);
	kb_msg_free(rs);
	assert_true(CT_WAIT(10000, pods_of(&t, uid, "app=adopt").n == 2));
	ct_sleep_ms(300);
	assert_int_equal(pods_of(&t, uid, "app=adopt").n, 2);
	kb_msg *stray = NULL;
	assert_true(CT_WAIT(5000, ({
		kb_msg_free(stray);
		stray = NULL;
		kb_api_get(t.c, &KB_GVR_PODS, "default", "stray", &stray) ==
			0 &&
		    kb_mp_streq(kb_msg_body(stray),
			"metadata.ownerReferences[0].uid", uid);
	})));
	kb_msg_free(stray);

	/* a pod relabelled out of the selector is released and replaced */
	kb_body *p =
	    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "app", "other");
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_PODS, "default", "stray",
			     NULL, "merge", p, NULL),
	    0);
	assert_true(CT_WAIT(10000,
	    pods_of(&t, uid, "app=adopt").n == 2 &&
		pods_of(&t, uid, "app=other").n == 1));
	assert_true(CT_WAIT(5000, ({
		kb_msg *m = NULL;
		bool freed = kb_api_get(t.c, &KB_GVR_PODS, "default", "stray",
				 &m) == 0 &&
		    kb_mp_get(kb_msg_body(m), "metadata.ownerReferences[0]") ==
			NULL;
		kb_msg_free(m);
		freed;
	})));
	ct_stop(&t);
}

/* Two instances with leader election: one acts, the pods are not doubled. */
static void test_leader_election(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t,
	    "  - name: rs-a\n"
	    "    use: ctrl-replicaset\n"
	    "    config: {leader_elect: true, lease_duration: 2s, lease_name: rs}\n"
	    "  - name: rs-b\n"
	    "    use: ctrl-replicaset\n"
	    "    config: {leader_elect: true, lease_duration: 2s, lease_name: rs}\n"));
	kb_msg *rs =
	    ct_create(&t, &KB_GVR_REPLICASETS, "default", rs_body("le", 4));
	assert_non_null(rs);
	kb_msg_free(rs);
	assert_true(CT_WAIT(10000,
	    ct_list(&t, &KB_GVR_PODS, "default", "app=le", NULL, NULL) == 4));
	ct_sleep_ms(500);
	assert_int_equal(ct_list(&t, &KB_GVR_PODS, "default", "app=le", NULL,
			     NULL),
	    4);
	kb_msg *lease = NULL;
	assert_int_equal(kb_api_get(t.c, &KB_GVR_LEASES, "kube-system", "rs",
			     &lease),
	    0);
	const char *who;
	size_t wl;
	assert_true(
	    kb_mp_str(kb_msg_body(lease), "spec.holderIdentity", &who, &wl));
	assert_true(wl > 5 &&
	    (!memcmp(who + wl - 5, "_rs-a", 5) ||
		!memcmp(who + wl - 5, "_rs-b", 5)));
	kb_msg_free(lease);
	ct_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replicaset),
		cmocka_unit_test(test_leader_election),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
