/* tests/unit/test_ctrl_deployment_rollout.c — the Deployment controller's
 * finer rollout rules, with the ReplicaSet controller, through a real host
 * (the test plays the kubelet, marking pods Ready): pause and resume,
 * proportional scaling in the middle of a rollout (Kubernetes'
 * documentation's example), status.collisionCount on a ReplicaSet name
 * collision, progressDeadlineSeconds, minReadySeconds. */
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

/* A RollingUpdate Deployment; extra: more spec fields as "k: v" packed
 * by the caller (or NULL). */
static kb_body *dep_body(const char *name, int replicas, const char *image,
    int surge, int unavail, int deadline_s, int min_ready_s)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:i, s:i, s:{s:s, s:{s:i, s:i}},"
			  " s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
	    name, "spec", "replicas", replicas, "progressDeadlineSeconds",
	    deadline_s, "minReadySeconds", min_ready_s, "strategy", "type",
	    "RollingUpdate", "rollingUpdate", "maxSurge", surge,
	    "maxUnavailable", unavail, "selector", "matchLabels", "app", name,
	    "template", "metadata", "labels", "app", name, "spec", "containers",
	    "name", "c", "image", image);
}

static void patch_dep(struct ct *t, const char *ns, const char *name,
    kb_body *p)
{
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_DEPLOYMENTS, ns, name, NULL,
			     "merge", p, NULL),
	    0);
}

static void set_image(struct ct *t, const char *name, const char *image)
{
	patch_dep(t, "default", name,
	    kb_mp_body("{s:{s:{s:{s:[{s:s, s:s}]}}}}", "spec", "template",
		"spec", "containers", "name", "c", "image", image));
}

static void scale(struct ct *t, const char *name, int n)
{
	patch_dep(t, "default", name,
	    kb_mp_body("{s:{s:i}}", "spec", "replicas", n));
}

static void set_paused(struct ct *t, const char *name, bool on)
{
	patch_dep(t, "default", name,
	    kb_mp_body("{s:{s:b}}", "spec", "paused", on));
}

/* The Deployment's Progressing condition: reason and status into bufs. */
static bool progressing(struct ct *t, const char *name, const char *reason,
    const char *status)
{
	kb_msg *m = NULL;
	bool ok = false;
	if (kb_api_get(t->c, &KB_GVR_DEPLOYMENTS, "default", name, &m) == 0) {
		const msgpack_object *cs =
		    kb_mp_get(kb_msg_body(m), "status.conditions");
		for (uint32_t i = 0; cs && cs->type == MSGPACK_OBJECT_ARRAY &&
		     i < cs->via.array.size;
		     i++) {
			const msgpack_object *c = &cs->via.array.ptr[i];
			if (kb_mp_streq(c, "type", "Progressing"))
				ok = kb_mp_streq(c, "reason", reason) &&
				    kb_mp_streq(c, "status", status);
		}
	}
	kb_msg_free(m);
	return ok;
}

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
	kb_msg_free(m);
	return obs >= gen && upd == want && rep == upd && av == upd &&
	    progressing(t, name, "NewReplicaSetAvailable", "True");
}

/* The ReplicaSets of app=name, by revision (1..4): spec.replicas, -1 when
 * there is none; and the annotations of each. */
struct rsv {
	int n;
	int64_t replicas[5];
	char desired[5][16], max[5][16], name[5][64];
};

static void rs_one(void *arg, const msgpack_object *rs)
{
	struct rsv *v = arg;
	const msgpack_object *a = kb_mp_get(rs, "metadata.annotations");
	const msgpack_object *r =
	    kb_mp_key(a, "deployment.kubernetes.io/revision");
	int rev = r && r->type == MSGPACK_OBJECT_STR && r->via.str.size == 1 ?
	    r->via.str.ptr[0] - '0' :
	    0;
	if (rev < 1 || rev > 4)
		return;
	v->n++;
	kb_mp_int(rs, "spec.replicas", &v->replicas[rev]);
	const msgpack_object *x =
	    kb_mp_key(a, "deployment.kubernetes.io/desired-replicas");
	if (x && x->type == MSGPACK_OBJECT_STR)
		snprintf(v->desired[rev], 16, "%.*s", (int)x->via.str.size,
		    x->via.str.ptr);
	x = kb_mp_key(a, "deployment.kubernetes.io/max-replicas");
	if (x && x->type == MSGPACK_OBJECT_STR)
		snprintf(v->max[rev], 16, "%.*s", (int)x->via.str.size,
		    x->via.str.ptr);
	const char *s;
	size_t sl;
	if (kb_mp_str(rs, "metadata.name", &s, &sl))
		snprintf(v->name[rev], 64, "%.*s", (int)sl, s);
}

static struct rsv rss(struct ct *t, const char *ns, const char *name)
{
	struct rsv v = { 0 };
	for (int i = 0; i < 5; i++)
		v.replicas[i] = -1;
	char sel[128];
	snprintf(sel, sizeof(sel), "app=%s", name);
	ct_list(t, &KB_GVR_REPLICASETS, ns, sel, rs_one, &v);
	return v;
}

static int pods(struct ct *t, const char *name)
{
	char sel[128];
	snprintf(sel, sizeof(sel), "app=%s", name);
	return ct_list(t, &KB_GVR_PODS, "default", sel, NULL, NULL);
}

static void ready(struct ct *t, const char *name)
{
	char sel[128];
	snprintf(sel, sizeof(sel), "app=%s", name);
	ct_ready_pods(t, "default", sel);
}

static void test_pause_resume(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	kb_msg *m = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("pr", 3, "busybox:1", 1, 0, 600, 0));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(15000, ({
		ready(&t, "pr");
		rolled_out(&t, "pr");
	})));

	set_paused(&t, "pr", true);
	assert_true(CT_WAIT(5000,
	    progressing(&t, "pr", "DeploymentPaused", "Unknown")));
	/* paused: a new template makes no ReplicaSet */
	set_image(&t, "pr", "busybox:2");
	ct_sleep_ms(1000);
	struct rsv v = rss(&t, "default", "pr");
	assert_int_equal(v.n, 1);
	assert_int_equal(v.replicas[1], 3);
	assert_true(progressing(&t, "pr", "DeploymentPaused", "Unknown"));
	/* ... but scaling still works */
	scale(&t, "pr", 5);
	assert_true(CT_WAIT(10000, rss(&t, "default", "pr").replicas[1] == 5));
	assert_true(CT_WAIT(10000, pods(&t, "pr") == 5));
	assert_int_equal(rss(&t, "default", "pr").n, 1);

	/* resumed: the rollout of busybox:2 runs to the end */
	set_paused(&t, "pr", false);
	assert_true(CT_WAIT(20000, ({
		ready(&t, "pr");
		struct rsv x = rss(&t, "default", "pr");
		rolled_out(&t, "pr") && x.replicas[2] == 5 &&
		    x.replicas[1] == 0;
	})));
	ct_stop(&t);
}

/* Kubernetes' documentation, "Proportional scaling": 10 replicas,
 * maxSurge 3, maxUnavailable 2; an update whose pods never become ready
 * stops at 8 old + 5 new; scaling to 15 then adds 3 to the old ReplicaSet
 * and 2 to the new one (18 = 15 + maxSurge, split 8:5). */
static void test_proportional_scaling(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	kb_msg *m = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("prop", 10, "busybox:1", 3, 2, 600, 0));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(15000, ({
		ready(&t, "prop");
		rolled_out(&t, "prop");
	})));
	set_image(&t, "prop", "busybox:bad");
	/* the new pods never get Ready: the rollout stops at 8 + 5 */
	assert_true(CT_WAIT(15000, ({
		struct rsv x = rss(&t, "default", "prop");
		x.replicas[1] == 8 && x.replicas[2] == 5;
	})));
	ct_sleep_ms(500);
	struct rsv v = rss(&t, "default", "prop");
	assert_int_equal(v.replicas[1], 8);
	assert_int_equal(v.replicas[2], 5);
	assert_string_equal(v.max[2], "13");

	scale(&t, "prop", 15);
	assert_true(CT_WAIT(10000, ({
		struct rsv x = rss(&t, "default", "prop");
		x.replicas[1] == 11 && x.replicas[2] == 7;
	})));
	ct_sleep_ms(500);
	v = rss(&t, "default", "prop");
	assert_int_equal(v.replicas[1], 11);
	assert_int_equal(v.replicas[2], 7);
	for (int r = 1; r <= 2; r++) {
		assert_string_equal(v.desired[r], "15");
		assert_string_equal(v.max[r], "18");
	}
	/* paused (so that the rollout does not move on), down to 5:
	 * 5 + 3 = 8 split 11:7 is 5:3 */
	set_paused(&t, "prop", true);
	assert_true(CT_WAIT(5000,
	    progressing(&t, "prop", "DeploymentPaused", "Unknown")));
	scale(&t, "prop", 5);
	assert_true(CT_WAIT(10000, ({
		struct rsv x = rss(&t, "default", "prop");
		x.replicas[1] + x.replicas[2] == 8;
	})));
	ct_sleep_ms(500);
	v = rss(&t, "default", "prop");
	assert_int_equal(v.replicas[1], 5);
	assert_int_equal(v.replicas[2], 3);
	ct_stop(&t);
}

static void test_collision(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	/* the ReplicaSet name a template gets, learnt in another namespace */
	kb_msg *m = ct_create(&t, &KB_GVR_NAMESPACES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		"Namespace", "metadata", "name", "probe"));
	assert_non_null(m);
	kb_msg_free(m);
	m = ct_create(&t, &KB_GVR_DEPLOYMENTS, "probe",
	    dep_body("coll", 0, "busybox:1", 1, 0, 600, 0));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(10000, rss(&t, "probe", "coll").n == 1));
	char taken[64];
	snprintf(taken, sizeof(taken), "%s", rss(&t, "probe", "coll").name[1]);
	assert_true(strlen(taken) > 5);

	/* someone else's ReplicaSet has that name in default */
	m = ct_create(&t, &KB_GVR_REPLICASETS, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:i, s:{s:{s:s}},"
		       " s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}",
		"apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata",
		"name", taken, "labels", "app", "other", "spec", "replicas", 0,
		"selector", "matchLabels", "app", "other", "template",
		"metadata", "labels", "app", "other", "spec", "containers",
		"name", "c", "image", "busybox:other"));
	assert_non_null(m);
	kb_msg_free(m);
	m = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("coll", 1, "busybox:1", 1, 0, 600, 0));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(10000,
	    ct_get_int(&t, &KB_GVR_DEPLOYMENTS, "default", "coll",
		"status.collisionCount") == 1 &&
		rss(&t, "default", "coll").n == 1));
	struct rsv v = rss(&t, "default", "coll");
	assert_string_not_equal(v.name[1], taken);
	assert_int_equal(v.replicas[1], 1);
	/* the other one is left alone */
	assert_int_equal(ct_get_int(&t, &KB_GVR_REPLICASETS, "default", taken,
			     "spec.replicas"),
	    0);
	assert_true(CT_WAIT(10000, ({
		ready(&t, "coll");
		rolled_out(&t, "coll");
	})));
	assert_int_equal(ct_get_int(&t, &KB_GVR_DEPLOYMENTS, "default", "coll",
			     "status.collisionCount"),
	    1);
	ct_stop(&t);
}

static void test_deadline_and_min_ready(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	/* pods that never get Ready: ProgressDeadlineExceeded after 2 s */
	kb_msg *m = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("slow", 2, "busybox:1", 1, 0, 2, 0));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(10000, pods(&t, "slow") == 2));
	assert_true(progressing(&t, "slow", "ReplicaSetUpdated", "True"));
	assert_true(CT_WAIT(10000,
	    progressing(&t, "slow", "ProgressDeadlineExceeded", "False")));
	/* Ready at last: the condition recovers */
	assert_true(CT_WAIT(10000, ({
		ready(&t, "slow");
		rolled_out(&t, "slow");
	})));

	/* minReadySeconds 2: Ready pods count as available 2 s later */
	m = ct_create(&t, &KB_GVR_DEPLOYMENTS, "default",
	    dep_body("mr", 2, "busybox:1", 1, 0, 600, 2));
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(10000, pods(&t, "mr") == 2));
	ready(&t, "mr");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(CT_WAIT(5000,
	    ct_get_int(&t, &KB_GVR_DEPLOYMENTS, "default", "mr",
		"status.readyReplicas") == 2));
	assert_true(ct_get_int(&t, &KB_GVR_DEPLOYMENTS, "default", "mr",
			"status.availableReplicas") <= 0);
	assert_true(CT_WAIT(10000,
	    ct_get_int(&t, &KB_GVR_DEPLOYMENTS, "default", "mr",
		"status.availableReplicas") == 2));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 900); /* Ready times have whole seconds */
	assert_true(CT_WAIT(5000, rolled_out(&t, "mr")));
	ct_stop(&t);
}

/* Real kubectl: `rollout pause` / `rollout resume` (they patch
 * spec.paused), and `rollout status` afterwards. */
static char *kubectl(const char *prefix, int *rc, const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", prefix, args);
	char *out = NULL;
	*rc = kbt_run(cmd, &out);
	return out ? out : strdup("");
}

static void test_kubectl_pause_resume(void **state)
{
	if (access("/usr/bin/kubectl", X_OK) != 0) {
		fprintf(stderr, "skip: no /usr/bin/kubectl\n");
		skip();
	}
	struct ct t = { 0 };
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\"}\n"
	    "%s",
	    controllers);
	t.h = kbt_host_start(yaml, err, sizeof(err));
	assert_non_null(t.h);
	const char *groups[] = { "kubus:plugins" };
	t.c = kbt_client(t.h, "tester", "plugin:tester", groups, 1);
	assert_non_null(t.c);
	char *home = kbt_mkdtemp("kubectl-home");
	assert_non_null(home);
	char prefix[4096];
	snprintf(prefix, sizeof(prefix),
	    "HOME=%s KUBECONFIG=%s/admin.kubeconfig /usr/bin/kubectl "
	    "--cache-dir=%s/cache --request-timeout=30s",
	    home, kbt_host_data_dir(t.h), home);
	int rc;
	char *o = kubectl(prefix, &rc,
	    "create deployment kp --image=busybox:1 --replicas=2");
	assert_int_equal(rc, 0);
	free(o);
	assert_true(CT_WAIT(15000, ({
		ready(&t, "kp");
		rolled_out(&t, "kp");
	})));
	o = kubectl(prefix, &rc, "rollout pause deployment/kp");
	if (rc != 0 || !strstr(o, "deployment.apps/kp paused"))
		fail_msg("rollout pause: exit %d:\n%s", rc, o);
	free(o);
	assert_true(CT_WAIT(5000,
	    progressing(&t, "kp", "DeploymentPaused", "Unknown")));
	o = kubectl(prefix, &rc, "set image deployment/kp busybox=busybox:2");
	assert_int_equal(rc, 0);
	free(o);
	ct_sleep_ms(800);
	assert_int_equal(rss(&t, "default", "kp").n, 1);
	o = kubectl(prefix, &rc, "rollout resume deployment/kp");
	if (rc != 0 || !strstr(o, "deployment.apps/kp resumed"))
		fail_msg("rollout resume: exit %d:\n%s", rc, o);
	free(o);
	assert_true(CT_WAIT(20000, ({
		ready(&t, "kp");
		rolled_out(&t, "kp") && rss(&t, "default", "kp").n == 2;
	})));
	o = kubectl(prefix, &rc, "rollout status deployment/kp --timeout=20s");
	if (rc != 0 || !strstr(o, "successfully rolled out"))
		fail_msg("rollout status: exit %d:\n%s", rc, o);
	free(o);
	o = kubectl(prefix, &rc, "rollout history deployment/kp");
	if (rc != 0 || !strstr(o, "2 "))
		fail_msg("rollout history: exit %d:\n%s", rc, o);
	free(o);
	ct_stop(&t);
	kbt_rmrf(home);
	free(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_proportional_scaling),
		cmocka_unit_test(test_collision),
		cmocka_unit_test(test_deadline_and_min_ready),
		cmocka_unit_test(test_kubectl_pause_resume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
