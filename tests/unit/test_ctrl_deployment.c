/* tests/unit/test_ctrl_deployment.c — the Deployment controller with the
 * ReplicaSet controller through a real host; the test plays the kubelet,
 * marking pods Ready. A rolling update makes a new ReplicaSet and moves
 * the pods over within maxSurge; Recreate empties the old one first;
 * revisionHistoryLimit prunes; status says what `kubectl rollout status`
 * waits for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

static const char controllers[] = "  - name: ctrl-replicaset\n"
				  "    use: ctrl-replicaset\n"
				  "    config: {resync: 2s}\n"
				  "  - name: ctrl-deployment\n"
				  "    use: ctrl-deployment\n"
				  "    config: {resync: 2s}\n";

static kb_body *dep_body(const char *name, int replicas, const char *image,
    const char *strategy)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:i, s:{s:s}, s:{s:{s:s}},"
			  " s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
	    name, "spec", "replicas", replicas, "revisionHistoryLimit", 1,
	    "strategy", "type", strategy, "selector", "matchLabels", "app",
	    name, "template", "metadata", "labels", "app", name, "spec",
	    "containers", "name", "c", "image", image);
}

static void set_image(struct ct *t, const char *name, const char *image)
{
	kb_body *p = kb_mp_body("{s:{s:{s:{s:[{s:s, s:s}]}}}}", "spec",
	    "template", "spec", "containers", "name", "c", "image", image);
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_DEPLOYMENTS, "default",
			     name, NULL, "merge", p, NULL),
	    0);
}

/* What `kubectl rollout status` checks. */
static bool rolled_out(struct ct *t, const char *name)
{
	kb_msg *m = NULL;
	if (kb_api_get(t->c, &KB_GVR_DEPLOYMENTS, "default", name, &m)) {
		kb_msg_free(m);
		return false;
	}
	const msgpack_object *d = kb_msg_body(m);
	int64_t gen = 0, obs = -1, want = 0, upd = -1, rep = -1, av = -1;
	kb_mp_int(d, "metadata.generation", &gen);
	kb_mp_int(d, "status.observedGeneration", &obs);
	kb_mp_int(d, "spec.replicas", &want);
	kb_mp_int(d, "status.updatedReplicas", &upd);
	kb_mp_int(d, "status.replicas", &rep);
	kb_mp_int(d, "status.availableReplicas", &av);
	bool ok = obs >= gen && upd == want && rep == upd && av == upd &&
	    kb_mp_streq(d, "status.conditions[0].type", "Available") &&
	    kb_mp_streq(d, "status.conditions[0].status", "True") &&
	    kb_mp_streq(d, "status.conditions[1].reason",
		"NewReplicaSetAvailable");
	if (!ok && getenv("CT_DEBUG")) {
		char buf[2048];
		fprintf(stderr, "deployment %s: %s\n", name,
		    kb_mp_repr(kb_mp_get(d, "status"), buf, sizeof(buf)));
	}
	kb_msg_free(m);
	return ok;
}

struct rsinfo {
	int n;
	int64_t replicas[8];
	char revision[8][8];
	bool hashed, owned;
};

static void rs_one(void *arg, const msgpack_object *rs)
{
	struct rsinfo *i = arg;
	if (i->n == 8)
		return;
	i->replicas[i->n] = -1;
	kb_mp_int(rs, "spec.replicas", &i->replicas[i->n]);
	const msgpack_object *a = kb_mp_get(rs, "metadata.annotations");
	const msgpack_object *v =
	    kb_mp_key(a, "deployment.kubernetes.io/revision");
	if (v && v->type == MSGPACK_OBJECT_STR)
		snprintf(i->revision[i->n], 8, "%.*s", (int)v->via.str.size,
		    v->via.str.ptr);
	i->hashed = kb_mp_get(rs, "metadata.labels.pod-template-hash") &&
	    kb_mp_get(rs, "spec.selector.matchLabels.pod-template-hash") &&
	    kb_mp_get(rs, "spec.template.metadata.labels.pod-template-hash");
	i->owned =
	    kb_mp_streq(rs, "metadata.ownerReferences[0].kind", "Deployment");
	i->n++;
}

static struct rsinfo rss(struct ct *t, const char *sel)
{
	struct rsinfo i = { 0 };
	ct_list(t, &KB_GVR_REPLICASETS, "default", sel, rs_one, &i);
	return i;
}

static void test_rolling_update(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	kb_msg *d = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("web", 3, "busybox:1", "RollingUpdate"));
	assert_non_null(d);
	kb_msg_free(d);

	assert_true(CT_WAIT(10000,
	    ct_list(&t, &KB_GVR_PODS, "default", "app=web", NULL, NULL) == 3));
	struct rsinfo i = rss(&t, "app=web");
	assert_int_equal(i.n, 1);
	assert_true(i.hashed);
	assert_true(i.owned);
	assert_string_equal(i.revision[0], "1");
	assert_false(rolled_out(&t, "web"));
	ct_ready_pods(&t, "default", "app=web");
	assert_true(CT_WAIT(10000, rolled_out(&t, "web")));

	/* set image: a second ReplicaSet takes over, one pod over 3 at most */
	set_image(&t, "web", "busybox:2");
	int most = 0;
	assert_true(CT_WAIT(20000, ({
		int n = ct_ready_pods(&t, "default", "app=web");
		if (n > most)
			most = n;
		rolled_out(&t, "web") && rss(&t, "app=web").n == 2;
	})));
	assert_true(most <= 4);
	i = rss(&t, "app=web");
	assert_int_equal(i.n, 2);
	for (int k = 0; k < 2; k++)
		assert_int_equal(i.replicas[k],
		    !strcmp(i.revision[k], "2") ? 3 : 0);
	assert_true(CT_WAIT(5000,
	    ct_list(&t, &KB_GVR_PODS, "default", "app=web", NULL, NULL) == 3));

	/* a third template: revisionHistoryLimit 1 keeps one old ReplicaSet */
	set_image(&t, "web", "busybox:3");
	assert_true(CT_WAIT(20000, ({
		ct_ready_pods(&t, "default", "app=web");
		rolled_out(&t, "web") && rss(&t, "app=web").n == 2;
	})));
	i = rss(&t, "app=web");
	bool has3 = false;
	for (int k = 0; k < i.n; k++)
		has3 |= !strcmp(i.revision[k], "3") && i.replicas[k] == 3;
	assert_true(has3);

	/* back to busybox:2 (rollout undo): its ReplicaSet is revision 4 */
	set_image(&t, "web", "busybox:2");
	assert_true(CT_WAIT(20000, ({
		ct_ready_pods(&t, "default", "app=web");
		struct rsinfo x = rss(&t, "app=web");
		bool rev4 = false;
		for (int k = 0; k < x.n; k++)
			rev4 |= !strcmp(x.revision[k], "4") &&
			    x.replicas[k] == 3;
		rolled_out(&t, "web") && rev4;
	})));

	/* scale */
	kb_body *p = kb_mp_body("{s:{s:i}}", "spec", "replicas", 5);
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_DEPLOYMENTS, "default",
			     "web", NULL, "merge", p, NULL),
	    0);
	assert_true(CT_WAIT(20000, ({
		ct_ready_pods(&t, "default", "app=web");
		rolled_out(&t, "web");
	})));
	assert_int_equal(ct_list(&t, &KB_GVR_PODS, "default", "app=web", NULL,
			     NULL),
	    5);
	ct_stop(&t);
}

static void test_recreate(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	kb_msg *d = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("rc", 2, "busybox:1", "Recreate"));
	assert_non_null(d);
	kb_msg_free(d);
	assert_true(
	    CT_WAIT(10000, ct_ready_pods(&t, "default", "app=rc") == 2));
	assert_true(CT_WAIT(10000, rolled_out(&t, "rc")));
	set_image(&t, "rc", "busybox:2");
	/* never pods of both templates at once */
	bool mixed = false;
	assert_true(CT_WAIT(20000, ({
		struct rsinfo x = rss(&t, "app=rc");
		if (x.n == 2 && x.replicas[0] > 0 && x.replicas[1] > 0)
			mixed = true;
		ct_ready_pods(&t, "default", "app=rc");
		rolled_out(&t, "rc") && x.n == 2;
	})));
	assert_false(mixed);
	ct_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rolling_update),
		cmocka_unit_test(test_recreate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
