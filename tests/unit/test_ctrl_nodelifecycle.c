/* tests/unit/test_ctrl_nodelifecycle.c — the node lifecycle controller
 * through a real host with the scheduler, the ReplicaSet controller and a
 * hollow kubelet (runtime-fake) on node `live`. The test plays a second
 * node's kubelet, `gone`: it writes the Node and renews its Lease, then
 * stops. The node goes Ready=Unknown with the unreachable taints, its pods
 * are marked not Ready and evicted after their tolerationSeconds (2 s), the
 * ReplicaSet's replacements run on `live`, a pod tolerating unreachable
 * without a time limit stays; when the "kubelet" comes back the taints go.
 * Then the eviction rate limit (two silent nodes, one NoExecute) and a node
 * reporting Ready=False (not-ready taints instead of unreachable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

/* %s: the eviction_rate */
static const char controllers_fmt[] =
    "  - name: scheduler\n"
    "    use: scheduler\n"
    "  - name: ctrl-replicaset\n"
    "    use: ctrl-replicaset\n"
    "    config: {resync: 2s}\n"
    "  - name: ctrl-nodelifecycle\n"
    "    use: ctrl-nodelifecycle\n"
    "    config: {grace_period: 2s, monitor_period: 200ms,"
    " eviction_rate: %s}\n"
    "  - name: kubelet-live\n"
    "    use: kubelet\n"
    "    config:\n"
    "      node_name: live\n"
    "      runtime: runtime-fake\n"
    "      lease_interval: 500ms\n"
    "      status_interval: 1s\n"
    "      sync_period: 200ms\n";

static void now_micro(char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char s[32];
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%06dZ", s,
	    (int)(ts.tv_nsec / 1000) % 1000000);
}

/* What the kubelet of `gone` would do: renew its Lease, post Ready. */
static void renew_node(struct ct *t, const char *node)
{
	char now[48];
	now_micro(now, sizeof(now));
	kb_body *p = kb_mp_body("{s:{s:s}}", "spec", "renewTime", now);
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_LEASES, "kube-node-lease",
			     node, NULL, "merge", p, NULL),
	    0);
}

static void renew(struct ct *t)
{
	renew_node(t, "gone");
}

static void post_ready_node(struct ct *t, const char *node, const char *status)
{
	char now[40];
	time_t s = time(NULL);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	kb_body *p = kb_mp_body("{s:{s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}}",
	    "status", "conditions", "type", "Ready", "status", status, "reason",
	    "KubeletReady", "message", "kubelet is posting ready status",
	    "lastHeartbeatTime", now, "lastTransitionTime", now);
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_NODES, NULL, node, "status",
			     "merge", p, NULL),
	    0);
}

static void post_ready(struct ct *t)
{
	post_ready_node(t, "gone", "True");
}

static void make_node(struct ct *t, const char *name)
{
	kb_msg *m = ct_create(t, &KB_GVR_NODES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{}}", "apiVersion", "v1",
		"kind", "Node", "metadata", "name", name, "labels",
		"kubernetes.io/hostname", name, "spec"));
	assert_non_null(m);
	kb_msg_free(m);
	kb_body *p = kb_mp_body("{s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}}",
	    "status", "capacity", "cpu", "4", "memory", "8Gi", "pods", "110",
	    "allocatable", "cpu", "4", "memory", "8Gi", "pods", "110");
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_NODES, NULL, name, "status",
			     "merge", p, NULL),
	    0);
	post_ready_node(t, name, "True");
	char now[48];
	now_micro(now, sizeof(now));
	m = ct_create(t, &KB_GVR_LEASES, "kube-node-lease",
	    kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s}}",
		"apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
		"metadata", "name", name, "namespace", "kube-node-lease",
		"spec", "holderIdentity", name, "leaseDurationSeconds", 40,
		"renewTime", now));
	assert_non_null(m);
	kb_msg_free(m);
}

static void cordon(struct ct *t, const char *node, bool on)
{
	kb_body *p = kb_mp_body("{s:{s:b}}", "spec", "unschedulable", on);
	assert_int_equal(kb_api_patch(t->c, &KB_GVR_NODES, NULL, node, NULL,
			     "merge", p, NULL),
	    0);
}

/* The ReplicaSet's pods tolerate unreachable for 2 s. */
static kb_body *rs_body(void)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}},"
			  " s:{s:[{s:s, s:s}], s:[{s:s, s:s, s:s, s:i}]}}}}",
	    "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name",
	    "ev", "spec", "replicas", 2, "selector", "matchLabels", "app", "ev",
	    "template", "metadata", "labels", "app", "ev", "spec", "containers",
	    "name", "c", "image", "busybox", "tolerations", "key",
	    "node.kubernetes.io/unreachable", "operator", "Exists", "effect",
	    "NoExecute", "tolerationSeconds", 2);
}

/* A bare pod on `gone` that tolerates unreachable for ever. */
static kb_body *stay_body(void)
{
	return kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:[{s:s, s:s}],"
			  " s:[{s:s, s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", "stay",
	    "labels", "app", "stay", "spec", "nodeName", "gone", "containers",
	    "name", "c", "image", "busybox", "tolerations", "key",
	    "node.kubernetes.io/unreachable", "operator", "Exists", "effect",
	    "NoExecute");
}

struct where {
	int gone, live, live_running, deleting, ready_on_gone;
};

static void where_one(void *arg, const msgpack_object *pod)
{
	struct where *w = arg;
	if (kb_mp_get(pod, "metadata.deletionTimestamp")) {
		w->deleting++;
		return;
	}
	if (kb_mp_streq(pod, "spec.nodeName", "gone")) {
		w->gone++;
		const msgpack_object *cs = kb_mp_get(pod, "status.conditions");
		for (uint32_t i = 0; cs && cs->type == MSGPACK_OBJECT_ARRAY &&
		     i < cs->via.array.size;
		     i++)
			if (kb_mp_streq(&cs->via.array.ptr[i], "type",
				"Ready") &&
			    kb_mp_streq(&cs->via.array.ptr[i], "status",
				"True"))
				w->ready_on_gone++;
	}
	if (kb_mp_streq(pod, "spec.nodeName", "live")) {
		w->live++;
		if (kb_mp_streq(pod, "status.phase", "Running"))
			w->live_running++;
	}
}

static struct where where(struct ct *t, const char *sel)
{
	struct where w = { 0 };
	ct_list(t, &KB_GVR_PODS, "default", sel, where_one, &w);
	return w;
}

struct node_state {
	bool unknown, why, nosched, noexec, timed, any_managed, unsched;
	bool nr_nosched, nr_noexec;
};

static struct node_state node_state(struct ct *t, const char *name)
{
	struct node_state s = { 0 };
	kb_msg *m = NULL;
	if (kb_api_get(t->c, &KB_GVR_NODES, NULL, name, &m) == 0) {
		const msgpack_object *n = kb_msg_body(m);
		const msgpack_object *cs = kb_mp_get(n, "status.conditions");
		for (uint32_t i = 0; cs && cs->type == MSGPACK_OBJECT_ARRAY &&
		     i < cs->via.array.size;
		     i++) {
			const msgpack_object *c = &cs->via.array.ptr[i];
			if (!kb_mp_streq(c, "type", "Ready"))
				continue;
			s.unknown = kb_mp_streq(c, "status", "Unknown");
			s.why = kb_mp_streq(c, "reason", "NodeStatusUnknown") &&
			    kb_mp_streq(c, "message",
				"Kubelet stopped posting node status.");
		}
		const msgpack_object *ts = kb_mp_get(n, "spec.taints");
		for (uint32_t i = 0; ts && ts->type == MSGPACK_OBJECT_ARRAY &&
		     i < ts->via.array.size;
		     i++) {
			const msgpack_object *x = &ts->via.array.ptr[i];
			bool unr = kb_mp_streq(x, "key",
			    "node.kubernetes.io/unreachable");
			if (unr && kb_mp_streq(x, "effect", "NoSchedule"))
				s.nosched = true;
			if (unr && kb_mp_streq(x, "effect", "NoExecute")) {
				s.noexec = true;
				s.timed = kb_mp_get(x, "timeAdded") != NULL;
			}
			if (kb_mp_streq(x, "key",
				"node.kubernetes.io/unschedulable"))
				s.unsched = true;
			if (kb_mp_streq(x, "key",
				"node.kubernetes.io/not-ready")) {
				s.nr_nosched |=
				    kb_mp_streq(x, "effect", "NoSchedule");
				s.nr_noexec |=
				    kb_mp_streq(x, "effect", "NoExecute");
			}
			const char *k;
			size_t kl;
			if (kb_mp_str(x, "key", &k, &kl) && kl > 19 &&
			    !memcmp(k, "node.kubernetes.io/", 19))
				s.any_managed = true;
		}
	}
	kb_msg_free(m);
	return s;
}

/* The node controller's Events, as Kubernetes' records them. */
struct nlc_events {
	int registered_gone, not_ready_gone, evictions;
};

static void count_event(void *arg, const msgpack_object *e)
{
	struct nlc_events *v = arg;
	if (!kb_mp_streq(e, "source.component", "node-controller"))
		return;
	bool gone = kb_mp_streq(e, "involvedObject.name", "gone") &&
	    kb_mp_streq(e, "involvedObject.kind", "Node");
	v->registered_gone += gone && kb_mp_streq(e, "reason", "RegisteredNode") &&
	    kb_mp_streq(e, "message",
		"Node gone event: Registered Node gone in Controller");
	v->not_ready_gone += gone && kb_mp_streq(e, "reason", "NodeNotReady") &&
	    kb_mp_streq(e, "message", "Node gone status is now: NodeNotReady");
	const char *m;
	size_t ml;
	v->evictions += kb_mp_streq(e, "reason", "TaintManagerEviction") &&
	    kb_mp_streq(e, "involvedObject.kind", "Pod") &&
	    kb_mp_str(e, "message", &m, &ml) && ml > 34 &&
	    !memcmp(m, "Marking for deletion Pod default/", 33);
}

static struct nlc_events node_events(struct ct *t)
{
	struct nlc_events v = { 0 };
	ct_list(t, &KB_GVR_EVENTS, "default", NULL, count_event, &v);
	return v;
}

static void test_unreachable_node(void **state)
{
	struct ct t = { 0 };
	char conf[2048];
	snprintf(conf, sizeof(conf), controllers_fmt, "0");
	assert_true(ct_start(&t, conf));
	make_node(&t, "gone");
	/* `live` registers; cordoned, so that the pods go to `gone` */
	assert_true(CT_WAIT(10000, ct_exists(&t, &KB_GVR_NODES, NULL, "live")));
	cordon(&t, "live", true);
	assert_true(CT_WAIT(5000, ({
		renew(&t);
		node_state(&t, "live").unsched;
	})));

	kb_msg *m = ct_create(&t, &KB_GVR_REPLICASETS, "default", rs_body());
	assert_non_null(m);
	kb_msg_free(m);
	m = ct_create(&t, &KB_GVR_PODS, "default", stay_body());
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(15000, ({
		renew(&t);
		where(&t, "app=ev").gone == 2;
	})));
	/* play the kubelet of `gone` once: its pods run and are Ready */
	ct_ready_pods(&t, "default", "app=ev");
	ct_ready_pods(&t, "default", "app=stay");
	assert_true(CT_WAIT(5000, ({
		renew(&t);
		where(&t, "app=ev").ready_on_gone == 2;
	})));
	cordon(&t, "live", false);
	/* healthy while renewed: no taint comes */
	for (int i = 0; i < 12; i++) {
		renew(&t);
		ct_sleep_ms(250);
	}
	struct node_state s = node_state(&t, "gone");
	assert_false(s.unknown);
	assert_false(s.any_managed);
	assert_false(node_state(&t, "live").unsched);

	/* the kubelet of `gone` stops: Unknown and tainted after 2 s */
	assert_true(CT_WAIT(10000, ({
		s = node_state(&t, "gone");
		s.unknown &&s.nosched &&s.noexec;
	})));
	assert_true(s.why);
	assert_true(s.timed);
	/* its pods are no longer Ready */
	assert_true(CT_WAIT(5000, where(&t, "app=ev").ready_on_gone == 0));
	/* 2 s later (timeAdded has whole seconds) evicted; the replacements
	 * run on `live` */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(CT_WAIT(20000, where(&t, "app=ev").gone == 0));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long waited = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(waited >= 700);
	assert_true(CT_WAIT(20000, where(&t, "app=ev").live_running == 2));
	/* what `kubectl describe` shows of it: registered, not ready, and
	 * the two evictions */
	struct nlc_events ev = { 0 };
	assert_true(CT_WAIT(5000, ({
		ev = node_events(&t);
		ev.registered_gone == 1 && ev.not_ready_gone == 1 &&
		    ev.evictions == 2;
	})));
	/* tolerating unreachable without a time limit: stays */
	struct where st = where(&t, "app=stay");
	assert_int_equal(st.gone, 1);
	assert_int_equal(st.deleting, 0);
	/* `live` was never touched */
	s = node_state(&t, "live");
	assert_false(s.unknown);
	assert_false(s.any_managed);

	/* the kubelet is back: Lease renewed, Ready posted; the taints go */
	renew(&t);
	post_ready(&t);
	assert_true(CT_WAIT(10000, ({
		renew(&t);
		s = node_state(&t, "gone");
		!s.unknown && !s.any_managed;
	})));
	ct_stop(&t);
}

/* Two nodes go silent with eviction_rate 0.001/s: both Unknown with the
 * NoSchedule taint, only one NoExecute (one token banked). That one then
 * reports Ready=False: unreachable turns into not-ready (a swap, no new
 * token); Ready=True clears it. */
static void test_rate_and_not_ready(void **state)
{
	struct ct t = { 0 };
	char conf[2048];
	snprintf(conf, sizeof(conf), controllers_fmt, "0.001");
	assert_true(ct_start(&t, conf));
	make_node(&t, "a");
	make_node(&t, "b");
	assert_true(CT_WAIT(10000, ct_exists(&t, &KB_GVR_NODES, NULL, "live")));
	struct node_state sa, sb;
	assert_true(CT_WAIT(10000, ({
		sa = node_state(&t, "a");
		sb = node_state(&t, "b");
		sa.unknown &&sb.unknown &&sa.nosched &&sb.nosched &&
		    (sa.noexec || sb.noexec);
	})));
	ct_sleep_ms(600);
	sa = node_state(&t, "a");
	sb = node_state(&t, "b");
	assert_true(sa.noexec != sb.noexec);
	const char *evicting = sa.noexec ? "a" : "b";

	/* its kubelet is back but not ready */
	renew_node(&t, evicting);
	post_ready_node(&t, evicting, "False");
	struct node_state s;
	assert_true(CT_WAIT(10000, ({
		renew_node(&t, evicting);
		s = node_state(&t, evicting);
		s.nr_nosched &&s.nr_noexec && !s.nosched && !s.noexec;
	})));
	assert_false(s.unknown);
	post_ready_node(&t, evicting, "True");
	assert_true(CT_WAIT(10000, ({
		renew_node(&t, evicting);
		!node_state(&t, evicting).any_managed;
	})));
	ct_stop(&t);
}

static void test_bad_config(void **state)
{
	char err[1024];
	struct kbt_host *h = kbt_host_start(
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "  - name: nlc\n"
	    "    use: ctrl-nodelifecycle\n"
	    "    config: {grace_period: 0}\n",
	    err, sizeof(err));
	if (h)
		kbt_host_stop(h);
	assert_null(h);
	assert_non_null(strstr(err, "grace_period"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unreachable_node),
		cmocka_unit_test(test_rate_and_not_ready),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
