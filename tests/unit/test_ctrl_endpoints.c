/* tests/unit/test_ctrl_endpoints.c — the Endpoints and EndpointSlice
 * controllers through a real host (no kubelet: the test writes pod status
 * itself): subsets grouped as Kubernetes groups them (named targetPorts
 * resolved per pod), ready and not-ready addresses, terminating pods,
 * publishNotReadyAddresses, services without a selector left alone,
 * deletion; slices with their labels, owner, conditions, at most N
 * endpoints each and updated in place; a placeholder for no endpoints; and
 * a host without the controllers leaving objects alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

static const char controllers[] =
    "  - name: ctrl-endpoints\n"
    "    use: ctrl-endpoints\n"
    "    config: {resync: 2s}\n"
    "  - name: ctrl-endpointslice\n"
    "    use: ctrl-endpointslice\n"
    "    config: {resync: 2s, max_endpoints_per_slice: 3}\n";

/* A pod on node n1 with a container port named http. */
static void make_pod(struct ct *t, const char *name, const char *app, int http)
{
	kb_msg *m = ct_create(t, &KB_GVR_PODS, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:[{s:s, s:s,"
		       " s:[{s:s, s:i}]}]}}",
		"apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
		"labels", "app", app, "spec", "nodeName", "n1", "containers",
		"name", "c", "image", "busybox", "ports", "name", "http",
		"containerPort", http));
	assert_non_null(m);
	kb_msg_free(m);
}

static void set_status(struct ct *t, const char *name, const char *ip,
    bool ready)
{
	kb_body *p = kb_mp_body("{s:{s:s, s:[{s:s}], s:s, s:[{s:s, s:s}]}}",
	    "status", "podIP", ip, "podIPs", "ip", ip, "phase", "Running",
	    "conditions", "type", "Ready", "status", ready ? "True" : "False");
	kb_msg *rep = NULL;
	int rc = kb_api_patch(t->c, &KB_GVR_PODS, "default", name, "status",
	    "merge", p, &rep);
	if (rc) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		fail_msg("status of %s: %s: %s", name, kb_err_reason(rc), why);
	}
	kb_msg_free(rep);
}

static void make_svc(struct ct *t, const char *name, const char *app,
    bool publish)
{
	kb_msg *m = ct_create(t, &KB_GVR_SERVICES, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:s}, s:b, s:[{s:s,"
		       " s:i, s:s}, {s:s, s:i, s:i}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name", name,
		"labels", "tier", "front", "spec", "selector", "app", app,
		"publishNotReadyAddresses", publish, "ports", "name", "http",
		"port", 80, "targetPort", "http", "name", "metrics", "port",
		9100, "targetPort", 9100));
	assert_non_null(m);
	kb_msg_free(m);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void append_ips(char *buf, size_t len, const msgpack_object *arr)
{
	char *ips[64];
	size_t n = 0;
	for (uint32_t i = 0; arr && arr->type == MSGPACK_OBJECT_ARRAY &&
	     i < arr->via.array.size && n < 64;
	     i++) {
		const msgpack_object *a = &arr->via.array.ptr[i];
		char *ip = kb_mp_strdup(a, "ip");
		/* each address names its pod and node */
		if (ip && kb_mp_streq(a, "targetRef.kind", "Pod") &&
		    kb_mp_get(a, "targetRef.uid") &&
		    kb_mp_streq(a, "nodeName", "n1"))
			ips[n++] = ip;
		else
			free(ip);
	}
	qsort(ips, n, sizeof(*ips), str_cmp);
	for (size_t i = 0; i < n; i++) {
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    i ? "," : "", ips[i]);
		free(ips[i]);
	}
}

/* The Endpoints as text: "A:ip,ip N:ip P:name/port,…" per subset, subsets
 * sorted, joined by " | "; "none" when absent. */
static char *eps_text(struct ct *t, const char *name)
{
	static char out[4096];
	kb_msg *rep = NULL;
	if (kb_api_get(t->c, &KB_GVR_ENDPOINTS, "default", name, &rep)) {
		kb_msg_free(rep);
		return strcpy(out, "none");
	}
	const msgpack_object *ss = kb_mp_key(kb_msg_body(rep), "subsets");
	char *parts[16];
	size_t n = 0;
	for (uint32_t i = 0; ss && ss->type == MSGPACK_OBJECT_ARRAY &&
	     i < ss->via.array.size && n < 16;
	     i++) {
		const msgpack_object *s = &ss->via.array.ptr[i];
		char buf[1024] = "A:";
		append_ips(buf, sizeof(buf), kb_mp_key(s, "addresses"));
		strcat(buf, " N:");
		append_ips(buf, sizeof(buf), kb_mp_key(s, "notReadyAddresses"));
		strcat(buf, " P:");
		const msgpack_object *ps = kb_mp_key(s, "ports");
		char *pn[16];
		size_t np = 0;
		for (uint32_t j = 0; ps && ps->type == MSGPACK_OBJECT_ARRAY &&
		     j < ps->via.array.size && np < 16;
		     j++) {
			char *nm = kb_mp_strdup(&ps->via.array.ptr[j], "name");
			int64_t port = 0;
			kb_mp_int(&ps->via.array.ptr[j], "port", &port);
			if (asprintf(&pn[np], "%s/%lld", nm ? nm : "",
				(long long)port) >= 0)
				np++;
			free(nm);
		}
		qsort(pn, np, sizeof(*pn), str_cmp);
		for (size_t j = 0; j < np; j++) {
			snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
			    "%s%s", j ? "," : "", pn[j]);
			free(pn[j]);
		}
		parts[n++] = strdup(buf);
	}
	qsort(parts, n, sizeof(*parts), str_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
		    i ? " | " : "", parts[i]);
		free(parts[i]);
	}
	kb_msg_free(rep);
	return out;
}

static bool eps_is(struct ct *t, const char *name, const char *want)
{
	return strcmp(eps_text(t, name), want) == 0;
}

#define ASSERT_EPS(t, name, want)                                              \
	do {                                                                   \
		if (!CT_WAIT(10000, eps_is(t, name, want)))                    \
			fail_msg("endpoints %s: got \"%s\", want \"%s\"",      \
			    name, eps_text(t, name), want);                    \
	} while (0)

static void test_endpoints(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	make_pod(&t, "p1", "web", 8080);
	make_pod(&t, "p2", "web", 8080);
	make_pod(&t, "p3", "web", 9090);
	make_pod(&t, "p4", "web", 8080); /* never gets an IP */
	make_pod(&t, "other", "db", 8080);
	set_status(&t, "p1", "10.1.0.1", true);
	set_status(&t, "p2", "10.1.0.2", true);
	set_status(&t, "p3", "10.1.0.3", true);
	set_status(&t, "other", "10.1.0.9", true);
	make_svc(&t, "web", "web", false);

	/* http resolves to 8080 on p1 and p2 but 9090 on p3: the ports
	 * offered by the same addresses share a subset */
	ASSERT_EPS(&t, "web",
	    "A:10.1.0.1,10.1.0.2 N: P:http/8080 | "
	    "A:10.1.0.1,10.1.0.2,10.1.0.3 N: P:metrics/9100 | "
	    "A:10.1.0.3 N: P:http/9090");
	/* the service's labels are copied */
	kb_msg *ep = NULL;
	assert_int_equal(kb_api_get(t.c, &KB_GVR_ENDPOINTS, "default", "web",
			     &ep),
	    0);
	assert_true(
	    kb_mp_streq(kb_msg_body(ep), "metadata.labels.tier", "front"));
	kb_msg_free(ep);

	/* not ready: notReadyAddresses */
	set_status(&t, "p2", "10.1.0.2", false);
	ASSERT_EPS(&t, "web",
	    "A:10.1.0.1 N:10.1.0.2 P:http/8080 | "
	    "A:10.1.0.1,10.1.0.3 N:10.1.0.2 P:metrics/9100 | "
	    "A:10.1.0.3 N: P:http/9090");
	/* relabelled out of the selector: gone */
	kb_body *p = kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "app",
	    "elsewhere");
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_PODS, "default", "p3", NULL,
			     "merge", p, NULL),
	    0);
	ASSERT_EPS(&t, "web", "A:10.1.0.1 N:10.1.0.2 P:http/8080,metrics/9100");
	/* terminating (graceful deletion on a node, no kubelet to finish it):
	 * out of Endpoints */
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_PODS, "default", "p1", NULL,
			     NULL),
	    0);
	ASSERT_EPS(&t, "web", "A: N:10.1.0.2 P:http/8080,metrics/9100");

	/* publishNotReadyAddresses: every pod with an IP is an address,
	 * terminating ones too */
	make_svc(&t, "pub", "web", true);
	ASSERT_EPS(&t, "pub",
	    "A:10.1.0.1,10.1.0.2 N: P:http/8080,metrics/9100");

	/* headless without ports: addresses only, and the headless label */
	kb_msg *hl = ct_create(&t, &KB_GVR_SERVICES, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:{s:s}}}", "apiVersion",
		"v1", "kind", "Service", "metadata", "name", "hl", "spec",
		"clusterIP", "None", "selector", "app", "web"));
	assert_non_null(hl);
	kb_msg_free(hl);
	ASSERT_EPS(&t, "hl", "A: N:10.1.0.2 P:");
	hl = NULL;
	assert_int_equal(kb_api_get(t.c, &KB_GVR_ENDPOINTS, "default", "hl",
			     &hl),
	    0);
	assert_non_null(kb_mp_get(kb_msg_body(hl),
	    "metadata.labels.service\\.kubernetes\\.io/headless"));
	kb_msg_free(hl);
	/* ExternalName: no Endpoints */
	hl = ct_create(&t, &KB_GVR_SERVICES, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:{s:s}}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name",
		"ext", "spec", "type", "ExternalName", "externalName",
		"example.com", "selector", "app", "web"));
	assert_non_null(hl);
	kb_msg_free(hl);

	/* a service without a selector: its Endpoints are left alone */
	kb_msg *m = ct_create(&t, &KB_GVR_SERVICES, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:[{s:i}]}}", "apiVersion", "v1",
		"kind", "Service", "metadata", "name", "manual", "spec",
		"ports", "port", 80));
	assert_non_null(m);
	kb_msg_free(m);
	m = ct_create(&t, &KB_GVR_ENDPOINTS, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:[{s:[{s:s}], s:[{s:i}]}]}",
		"apiVersion", "v1", "kind", "Endpoints", "metadata", "name",
		"manual", "subsets", "addresses", "ip", "192.0.2.7", "ports",
		"port", 80));
	assert_non_null(m);
	kb_msg_free(m);
	ct_sleep_ms(2500); /* past a resync */
	assert_false(ct_exists(&t, &KB_GVR_ENDPOINTS, "default", "ext"));
	assert_true(
	    kb_api_get(t.c, &KB_GVR_ENDPOINTS, "default", "manual", &m) == 0 &&
	    kb_mp_streq(kb_msg_body(m), "subsets[0].addresses[0].ip",
		"192.0.2.7"));
	kb_msg_free(m);

	/* Endpoints deleted by hand come back; deleted with the service */
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_ENDPOINTS, "default", "pub",
			     NULL, NULL),
	    0);
	ASSERT_EPS(&t, "pub",
	    "A:10.1.0.1,10.1.0.2 N: P:http/8080,metrics/9100");
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_SERVICES, "default", "pub",
			     NULL, NULL),
	    0);
	ASSERT_EPS(&t, "pub", "none");
	ct_stop(&t);
}

/* --- slices ---------------------------------------------------------------------- */

struct slices {
	int n, endpoints, ready, not_ready, terminating, owned, labelled;
	char names[512];
};

static void count_slice(void *arg, const msgpack_object *s)
{
	struct slices *x = arg;
	x->n++;
	const msgpack_object *eps = kb_mp_key(s, "endpoints");
	for (uint32_t i = 0; eps && eps->type == MSGPACK_OBJECT_ARRAY &&
	     i < eps->via.array.size;
	     i++) {
		const msgpack_object *e = &eps->via.array.ptr[i];
		bool r = false, term = false;
		kb_mp_bool(e, "conditions.ready", &r);
		kb_mp_bool(e, "conditions.terminating", &term);
		x->endpoints++;
		x->ready += r;
		x->not_ready += !r;
		x->terminating += term;
	}
	bool ctl = false;
	if (kb_mp_bool(s, "metadata.ownerReferences[0].controller", &ctl) &&
	    ctl &&
	    kb_mp_streq(s, "metadata.ownerReferences[0].kind", "Service"))
		x->owned++;
	if (kb_mp_streq(s, "addressType", "IPv4") &&
	    kb_mp_streq(s,
		"metadata.labels.endpointslice\\.kubernetes\\.io/managed-by",
		"endpointslice-controller.k8s.io") &&
	    kb_mp_streq(s, "metadata.labels.tier", "front") &&
	    kb_mp_get(s, "metadata.generateName"))
		x->labelled++;
	char *name = kb_mp_strdup(s, "metadata.name");
	snprintf(x->names + strlen(x->names),
	    sizeof(x->names) - strlen(x->names), "%s ", name ? name : "?");
	free(name);
}

static struct slices slices_of(struct ct *t, const char *svc)
{
	struct slices x = { 0 };
	char sel[256];
	snprintf(sel, sizeof(sel), "kubernetes.io/service-name=%s", svc);
	ct_list(t, &KB_GVR_ENDPOINTSLICES, "default", sel, count_slice, &x);
	return x;
}

/* The slices' resourceVersions, sorted by name. */
static void add_rv(void *arg, const msgpack_object *s)
{
	char *out = arg;
	char *rv = kb_mp_strdup(s, "metadata.resourceVersion");
	snprintf(out + strlen(out), 256 - strlen(out), "%s ", rv ? rv : "?");
	free(rv);
}

static const char *slice_rvs(struct ct *t, const char *svc)
{
	static char out[256];
	char sel[256];
	out[0] = '\0';
	snprintf(sel, sizeof(sel), "kubernetes.io/service-name=%s", svc);
	ct_list(t, &KB_GVR_ENDPOINTSLICES, "default", sel, add_rv, out);
	return out;
}

static void test_endpointslices(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	char name[16], ip[32];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(ip, sizeof(ip), "10.2.0.%d", i + 1);
		make_pod(&t, name, "slice", 8080);
		set_status(&t, name, ip, true);
	}
	make_svc(&t, "slice", "slice", false);
	/* five endpoints, three per slice at most: two slices */
	assert_true(CT_WAIT(10000, ({
		struct slices s = slices_of(&t, "slice");
		s.n == 2 && s.endpoints == 5 && s.ready == 5 && s.owned == 2 &&
		    s.labelled == 2;
	})));
	struct slices before = slices_of(&t, "slice");
	/* nothing changes: nothing is written again, past a resync */
	char rv1[256], rv2[256];
	snprintf(rv1, sizeof(rv1), "%s", slice_rvs(&t, "slice"));
	ct_sleep_ms(2500);
	snprintf(rv2, sizeof(rv2), "%s", slice_rvs(&t, "slice"));
	assert_string_equal(rv1, rv2);
	/* not ready: the condition flips, in the same slices */
	set_status(&t, "s2", "10.2.0.3", false);
	assert_true(CT_WAIT(10000, slices_of(&t, "slice").not_ready == 1));
	struct slices after = slices_of(&t, "slice");
	assert_int_equal(after.endpoints, 5);
	assert_string_equal(after.names, before.names);

	/* terminating: still there, ready false, terminating true */
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_PODS, "default", "s0", NULL,
			     NULL),
	    0);
	assert_true(CT_WAIT(10000, ({
		struct slices s = slices_of(&t, "slice");
		s.terminating == 1 && s.not_ready == 2 && s.endpoints == 5;
	})));
	assert_string_equal(slices_of(&t, "slice").names, before.names);

	/* a new pod fills the slice with room rather than a new slice */
	make_pod(&t, "s5", "slice", 8080);
	set_status(&t, "s5", "10.2.0.6", true);
	assert_true(CT_WAIT(10000, slices_of(&t, "slice").endpoints == 6));
	after = slices_of(&t, "slice");
	assert_int_equal(after.n, 2);
	assert_string_equal(after.names, before.names);

	/* a pod whose named port is another number: a slice of its own */
	make_pod(&t, "s9", "slice", 9090);
	set_status(&t, "s9", "10.2.0.10", true);
	assert_true(CT_WAIT(10000, ({
		struct slices s = slices_of(&t, "slice");
		s.n == 3 && s.endpoints == 7;
	})));
	assert_true(CT_WAIT(5000, ({
		kb_msg *m = NULL;
		bool found = false;
		if (kb_api_list(t.c, &KB_GVR_ENDPOINTSLICES, "default",
			"kubernetes.io/service-name=slice", NULL, &m) == 0) {
			const msgpack_object *it =
			    kb_mp_key(kb_msg_body(m), "items");
			for (uint32_t i = 0; it && i < it->via.array.size;
			     i++) {
				const msgpack_object *x = &it->via.array.ptr[i];
				int64_t port = 0;
				const msgpack_object *eps =
				    kb_mp_key(x, "endpoints");
				kb_mp_int(x, "ports[0].port", &port);
				found |= port == 9090 && eps &&
				    eps->via.array.size == 1 &&
				    kb_mp_streq(x,
					"endpoints[0].targetRef.name", "s9") &&
				    kb_mp_streq(x, "ports[0].name", "http");
			}
		}
		kb_msg_free(m);
		found;
	})));

	/* no pods: one empty placeholder slice */
	make_svc(&t, "empty", "nothing", false);
	assert_true(CT_WAIT(10000, ({
		struct slices s = slices_of(&t, "empty");
		s.n == 1 && s.endpoints == 0 && s.owned == 1;
	})));
	ct_sleep_ms(500);
	assert_int_equal(slices_of(&t, "empty").n, 1);
	ct_stop(&t);
}

/* Beyond max_capacity addresses: truncated (ready ones kept first) and
 * annotated; back under it, the annotation goes. */
static bool truncated_to(struct ct *t, size_t ready, size_t not_ready,
    bool annotated)
{
	kb_msg *m = NULL;
	bool ok = kb_api_get(t->c, &KB_GVR_ENDPOINTS, "default", "cap", &m) ==
		0 &&
	    kb_mp_streq(kb_msg_body(m),
		"metadata.annotations.endpoints\\.kubernetes\\.io/"
		"over-capacity",
		"truncated") == annotated;
	const msgpack_object *a =
	    ok ? kb_mp_get(kb_msg_body(m), "subsets[0].addresses") : NULL;
	const msgpack_object *n = ok ?
	    kb_mp_get(kb_msg_body(m), "subsets[0].notReadyAddresses") :
	    NULL;
	ok = ok &&
	    (a ? a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == ready :
		 ready == 0) &&
	    (n ? n->type == MSGPACK_OBJECT_ARRAY &&
			n->via.array.size == not_ready :
		 not_ready == 0) &&
	    kb_mp_get(kb_msg_body(m), "subsets[1]") == NULL;
	kb_msg_free(m);
	return ok;
}

static void test_capacity(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t,
	    "  - name: ctrl-endpoints\n"
	    "    use: ctrl-endpoints\n"
	    "    config: {max_capacity: 3}\n"));
	char name[16], ip[32];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		snprintf(ip, sizeof(ip), "10.4.0.%d", i + 1);
		make_pod(&t, name, "cap", 8080);
		set_status(&t, name, ip, i != 0);
	}
	/* one port only: a service of its own */
	kb_msg *m = ct_create(&t, &KB_GVR_SERVICES, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:{s:s}, s:[{s:i, s:s}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name",
		"cap", "spec", "selector", "app", "cap", "ports", "port", 80,
		"targetPort", "http"));
	assert_non_null(m);
	kb_msg_free(m);
	/* three ready and one not: the ready three stay */
	assert_true(CT_WAIT(10000, truncated_to(&t, 3, 0, true)));
	/* c3 terminating (no kubelet ends it): three fit, no annotation */
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_PODS, "default", "c3", NULL,
			     NULL),
	    0);
	assert_true(CT_WAIT(10000, truncated_to(&t, 2, 1, false)));
	ct_stop(&t);
}

/* Endpoints whose Service went while no controller ran are deleted at
 * start (not leader-election records, not a Service's). */
static bool start_on(struct ct *t, const char *dir, const char *controllers)
{
	char yaml[4096], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {data_dir: \"%s\", log_level: warn}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "%s",
	    dir, controllers);
	t->h = kbt_host_start(yaml, err, sizeof(err));
	if (t->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return false;
	}
	const char *groups[] = { "kubus:plugins" };
	t->c = kbt_client(t->h, "tester", "plugin:tester", groups, 1);
	return t->c != NULL;
}

static void test_leftovers(void **state)
{
	struct ct t = { 0 };
	char *dir = kbt_mkdtemp("ctrl-endpoints");
	assert_non_null(dir);
	assert_true(start_on(&t, dir, ""));
	static const char *const names[] = { "gone", "lock" };
	for (int i = 0; i < 2; i++) {
		kb_msg *m = ct_create(&t, &KB_GVR_ENDPOINTS, "default",
		    i == 0 ?
			kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1",
			    "kind", "Endpoints", "metadata", "name", names[i]) :
			kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion",
			    "v1", "kind", "Endpoints", "metadata", "name",
			    names[i], "annotations",
			    "control-plane.alpha.kubernetes.io/leader", "{}"));
		assert_non_null(m);
		kb_msg_free(m);
	}
	make_svc(&t, "kept", "kept", false);
	ct_stop(&t);

	assert_true(start_on(&t, dir,
	    "  - {name: ctrl-endpoints, use: ctrl-endpoints}\n"));
	assert_true(CT_WAIT(10000,
	    !ct_exists(&t, &KB_GVR_ENDPOINTS, "default", "gone")));
	assert_true(CT_WAIT(10000,
	    ct_exists(&t, &KB_GVR_ENDPOINTS, "default", "kept")));
	assert_true(ct_exists(&t, &KB_GVR_ENDPOINTS, "default", "lock"));
	ct_stop(&t);
	kbt_rmrf(dir);
	free(dir);
}

/* The controllers watch pods only from the first Service that selects
 * some (ctrl_watch_lazy): a Service made before its pods, in a host that
 * never had one, still gets them, and a pod change after that too. */
static void test_pods_after_service(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t, controllers));
	make_pod(&t, "early", "late", 8080);
	set_status(&t, "early", "10.4.0.1", true);
	ct_sleep_ms(300);
	make_svc(&t, "late", "late", false);
	ASSERT_EPS(&t, "late", "A:10.4.0.1 N: P:http/8080,metrics/9100");
	make_pod(&t, "after", "late", 8080);
	set_status(&t, "after", "10.4.0.2", false);
	ASSERT_EPS(&t, "late",
	    "A:10.4.0.1 N:10.4.0.2 P:http/8080,metrics/9100");
	assert_true(CT_WAIT(10000, slices_of(&t, "late").endpoints == 2 &&
		slices_of(&t, "late").ready == 1));
	set_status(&t, "after", "10.4.0.2", true);
	ASSERT_EPS(&t, "late", "A:10.4.0.1,10.4.0.2 N: P:http/8080,metrics/9100");
	assert_true(CT_WAIT(10000, slices_of(&t, "late").ready == 2));
	ct_stop(&t);
}

/* A controller left out of the config leaves its objects alone. */
static void test_left_out(void **state)
{
	struct ct t = { 0 };
	assert_true(ct_start(&t,
	    "  - name: ctrl-endpointslice\n"
	    "    use: ctrl-endpointslice\n"));
	make_pod(&t, "lone", "lone", 8080);
	set_status(&t, "lone", "10.3.0.1", true);
	make_svc(&t, "lone", "lone", false);
	/* the slice shows the other controller is up and saw the pod */
	assert_true(CT_WAIT(10000, slices_of(&t, "lone").endpoints == 1));
	ct_sleep_ms(1000);
	assert_false(ct_exists(&t, &KB_GVR_ENDPOINTS, "default", "lone"));
	/* no ctrl-replicaset: a ReplicaSet gets no pods */
	kb_msg *rs = ct_create(&t, &KB_GVR_REPLICASETS, "default",
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}},"
		       " s:{s:[{s:s, s:s}]}}}}",
		"apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata",
		"name", "rs", "spec", "replicas", 2, "selector", "matchLabels",
		"app", "rs", "template", "metadata", "labels", "app", "rs",
		"spec", "containers", "name", "c", "image", "busybox"));
	assert_non_null(rs);
	kb_msg_free(rs);
	ct_sleep_ms(1500);
	assert_int_equal(ct_list(&t, &KB_GVR_PODS, "default", "app=rs", NULL,
			     NULL),
	    0);
	ct_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_endpointslices),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_leftovers),
		cmocka_unit_test(test_left_out),
		cmocka_unit_test(test_pods_after_service),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
