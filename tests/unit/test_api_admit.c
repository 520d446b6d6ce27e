/* tests/unit/test_api_admit.c — admission (plugins/apiserver/admit*.c):
 * Kubernetes' defaults for each kind, each validation rule with its exact
 * message and field path, immutable fields, strict unknown fields at
 * several depths, decode errors, quantities, and real-world manifests
 * passing untouched but for their defaults.
 *
 * util.c's error and DNS helpers have weak stand-ins here, worded as
 * Kubernetes words them: built alone (gcc … admit*.c test_api_admit.c) the
 * stand-ins are used; linked with the API server's objects the real ones
 * win. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

/* --- stand-ins for util.c ---------------------------------------------------- */

#define WEAK __attribute__((weak))

WEAK void api_err(struct api_error *e, int code, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

WEAK void api_err_cause(struct api_error *e, const char *reason,
    const char *field, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!e->causes)
		e->causes = json_array();
	json_array_append_new(e->causes,
	    json_pack("{s:s,s:s,s:s}", "reason", reason, "message", msg,
		"field", field));
	if (!e->code) {
		e->code = 422;
		e->reason = "Invalid";
	}
}

WEAK void api_err_invalid(struct api_error *e, const char *kind,
    const char *name)
{
	snprintf(e->kind, sizeof e->kind, "%s", kind);
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->message, sizeof e->message, "%s \"%s\" is invalid", kind,
	    name);
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool label_ok(const char *s, size_t n)
{
	if (!n || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool subdomain_ok(const char *s)
{
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!label_ok(p, n))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

WEAK const char *api_dns1123_label(const char *s)
{
	if (strlen(s) > 63)
		return "must be no more than 63 characters";
	if (!label_ok(s, strlen(s)) && subdomain_ok(s))
		return "must not contain dots";
	if (!label_ok(s, strlen(s)))
		return "a lowercase RFC 1123 label must consist of lower case "
		       "alphanumeric characters or '-', and must start and end "
		       "with an alphanumeric character (e.g. 'my-name',  or "
		       "'123-abc', regex used for validation is "
		       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
	return NULL;
}

WEAK const char *api_dns1123_subdomain(const char *s)
{
	const char *p = s;

	if (strlen(s) > 253)
		return "must be no more than 253 characters";
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!label_ok(p, n))
			return "a lowercase RFC 1123 subdomain must consist of "
			       "lower case alphanumeric characters, '-' or '.', and "
			       "must start and end with an alphanumeric character "
			       "(e.g. 'example.com', regex used for validation is "
			       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]"
			       "([-a-z0-9]*[a-z0-9])?)*')";
		if (!dot)
			return NULL;
		p = dot + 1;
	}
}

/* --- helpers ------------------------------------------------------------------ */

#define SUBDOMAIN_MSG                                                            \
	"a lowercase RFC 1123 subdomain must consist of lower "                  \
	"case alphanumeric characters, '-' or '.', and must start and end with " \
	"an alphanumeric character (e.g. 'example.com', regex used for "         \
	"validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]"               \
	"([-a-z0-9]*[a-z0-9])?)*')"
#define LABEL_MSG                                                              \
	"a lowercase RFC 1123 label must consist of lower case "               \
	"alphanumeric characters or '-', and must start and end with an "      \
	"alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "   \
	"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

static const struct api_resource res_pod = { .group = "",
	.version = "v1",
	.kind = "Pod",
	.plural = "pods",
	.namespaced = true };
static const struct api_resource res_deploy = { .group = "apps",
	.version = "v1",
	.kind = "Deployment",
	.plural = "deployments",
	.namespaced = true };
static const struct api_resource res_rs = { .group = "apps",
	.version = "v1",
	.kind = "ReplicaSet",
	.plural = "replicasets",
	.namespaced = true };
static const struct api_resource res_svc = { .group = "",
	.version = "v1",
	.kind = "Service",
	.plural = "services",
	.namespaced = true };
static const struct api_resource res_ns = { .group = "",
	.version = "v1",
	.kind = "Namespace",
	.plural = "namespaces" };
static const struct api_resource res_cm = { .group = "",
	.version = "v1",
	.kind = "ConfigMap",
	.plural = "configmaps",
	.namespaced = true };
static const struct api_resource res_secret = { .group = "",
	.version = "v1",
	.kind = "Secret",
	.plural = "secrets",
	.namespaced = true };
static const struct api_resource res_node = { .group = "",
	.version = "v1",
	.kind = "Node",
	.plural = "nodes" };
static const struct api_resource res_ep = { .group = "",
	.version = "v1",
	.kind = "Endpoints",
	.plural = "endpoints",
	.namespaced = true };
static const struct api_resource res_slice = { .group = "discovery.k8s.io",
	.version = "v1",
	.kind = "EndpointSlice",
	.plural = "endpointslices",
	.namespaced = true };
static const struct api_resource res_lease = { .group = "coordination.k8s.io",
	.version = "v1",
	.kind = "Lease",
	.plural = "leases",
	.namespaced = true };
static const struct api_resource res_sa = { .group = "",
	.version = "v1",
	.kind = "ServiceAccount",
	.plural = "serviceaccounts",
	.namespaced = true };
static const struct api_resource res_event = { .group = "",
	.version = "v1",
	.kind = "Event",
	.plural = "events",
	.namespaced = true };

static json_t *J(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	if (!j)
		fail_msg("bad test JSON: %s at %d: %s", err.text, err.line,
		    text);
	return j;
}

/* obj at "a.b[2].c" (keys may not contain '.' or '['; "a['x.y']" is
 * not needed here, use getk for such keys). */
static json_t *get(const json_t *obj, const char *path)
{
	char buf[512], *p = buf, *tok;
	const json_t *cur = obj;

	snprintf(buf, sizeof buf, "%s", path);
	while (cur && (tok = strsep(&p, "."))) {
		char *br = strchr(tok, '[');
		if (br)
			*br = 0;
		if (*tok)
			cur = json_object_get(cur, tok);
		while (cur && br) {
			cur = json_array_get(cur, strtoul(br + 1, NULL, 10));
			br = strchr(br + 1, '[');
		}
	}
	return (json_t *)cur;
}

static const char *gets_(const json_t *obj, const char *path)
{
	json_t *v = get(obj, path);

	if (!json_is_string(v))
		fail_msg("%s is not a string", path);
	return json_string_value(v);
}

static long long geti(const json_t *obj, const char *path)
{
	json_t *v = get(obj, path);

	if (!json_is_integer(v))
		fail_msg("%s is not an integer", path);
	return json_integer_value(v);
}

struct run {
	bool ok;
	struct api_error e;
	json_t *obj;
};

static struct run admit(const struct api_resource *r, const char *text,
    const json_t *old)
{
	struct run run = { 0 };

	run.obj = J(text);
	run.ok = api_admit(r, run.obj, old, &run.e);
	return run;
}

static void done(struct run *run)
{
	json_decref(run->obj);
	json_decref(run->e.causes);
}

/* Status causes omit an empty field. */
static const char *field_of(const json_t *cause)
{
	const char *f = adm_str(cause, "field");
	return f ? f : "";
}

static void dump_causes(const struct api_error *e)
{
	size_t i;
	json_t *c;

	fprintf(stderr, "code %d %s: %s\n", e->code, e->reason ? e->reason : "",
	    e->message);
	json_array_foreach(e->causes, i, c)
		fprintf(stderr, "  %s | %s | %s\n", field_of(c),
		    adm_str(c, "reason"), adm_str(c, "message"));
}

static void expect_cause(const struct api_error *e, const char *reason,
    const char *field, const char *message)
{
	size_t i;
	json_t *c;

	json_array_foreach(e->causes, i, c)
		if (!strcmp(field_of(c), field) &&
		    !strcmp(adm_str(c, "message"), message) &&
		    !strcmp(adm_str(c, "reason"), reason))
			return;
	dump_causes(e);
	fail_msg("no cause %s | %s | %s", field, reason, message);
}

static void expect_prefix(const struct api_error *e, const char *field,
    const char *prefix)
{
	size_t i;
	json_t *c;

	json_array_foreach(e->causes, i, c)
		if (!strcmp(field_of(c), field) &&
		    !strncmp(adm_str(c, "message"), prefix, strlen(prefix)))
			return;
	dump_causes(e);
	fail_msg("no cause at %s starting %s", field, prefix);
}

static void expect_ok(struct run *run)
{
	if (!run->ok) {
		dump_causes(&run->e);
		fail_msg("admission failed");
	}
}

static void expect_invalid(struct run *run, size_t ncauses)
{
	if (run->ok || run->e.code != 422 ||
	    (ncauses && json_array_size(run->e.causes) != ncauses)) {
		dump_causes(&run->e);
		fail_msg("want 422 with %zu causes", ncauses);
	}
}

/* One invalid object: exactly one cause, with this field and message. */
static void one_cause(const struct api_resource *r, const char *text,
    const char *reason, const char *field, const char *message)
{
	struct run run = admit(r, text, NULL);

	expect_invalid(&run, 0);
	expect_cause(&run.e, reason, field, message);
	if (json_array_size(run.e.causes) != 1) {
		dump_causes(&run.e);
		fail_msg("want exactly one cause");
	}
	done(&run);
}

#define POD(spec)                                                              \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"                \
	"{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":" spec "}"
#define C1(extra)                                                              \
	"{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"" extra "}]}"
#define DEPLOY(spec)                                                               \
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","                     \
	"\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":" spec \
	"}"
#define TMPL                                                                   \
	"\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"           \
	"\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx\"}]}}"
#define SEL "\"selector\":{\"matchLabels\":{\"app\":\"web\"}}"
#define SVC(spec)                                                              \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":"            \
	"{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":" spec "}"

/* --- real-world manifests ------------------------------------------------------- */

static const char *nginx_deployment =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
    "\"name\":\"nginx-deployment\",\"namespace\":\"default\",\"labels\":{"
    "\"app\":\"nginx\"}},\"spec\":{\"replicas\":3,\"selector\":{"
    "\"matchLabels\":{\"app\":\"nginx\"}},\"template\":{\"metadata\":{"
    "\"labels\":{\"app\":\"nginx\"}},\"spec\":{\"containers\":[{\"name\":"
    "\"nginx\",\"image\":\"nginx:1.14.2\",\"ports\":[{\"containerPort\":80}],"
    "\"resources\":{\"limits\":{\"cpu\":\"500m\",\"memory\":\"128Mi\"},"
    "\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\"}}}]}}}}";

static const char *nginx_service =
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
    "\"nginx\",\"namespace\":\"default\",\"annotations\":{"
    "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},"
    "\"spec\":{\"selector\":{\"app\":\"nginx\"},\"ports\":[{\"name\":"
    "\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":80}]}}";

static const char *busybox_pod =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
    "\"busybox\",\"namespace\":\"default\",\"labels\":{\"app\":\"bb\","
    "\"app.kubernetes.io/name\":\"busybox\"}},\"spec\":{\"containers\":[{"
    "\"name\":\"busybox\",\"image\":\"busybox:1.36\",\"command\":[\"sh\","
    "\"-c\",\"sleep 3600\"],\"env\":[{\"name\":\"GREETING\",\"value\":"
    "\"hello\"},{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{"
    "\"fieldPath\":\"metadata.name\"}}},{\"name\":\"LEVEL\",\"valueFrom\":{"
    "\"configMapKeyRef\":{\"name\":\"cfg\",\"key\":\"level\"}}}],"
    "\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"},{"
    "\"name\":\"cfg\",\"mountPath\":\"/etc/cfg\",\"readOnly\":true}],"
    "\"livenessProbe\":{\"exec\":{\"command\":[\"true\"]},"
    "\"initialDelaySeconds\":5},\"readinessProbe\":{\"httpGet\":{\"port\":"
    "8080}},\"startupProbe\":{\"tcpSocket\":{\"port\":\"http\"}},\"ports\":"
    "[{\"name\":\"http\",\"containerPort\":8080}]}],\"volumes\":[{\"name\":"
    "\"data\",\"emptyDir\":{}},{\"name\":\"cfg\",\"configMap\":{\"name\":"
    "\"cfg\"}}],\"restartPolicy\":\"Never\"}}";

/* Every value of want is in got unchanged (defaults may add more). */
static void expect_superset(const json_t *got, const json_t *want,
    const char *path)
{
	char sub[512];

	if (json_is_object(want)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)want, k, v) {
			snprintf(sub, sizeof sub, "%s.%s", path, k);
			expect_superset(json_object_get(got, k), v, sub);
		}
	} else if (json_is_array(want)) {
		if (json_array_size(got) != json_array_size(want))
			fail_msg("%s: list length changed", path);
		for (size_t i = 0; i < json_array_size(want); i++) {
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			expect_superset(json_array_get(got, i),
			    json_array_get(want, i), sub);
		}
	} else if (!json_equal((json_t *)got, (json_t *)want)) {
		fail_msg("%s changed", path);
	}
}

static void real_world(const struct api_resource *r, const char *text)
{
	struct run run = admit(r, text, NULL);
	json_t *orig = J(text);
	json_t *unknown = json_array();
	struct api_error e = { 0 };

	expect_ok(&run);
	expect_superset(run.obj, orig, "");
	assert_true(api_check_unknown_fields(r, orig, &e));
	assert_int_equal(e.code, 0);
	/* the admitted object is a fixed point: admitting it again is a
	 * valid no-op update */
	json_t *again = json_deep_copy(run.obj);
	assert_true(api_admit(r, again, run.obj, &e));
	assert_true(json_equal(again, run.obj));
	json_decref(again);
	json_decref(unknown);
	json_decref(orig);
	done(&run);
}

static void test_real_world_manifests(void **state)
{
	(void)state;
	real_world(&res_deploy, nginx_deployment);
	real_world(&res_svc, nginx_service);
	real_world(&res_pod, busybox_pod);
}

/* --- defaults ------------------------------------------------------------------- */

static void test_pod_defaults(void **state)
{
	struct run run = admit(&res_pod, busybox_pod, NULL);
	json_t *o;

	(void)state;
	expect_ok(&run);
	o = run.obj;
	assert_string_equal(gets_(o, "spec.restartPolicy"), "Never");
	assert_string_equal(gets_(o, "spec.dnsPolicy"), "ClusterFirst");
	assert_string_equal(gets_(o, "spec.schedulerName"),
	    "default-scheduler");
	assert_int_equal(geti(o, "spec.terminationGracePeriodSeconds"), 30);
	assert_true(json_is_object(get(o, "spec.securityContext")));
	assert_int_equal(json_object_size(get(o, "spec.securityContext")), 0);
	assert_string_equal(gets_(o, "spec.serviceAccountName"), "default");
	assert_string_equal(gets_(o, "spec.serviceAccount"), "default");
	assert_true(json_is_true(get(o, "spec.enableServiceLinks")));
	assert_int_equal(geti(o, "spec.priority"), 0);
	assert_string_equal(gets_(o, "spec.preemptionPolicy"),
	    "PreemptLowerPriority");
	assert_string_equal(gets_(o, "spec.containers[0].imagePullPolicy"),
	    "IfNotPresent");
	assert_string_equal(gets_(o,
				"spec.containers[0].terminationMessagePath"),
	    "/dev/termination-log");
	assert_string_equal(gets_(o,
				"spec.containers[0].terminationMessagePolicy"),
	    "File");
	assert_string_equal(gets_(o, "spec.containers[0].ports[0].protocol"),
	    "TCP");
	assert_int_equal(json_object_size(
			     get(o, "spec.containers[0].resources")),
	    0);
	assert_string_equal(
	    gets_(o, "spec.containers[0].env[1].valueFrom.fieldRef.apiVersion"),
	    "v1");
	assert_int_equal(geti(o,
			     "spec.containers[0].livenessProbe.timeoutSeconds"),
	    1);
	assert_int_equal(geti(o,
			     "spec.containers[0].livenessProbe.periodSeconds"),
	    10);
	assert_int_equal(geti(o,
			     "spec.containers[0].livenessProbe.successThreshold"),
	    1);
	assert_int_equal(geti(o,
			     "spec.containers[0].livenessProbe.failureThreshold"),
	    3);
	assert_string_equal(gets_(o,
				"spec.containers[0].readinessProbe.httpGet.path"),
	    "/");
	assert_string_equal(gets_(o,
				"spec.containers[0].readinessProbe.httpGet.scheme"),
	    "HTTP");
	assert_int_equal(geti(o, "spec.volumes[1].configMap.defaultMode"), 420);
	assert_int_equal(json_array_size(get(o, "spec.tolerations")), 2);
	assert_string_equal(gets_(o, "spec.tolerations[0].key"),
	    "node.kubernetes.io/not-ready");
	assert_string_equal(gets_(o, "spec.tolerations[1].key"),
	    "node.kubernetes.io/unreachable");
	assert_string_equal(gets_(o, "spec.tolerations[1].effect"),
	    "NoExecute");
	assert_int_equal(geti(o, "spec.tolerations[1].tolerationSeconds"), 300);
	assert_string_equal(gets_(o, "status.phase"), "Pending");
	assert_string_equal(gets_(o, "status.qosClass"), "BestEffort");
	done(&run);
}

static void test_pod_image_pull_policy(void **state)
{
	static const struct {
		const char *image, *policy;
	} cases[] = {
		{ "nginx", "Always" },
		{ "nginx:latest", "Always" },
		{ "nginx:1.25", "IfNotPresent" },
		{ "localhost:5000/nginx", "Always" },
		{ "localhost:5000/nginx:v2", "IfNotPresent" },
		{ "nginx@sha256:0123456789abcdef", "IfNotPresent" },
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text,
		    POD("{\"containers\":[{\"name\":\"c\",\"image\":\"%s\"}]}"),
		    cases[i].image);
		struct run run = admit(&res_pod, text, NULL);
		expect_ok(&run);
		assert_string_equal(gets_(run.obj,
					"spec.containers[0].imagePullPolicy"),
		    cases[i].policy);
		done(&run);
	}
}

static void test_pod_qos_and_requests(void **state)
{
	struct run run = admit(&res_pod,
	    POD(C1(",\"resources\":{\"limits\":"
		   "{\"cpu\":\"0.5\",\"memory\":\"1024Mi\"}}")),
	    NULL);

	(void)state;
	expect_ok(&run);
	/* requests default to limits, in canonical quantities */
	assert_string_equal(gets_(run.obj,
				"spec.containers[0].resources.requests.cpu"),
	    "500m");
	assert_string_equal(gets_(run.obj,
				"spec.containers[0].resources.limits.memory"),
	    "1Gi");
	assert_string_equal(gets_(run.obj, "status.qosClass"), "Guaranteed");
	done(&run);

	run = admit(&res_pod,
	    POD(C1(",\"resources\":{\"requests\":{\"cpu\":\"100m\"}}")), NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "status.qosClass"), "Burstable");
	done(&run);
}

static void test_deployment_defaults(void **state)
{
	struct run run = admit(&res_deploy, DEPLOY("{" SEL "," TMPL "}"), NULL);
	json_t *o;

	(void)state;
	expect_ok(&run);
	o = run.obj;
	assert_int_equal(geti(o, "spec.replicas"), 1);
	assert_string_equal(gets_(o, "spec.strategy.type"), "RollingUpdate");
	assert_string_equal(gets_(o, "spec.strategy.rollingUpdate.maxSurge"),
	    "25%");
	assert_string_equal(gets_(o,
				"spec.strategy.rollingUpdate.maxUnavailable"),
	    "25%");
	assert_int_equal(geti(o, "spec.revisionHistoryLimit"), 10);
	assert_int_equal(geti(o, "spec.progressDeadlineSeconds"), 600);
	assert_string_equal(gets_(o, "spec.template.spec.restartPolicy"),
	    "Always");
	assert_string_equal(gets_(o, "spec.template.spec.dnsPolicy"),
	    "ClusterFirst");
	assert_int_equal(geti(o,
			     "spec.template.spec.terminationGracePeriodSeconds"),
	    30);
	assert_string_equal(gets_(o,
				"spec.template.spec.containers[0].imagePullPolicy"),
	    "Always");
	/* pod-only defaults and admission plugins leave templates alone */
	assert_null(get(o, "spec.template.spec.enableServiceLinks"));
	assert_null(get(o, "spec.template.spec.priority"));
	assert_null(get(o, "spec.template.spec.serviceAccountName"));
	assert_null(get(o, "spec.template.spec.tolerations"));
	assert_int_equal(json_object_size(get(o, "status")), 0);
	done(&run);

	run = admit(&res_deploy,
	    DEPLOY("{" SEL ",\"strategy\":{\"type\":\"Recreate\"}," TMPL "}"),
	    NULL);
	expect_ok(&run);
	assert_null(get(run.obj, "spec.strategy.rollingUpdate"));
	done(&run);
}

static void test_replicaset_defaults(void **state)
{
	struct run run = admit(&res_rs,
	    "{\"apiVersion\":\"apps/v1\",\"kind\":"
	    "\"ReplicaSet\",\"metadata\":{\"name\":\"rs\",\"namespace\":"
	    "\"default\"},\"spec\":{" SEL "," TMPL "}}",
	    NULL);

	(void)state;
	expect_ok(&run);
	assert_int_equal(geti(run.obj, "spec.replicas"), 1);
	assert_string_equal(gets_(run.obj, "spec.template.spec.schedulerName"),
	    "default-scheduler");
	assert_int_equal(geti(run.obj, "status.replicas"), 0);
	done(&run);
}

static void test_service_defaults(void **state)
{
	struct run run = admit(&res_svc,
	    SVC("{\"selector\":{\"app\":\"web\"},\"ports\":[{\"port\":80}]}"),
	    NULL);
	json_t *o;

	(void)state;
	expect_ok(&run);
	o = run.obj;
	assert_string_equal(gets_(o, "spec.type"), "ClusterIP");
	assert_string_equal(gets_(o, "spec.sessionAffinity"), "None");
	assert_string_equal(gets_(o, "spec.ports[0].protocol"), "TCP");
	assert_int_equal(geti(o, "spec.ports[0].targetPort"), 80);
	assert_string_equal(gets_(o, "spec.ipFamilies[0]"), "IPv4");
	assert_int_equal(json_array_size(get(o, "spec.ipFamilies")), 1);
	assert_string_equal(gets_(o, "spec.ipFamilyPolicy"), "SingleStack");
	assert_string_equal(gets_(o, "spec.internalTrafficPolicy"), "Cluster");
	assert_null(get(o, "spec.externalTrafficPolicy"));
	assert_true(json_is_object(get(o, "status.loadBalancer")));
	done(&run);

	run = admit(&res_svc,
	    SVC("{\"type\":\"NodePort\",\"sessionAffinity\":"
		"\"ClientIP\",\"ports\":[{\"port\":80,\"targetPort\":\"http\"}]}"),
	    NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "spec.externalTrafficPolicy"),
	    "Cluster");
	assert_string_equal(gets_(run.obj, "spec.ports[0].targetPort"), "http");
	assert_int_equal(geti(run.obj,
			     "spec.sessionAffinityConfig.clientIP.timeoutSeconds"),
	    10800);
	done(&run);

	/* headless without a selector: dual-stack policy, clusterIPs synced */
	run = admit(&res_svc, SVC("{\"clusterIP\":\"None\"}"), NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "spec.clusterIPs[0]"), "None");
	assert_string_equal(gets_(run.obj, "spec.ipFamilyPolicy"),
	    "RequireDualStack");
	done(&run);

	run = admit(&res_svc,
	    SVC("{\"type\":\"ExternalName\",\"externalName\":\"example.com\"}"),
	    NULL);
	expect_ok(&run);
	assert_null(get(run.obj, "spec.ipFamilies"));
	assert_null(get(run.obj, "spec.internalTrafficPolicy"));
	done(&run);
}

static void test_namespace_secret_defaults(void **state)
{
	struct run run = admit(&res_ns,
	    "{\"apiVersion\":\"v1\",\"kind\":"
	    "\"Namespace\",\"metadata\":{\"name\":\"team-a\",\"namespace\":"
	    "\"ignored\"}}",
	    NULL);

	(void)state;
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "spec.finalizers[0]"), "kubernetes");
	assert_string_equal(gets_(run.obj, "status.phase"), "Active");
	assert_string_equal(adm_str(get(run.obj, "metadata.labels"),
				"kubernetes.io/metadata.name"),
	    "team-a");
	assert_null(get(run.obj, "metadata.namespace"));
	done(&run);

	run = admit(&res_secret,
	    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\","
	    "\"metadata\":{\"name\":\"s\",\"namespace\":\"default\"},"
	    "\"stringData\":{\"user\":\"admin\"},\"data\":{\"a\":\"YQ==\"}}",
	    NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "type"), "Opaque");
	assert_string_equal(gets_(run.obj, "data.user"), "YWRtaW4=");
	assert_string_equal(gets_(run.obj, "data.a"), "YQ==");
	assert_null(get(run.obj, "stringData"));
	done(&run);
}

static void test_infra_defaults(void **state)
{
	struct run run = admit(&res_ep,
	    "{\"metadata\":{\"name\":\"web\","
	    "\"namespace\":\"default\"},\"subsets\":[{\"addresses\":[{\"ip\":"
	    "\"10.1.0.5\"}],\"ports\":[{\"port\":80}]}]}",
	    NULL);

	(void)state;
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "subsets[0].ports[0].protocol"),
	    "TCP");
	done(&run);

	run = admit(&res_slice,
	    "{\"metadata\":{\"name\":\"web-abc\","
	    "\"namespace\":\"default\"},\"addressType\":\"IPv4\",\"endpoints\":"
	    "[{\"addresses\":[\"10.1.0.5\"]}],\"ports\":[{\"port\":80}]}",
	    NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "ports[0].protocol"), "TCP");
	assert_string_equal(gets_(run.obj, "ports[0].name"), "");
	done(&run);

	run = admit(&res_node,
	    "{\"metadata\":{\"name\":\"node-1\"},\"spec\":{"
	    "\"podCIDR\":\"10.244.1.0/24\"},\"status\":{\"capacity\":{\"cpu\":"
	    "\"4\",\"memory\":\"8192Mi\",\"pods\":\"110\"}}}",
	    NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "spec.podCIDRs[0]"),
	    "10.244.1.0/24");
	assert_string_equal(gets_(run.obj, "status.allocatable.memory"), "8Gi");
	done(&run);
}

/* --- quantities ----------------------------------------------------------------- */

static void test_quantities(void **state)
{
	static const char *const cases[][2] = {
		{ "0.5", "500m" },
		{ "1024Mi", "1Gi" },
		{ "1.5Gi", "1536Mi" },
		{ "1000m", "1" },
		{ "100m", "100m" },
		{ "1e3", "1e3" },
		{ "2000k", "2M" },
		{ "128974848", "128974848" },
		{ "129e6", "129e6" },
		{ "129M", "129M" },
		{ "123Mi", "123Mi" },
		{ "0.1", "100m" },
		{ "1Ki", "1Ki" },
		{ "1.5", "1500m" },
		{ "1.5k", "1500" },
		{ "0", "0" },
		{ "512Ki", "512Ki" },
		{ "0.1m", "100u" },
		{ "-1", "-1" },
		{ "1n", "1n" },
	};
	struct adm_qty a, b;
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_null(adm_qty_parse(cases[i][0], &a));
		adm_qty_text(&a, buf, sizeof buf);
		if (strcmp(buf, cases[i][1]))
			fail_msg("%s: got %s, want %s", cases[i][0], buf,
			    cases[i][1]);
	}
	assert_string_equal(adm_qty_parse("1.5.5", &a), ADM_QTY_FORMAT);
	assert_string_equal(adm_qty_parse("abc", &a), ADM_QTY_FORMAT);
	assert_string_equal(adm_qty_parse("", &a), ADM_QTY_FORMAT);
	assert_string_equal(adm_qty_parse("5Gb", &a), ADM_QTY_FORMAT);
	assert_string_equal(adm_qty_parse("5ki", &a), ADM_QTY_SUFFIX);
	assert_null(adm_qty_parse("1Gi", &a));
	assert_null(adm_qty_parse("1073741824", &b));
	assert_int_equal(adm_qty_cmp(&a, &b), 0);
	assert_null(adm_qty_parse("1G", &b));
	assert_true(adm_qty_cmp(&a, &b) > 0);
	/* values below milli round up in resource lists */
	assert_null(adm_qty_parse("0.0001", &a));
	adm_qty_round_milli(&a);
	adm_qty_text(&a, buf, sizeof buf);
	assert_string_equal(buf, "1m");
	/* A long fraction is still its value (found by fuzz-api_select: the
	 * digits once overflowed into the cap at 2^63-1). */
	static const char *const same[][2] = {
		{ "1.000000000000000000000000000000000000000000E", "1E" },
		{ "0.1234567890123456789012345678901234567890", "123456790n" },
		{ "0.000000000000000000000000000000000000000001", "1n" },
		{ "1.00000000000000000000000000000000000000000001Ki",
		    "1024000000001n" },
		{ "0.50000000000000000000000000000000000000000000Ki", "512" },
		{ "0e999999", "0" },
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		assert_null(adm_qty_parse(same[i][0], &a));
		assert_null(adm_qty_parse(same[i][1], &b));
		if (adm_qty_cmp(&a, &b) != 0)
			fail_msg("%s is not %s", same[i][0], same[i][1]);
	}
}

/* --- validation: pods ------------------------------------------------------------- */

static void test_pod_validation(void **state)
{
	(void)state;
	one_cause(&res_pod, POD("{\"containers\":[]}"), "FieldValueRequired",
	    "spec.containers", "Required value");
	one_cause(&res_pod,
	    POD("{\"containers\":[{\"name\":\"Bad_Name\",\"image\":\"x\"}]}"),
	    "FieldValueInvalid", "spec.containers[0].name",
	    "Invalid value: \"Bad_Name\": " LABEL_MSG);
	one_cause(&res_pod, POD("{\"containers\":[{\"name\":\"c\"}]}"),
	    "FieldValueRequired", "spec.containers[0].image", "Required value");
	one_cause(&res_pod,
	    POD("{\"containers\":[{\"name\":\"a\",\"image\":"
		"\"x\"},{\"name\":\"a\",\"image\":\"y\"}]}"),
	    "FieldValueDuplicate", "spec.containers[1].name",
	    "Duplicate value: \"a\"");
	one_cause(&res_pod, POD(C1(",\"ports\":[{\"containerPort\":70000}]")),
	    "FieldValueInvalid", "spec.containers[0].ports[0].containerPort",
	    "Invalid value: 70000: must be between 1 and 65535, inclusive");
	one_cause(&res_pod,
	    POD(C1(",\"ports\":[{\"containerPort\":80,\"protocol\":\"XYZ\"}]")),
	    "FieldValueNotSupported", "spec.containers[0].ports[0].protocol",
	    "Unsupported value: \"XYZ\": "
	    "supported values: \"SCTP\", \"TCP\", \"UDP\"");
	one_cause(&res_pod,
	    POD("{\"restartPolicy\":\"Sometimes\",\"containers\":"
		"[{\"name\":\"c\",\"image\":\"x\"}]}"),
	    "FieldValueNotSupported", "spec.restartPolicy",
	    "Unsupported value: \"Sometimes\": supported "
	    "values: \"Always\", \"OnFailure\", \"Never\"");
	one_cause(&res_pod, POD(C1(",\"imagePullPolicy\":\"Sometimes\"")),
	    "FieldValueNotSupported", "spec.containers[0].imagePullPolicy",
	    "Unsupported value: \"Sometimes\": supported values: \"Always\", "
	    "\"IfNotPresent\", \"Never\"");
	one_cause(&res_pod,
	    POD(C1(",\"resources\":{\"limits\":{\"cpu\":\"1\"},"
		   "\"requests\":{\"cpu\":\"2\"}}")),
	    "FieldValueInvalid", "spec.containers[0].resources.requests",
	    "Invalid value: \"2\": "
	    "must be less than or equal to cpu limit of 1");
	one_cause(&res_pod,
	    POD(C1(",\"resources\":{\"requests\":{\"memory\":\"-1Gi\"}}")),
	    "FieldValueInvalid",
	    "spec.containers[0].resources.requests[memory]",
	    "Invalid value: \"-1Gi\": must be greater than or equal to 0");
	one_cause(&res_pod, POD(C1(",\"env\":[{\"value\":\"x\"}]")),
	    "FieldValueRequired", "spec.containers[0].env[0].name",
	    "Required value");
	one_cause(&res_pod,
	    POD(C1(",\"volumeMounts\":[{\"name\":\"nope\","
		   "\"mountPath\":\"/x\"}]")),
	    "FieldValueNotFound", "spec.containers[0].volumeMounts[0].name",
	    "Not found: \"nope\"");
	one_cause(&res_pod,
	    POD("{\"terminationGracePeriodSeconds\":30,"
		"\"activeDeadlineSeconds\":0,\"containers\":[{\"name\":\"c\","
		"\"image\":\"x\"}]}"),
	    "FieldValueInvalid", "spec.activeDeadlineSeconds",
	    "Invalid value: 0: must be between 1 and 2147483647, inclusive");
	one_cause(&res_pod,
	    POD(C1(",\"livenessProbe\":{\"exec\":{\"command\":"
		   "[\"x\"]},\"successThreshold\":2}")),
	    "FieldValueInvalid",
	    "spec.containers[0].livenessProbe.successThreshold",
	    "Invalid value: 2: must be 1");
	one_cause(&res_pod, POD(C1(",\"readinessProbe\":{}")),
	    "FieldValueRequired", "spec.containers[0].readinessProbe",
	    "Required value: must specify a handler type");
	one_cause(&res_pod,
	    POD("{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{},"
		"\"hostPath\":{\"path\":\"/x\"}}],\"containers\":[{\"name\":\"c\","
		"\"image\":\"x\"}]}"),
	    "FieldValueForbidden", "spec.volumes[0].hostPath",
	    "Forbidden: may not specify more than 1 volume type");
	one_cause(&res_pod,
	    POD("{\"tolerations\":[{\"operator\":\"Equal\","
		"\"value\":\"x\"}],\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}"),
	    "FieldValueInvalid", "spec.tolerations[0].operator",
	    "Invalid value: \"Equal\": operator must be Exists when `key` is "
	    "empty, which means \"match all values and all keys\"");
	one_cause(&res_pod, POD(C1(",\"securityContext\":{\"runAsUser\":-1}")),
	    "FieldValueInvalid", "spec.containers[0].securityContext.runAsUser",
	    "Invalid value: -1: must be between 0 and 2147483647, inclusive");
}

static void test_pod_metadata_validation(void **state)
{
	struct run run;

	(void)state;
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"My_Pod\",\"namespace\":"
	    "\"default\"},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"My_Pod\": " SUBDOMAIN_MSG);
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\"},\"spec\":" C1("") "}",
	    "FieldValueRequired", "metadata.namespace", "Required value");
	one_cause(&res_pod,
	    "{\"metadata\":{\"namespace\":\"default\"},\"spec\":" C1("") "}",
	    "FieldValueRequired", "metadata.name",
	    "Required value: name or generateName is required");
	/* a generateName may end in '-' */
	run = admit(&res_pod,
	    "{\"metadata\":{\"generateName\":\"web-\","
	    "\"namespace\":\"default\"},\"spec\":" C1("") "}",
	    NULL);
	expect_ok(&run);
	done(&run);
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":"
	    "\"default\",\"labels\":{\"-bad\":\"x\"}},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.labels",
	    "Invalid value: \"-bad\": "
	    "name part must consist of alphanumeric characters, '-', '_' or '.', "
	    "and must start and end with an alphanumeric character (e.g. "
	    "'MyName',  or 'my.name',  or '123-abc', regex used for validation "
	    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":"
	    "\"default\",\"labels\":{\"app\":\"a b\"}},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.labels",
	    "Invalid value: \"a b\": a "
	    "valid label must be an empty string or consist of alphanumeric "
	    "characters, '-', '_' or '.', and must start and end with an "
	    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
	    "'12345', regex used for validation is "
	    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":"
	    "\"default\",\"labels\":{\"x\":"
	    "\"0123456789012345678901234567890123456789012345678901234567890123"
	    "\"}},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.labels",
	    "Invalid value: "
	    "\"0123456789012345678901234567890123456789012345678901234567890123\""
	    ": must be no more than 63 characters");
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":"
	    "\"default\",\"annotations\":{\"Example.COM/Key\":\"ok\",\"a/b/c\":"
	    "\"x\"}},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.annotations",
	    "Invalid value: \"a/b/c\": a qualified name "
	    "must consist of alphanumeric characters, '-', '_' or '.', and must "
	    "start and end with an alphanumeric character (e.g. 'MyName',  or "
	    "'my.name',  or '123-abc', regex used for validation is "
	    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
	    "subdomain prefix and '/' (e.g. 'example.com/MyName')");
}

/* --- validation: apps ----------------------------------------------------------------- */

static void test_deployment_validation(void **state)
{
	struct run run;

	(void)state;
	one_cause(&res_deploy, DEPLOY("{\"replicas\":-1," SEL "," TMPL "}"),
	    "FieldValueInvalid", "spec.replicas",
	    "Invalid value: -1: must be greater than or equal to 0");
	one_cause(&res_deploy,
	    DEPLOY("{\"selector\":{\"matchLabels\":{\"app\":"
		   "\"other\"}}," TMPL "}"),
	    "FieldValueInvalid", "spec.template.metadata.labels",
	    "Invalid value: {\"app\":\"web\"}: "
	    "`selector` does not match template `labels`");
	/* no selector: required, and selecting nothing it matches nothing */
	run = admit(&res_deploy, DEPLOY("{" TMPL "}"), NULL);
	expect_invalid(&run, 2);
	expect_cause(&run.e, "FieldValueRequired", "spec.selector",
	    "Required value");
	expect_cause(&run.e, "FieldValueInvalid",
	    "spec.template.metadata.labels",
	    "Invalid value: {\"app\":\"web\"}: `selector` does not match template "
	    "`labels`");
	done(&run);
	one_cause(&res_deploy, DEPLOY("{\"selector\":{}," TMPL "}"),
	    "FieldValueInvalid", "spec.selector",
	    "Invalid value: {}: empty selector is invalid for deployment");
	one_cause(&res_deploy,
	    DEPLOY(
		"{" SEL ",\"template\":{\"metadata\":{"
		"\"labels\":{\"app\":\"web\"}},\"spec\":{\"restartPolicy\":\"Never\","
		"\"containers\":[{\"name\":\"c\",\"image\":\"nginx\"}]}}}"),
	    "FieldValueNotSupported", "spec.template.spec.restartPolicy",
	    "Unsupported value: \"Never\": supported values: \"Always\"");
	one_cause(&res_deploy,
	    DEPLOY("{" SEL ",\"strategy\":{\"type\":\"Foo\"}," TMPL "}"),
	    "FieldValueNotSupported", "spec.strategy",
	    "Unsupported value: {\"Type\":\"Foo\",\"RollingUpdate\":null}: "
	    "supported values: \"Recreate\", \"RollingUpdate\"");
	one_cause(&res_deploy,
	    DEPLOY("{" SEL ",\"strategy\":{\"rollingUpdate\":"
		   "{\"maxSurge\":0,\"maxUnavailable\":0}}," TMPL "}"),
	    "FieldValueInvalid", "spec.strategy.rollingUpdate.maxUnavailable",
	    "Invalid value: 0: may not be 0 when `maxSurge` is 0");
	one_cause(&res_deploy,
	    DEPLOY("{" SEL ",\"strategy\":{\"rollingUpdate\":"
		   "{\"maxSurge\":\"25x\"}}," TMPL "}"),
	    "FieldValueInvalid", "spec.strategy.rollingUpdate.maxSurge",
	    "Invalid value: \"25x\": a "
	    "valid percent string must be a numeric string followed by an ending "
	    "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
	one_cause(&res_deploy,
	    DEPLOY("{" SEL ",\"strategy\":{\"type\":"
		   "\"Recreate\",\"rollingUpdate\":{}}," TMPL "}"),
	    "FieldValueForbidden", "spec.strategy.rollingUpdate",
	    "Forbidden: may not be specified when strategy `type` is 'Recreate'");
	one_cause(&res_deploy,
	    DEPLOY("{" SEL ",\"minReadySeconds\":700," TMPL "}"),
	    "FieldValueInvalid", "spec.progressDeadlineSeconds",
	    "Invalid value: 600: must be greater than minReadySeconds");
	/* errors inside the template carry its path */
	one_cause(&res_deploy,
	    DEPLOY(
		"{" SEL ",\"template\":{\"metadata\":{"
		"\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":"
		"\"c\"}]}}}"),
	    "FieldValueRequired", "spec.template.spec.containers[0].image",
	    "Required value");
}

/* --- validation: services ---------------------------------------------------------------- */

static void test_service_validation(void **state)
{
	struct run run;

	(void)state;
	one_cause(&res_svc,
	    "{\"metadata\":{\"name\":\"my.svc\",\"namespace\":"
	    "\"default\"},\"spec\":{\"ports\":[{\"port\":80}]}}",
	    "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"my.svc\": a "
	    "DNS-1035 label must consist of lower case alphanumeric characters "
	    "or '-', start with an alphabetic character, and end with an "
	    "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used "
	    "for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
	one_cause(&res_svc, SVC("{\"selector\":{\"app\":\"web\"}}"),
	    "FieldValueRequired", "spec.ports", "Required value");
	run = admit(&res_svc,
	    SVC("{\"clusterIP\":\"None\",\"selector\":{\"app\":\"web\"}}"),
	    NULL);
	expect_ok(&run);
	done(&run);
	run = admit(&res_svc, SVC("{\"ports\":[{\"port\":80},{\"port\":81}]}"),
	    NULL);
	expect_invalid(&run, 2);
	expect_cause(&run.e, "FieldValueRequired", "spec.ports[0].name",
	    "Required value");
	expect_cause(&run.e, "FieldValueRequired", "spec.ports[1].name",
	    "Required value");
	done(&run);
	one_cause(&res_svc,
	    SVC("{\"ports\":[{\"name\":\"a\",\"port\":80},"
		"{\"name\":\"a\",\"port\":81}]}"),
	    "FieldValueDuplicate", "spec.ports[1].name",
	    "Duplicate value: \"a\"");
	one_cause(&res_svc,
	    SVC("{\"ports\":[{\"name\":\"a\",\"port\":80},"
		"{\"name\":\"b\",\"port\":80}]}"),
	    "FieldValueDuplicate", "spec.ports[1]",
	    "Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\","
	    "\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}");
	/* the target port defaults to the (bad) port, and fails too */
	run = admit(&res_svc, SVC("{\"ports\":[{\"port\":0}]}"), NULL);
	expect_invalid(&run, 2);
	expect_cause(&run.e, "FieldValueInvalid", "spec.ports[0].port",
	    "Invalid value: 0: must be between 1 and 65535, inclusive");
	expect_cause(&run.e, "FieldValueInvalid", "spec.ports[0].targetPort",
	    "Invalid value: 0: must be between 1 and 65535, inclusive");
	done(&run);
	run = admit(&res_svc,
	    SVC("{\"type\":\"Foo\",\"ports\":[{\"port\":80}]}"), NULL);
	expect_invalid(&run, 0);
	expect_cause(&run.e, "FieldValueNotSupported", "spec.type",
	    "Unsupported value: \"Foo\": supported values: \"ClusterIP\", "
	    "\"ExternalName\", \"LoadBalancer\", \"NodePort\"");
	done(&run);
	one_cause(&res_svc,
	    SVC("{\"clusterIP\":\"abc\",\"ports\":[{\"port\":80}]}"),
	    "FieldValueInvalid", "spec.clusterIPs[0]",
	    "Invalid value: \"abc\": must be a valid IP address, (e.g. 10.9.8.7 "
	    "or 2001:db8::ffff)");
	one_cause(&res_svc,
	    SVC("{\"type\":\"NodePort\",\"ports\":[{\"name\":"
		"\"a\",\"port\":80,\"nodePort\":30080},{\"name\":\"b\",\"port\":81,"
		"\"nodePort\":30080}]}"),
	    "FieldValueDuplicate", "spec.ports[1].nodePort",
	    "Duplicate value: 30080");
	one_cause(&res_svc,
	    SVC("{\"ports\":[{\"port\":80,\"nodePort\":30080}]}"),
	    "FieldValueForbidden", "spec.ports[0].nodePort",
	    "Forbidden: may not be used when `type` is 'ClusterIP'");
	one_cause(&res_svc,
	    SVC("{\"sessionAffinity\":\"Sticky\",\"ports\":[{\"port\":80}]}"),
	    "FieldValueNotSupported", "spec.sessionAffinity",
	    "Unsupported value: \"Sticky\": supported values: \"ClientIP\", "
	    "\"None\"");
	one_cause(&res_svc, SVC("{\"type\":\"ExternalName\"}"),
	    "FieldValueRequired", "spec.externalName", "Required value");
}

/* --- validation: the other kinds ---------------------------------------------------------- */

static void test_configmap_secret_validation(void **state)
{
	struct run run;
	char *big;

	(void)state;
	one_cause(&res_cm,
	    "{\"metadata\":{\"name\":\"c\",\"namespace\":"
	    "\"default\"},\"data\":{\"a b\":\"x\"}}",
	    "FieldValueInvalid", "data[a b]",
	    "Invalid value: \"a b\": a valid config key must consist "
	    "of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
	    "'KEY_NAME',  or 'key-name', regex used for validation is "
	    "'[-._a-zA-Z0-9]+')");
	one_cause(&res_cm,
	    "{\"metadata\":{\"name\":\"c\",\"namespace\":"
	    "\"default\"},\"data\":{\"..\":\"x\"}}",
	    "FieldValueInvalid", "data[..]",
	    "Invalid value: \"..\": must not be '..'");
	big = malloc(1024 * 1024 + 200);
	strcpy(big,
	    "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"},"
	    "\"data\":{\"k\":\"");
	size_t at = strlen(big);
	memset(big + at, 'x', 1024 * 1024 + 1);
	strcpy(big + at + 1024 * 1024 + 1, "\"}}");
	one_cause(&res_cm, big, "FieldValueTooLong", "",
	    "Too long: may not be more than 1048576 bytes");
	free(big);
	one_cause(&res_secret,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":"
	    "\"default\"},\"type\":\"kubernetes.io/tls\",\"data\":{\"tls.crt\":"
	    "\"eA==\"}}",
	    "FieldValueRequired", "data[tls.key]", "Required value");
	one_cause(&res_secret,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":"
	    "\"default\"},\"type\":\"kubernetes.io/dockerconfigjson\"}",
	    "FieldValueRequired", "data[.dockerconfigjson]", "Required value");
	run = admit(&res_secret,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":"
	    "\"default\"},\"data\":{\"k\":\"abc!def\"}}",
	    NULL);
	assert_false(run.ok);
	assert_int_equal(run.e.code, 400);
	assert_string_equal(run.e.reason, "BadRequest");
	assert_string_equal(run.e.message,
	    "Secret in version \"v1\" cannot be "
	    "handled as a Secret: illegal base64 data at input byte 3");
	done(&run);
}

static void test_namespace_node_validation(void **state)
{
	(void)state;
	one_cause(&res_ns, "{\"metadata\":{\"name\":\"Team.A\"}}",
	    "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"Team.A\": " LABEL_MSG);
	one_cause(&res_ns, "{\"metadata\":{\"name\":\"team.a\"}}",
	    "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"team.a\": must not contain dots");
	one_cause(&res_ns,
	    "{\"metadata\":{\"name\":\"a\"},\"spec\":{"
	    "\"finalizers\":[\"custom\"]}}",
	    "FieldValueInvalid", "spec.finalizers",
	    "Invalid value: \"custom\": name is neither a "
	    "standard finalizer name nor is it fully qualified");
	one_cause(&res_node,
	    "{\"metadata\":{\"name\":\"n1\"},\"spec\":{"
	    "\"taints\":[{\"key\":\"k\",\"effect\":\"Sometimes\"}]}}",
	    "FieldValueNotSupported", "metadata.taints[0].effect",
	    "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", "
	    "\"PreferNoSchedule\", \"NoExecute\"");
	one_cause(&res_node,
	    "{\"metadata\":{\"name\":\"n1\"},\"spec\":{"
	    "\"podCIDRs\":[\"10.0.0.0/33\"]}}",
	    "FieldValueInvalid", "spec.podCIDRs[0]",
	    "Invalid value: \"10.0.0.0/33\": must be a valid "
	    "CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
	one_cause(&res_node,
	    "{\"metadata\":{\"name\":\"n1\"},\"status\":{"
	    "\"capacity\":{\"cpu\":\"4\"},\"allocatable\":{\"cpu\":\"-1\"}}}",
	    "FieldValueInvalid", "status.allocatable.cpu",
	    "Invalid value: \"-1\": must be greater than or equal to 0");
}

static void test_infra_validation(void **state)
{
	(void)state;
	one_cause(&res_ep,
	    "{\"metadata\":{\"name\":\"e\",\"namespace\":"
	    "\"default\"},\"subsets\":[{\"ports\":[{\"port\":80}]}]}",
	    "FieldValueRequired", "subsets[0]",
	    "Required value: must specify `addresses` or `notReadyAddresses`");
	one_cause(&res_ep,
	    "{\"metadata\":{\"name\":\"e\",\"namespace\":"
	    "\"default\"},\"subsets\":[{\"addresses\":[{\"ip\":\"127.0.0.1\"}]}]}",
	    "FieldValueInvalid", "subsets[0].addresses[0].ip",
	    "Invalid value: \"127.0.0.1\": may not be in the loopback range "
	    "(127.0.0.0/8, ::1/128)");
	one_cause(&res_slice,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":"
	    "\"default\"},\"addressType\":\"IPv5\"}",
	    "FieldValueNotSupported", "addressType",
	    "Unsupported value: \"IPv5\": supported values: "
	    "\"FQDN\", \"IPv4\", \"IPv6\"");
	one_cause(&res_slice,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":"
	    "\"default\"},\"addressType\":\"IPv4\",\"endpoints\":[{"
	    "\"addresses\":[\"::1\"]}]}",
	    "FieldValueInvalid", "endpoints[0].addresses[0]",
	    "Invalid value: \"::1\": must be a valid IPv4 address");
	one_cause(&res_lease,
	    "{\"metadata\":{\"name\":\"l\",\"namespace\":"
	    "\"default\"},\"spec\":{\"leaseDurationSeconds\":0}}",
	    "FieldValueInvalid", "spec.leaseDurationSeconds",
	    "Invalid value: 0: must be greater than 0");
	one_cause(&res_sa,
	    "{\"metadata\":{\"name\":\"Bad\",\"namespace\":\"default\"}}",
	    "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"Bad\": " SUBDOMAIN_MSG);
	one_cause(&res_event,
	    "{\"metadata\":{\"name\":\"e.1\",\"namespace\":"
	    "\"default\"},\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":"
	    "\"other\",\"name\":\"p\"},\"reason\":\"Started\"}",
	    "FieldValueInvalid", "involvedObject.namespace",
	    "Invalid value: \"other\": does not match event.namespace");
}

/* --- updates and immutable fields ---------------------------------------------------------- */

static json_t *created(const struct api_resource *r, const char *text)
{
	struct run run = admit(r, text, NULL);
	json_t *obj;

	expect_ok(&run);
	obj = json_incref(run.obj);
	json_object_set_new(adm_obj(obj, "metadata"), "uid",
	    json_string("1234"));
	json_object_set_new(adm_obj(obj, "metadata"), "creationTimestamp",
	    json_string("2026-01-01T00:00:00Z"));
	json_object_set_new(adm_obj(obj, "metadata"), "resourceVersion",
	    json_string("5"));
	done(&run);
	return obj;
}

/* Update old with a change made by fn; the admission result. */
static struct run update(const struct api_resource *r, const json_t *old,
    void (*fn)(json_t *obj))
{
	struct run run = { 0 };

	run.obj = json_deep_copy(old);
	fn(run.obj);
	run.ok = api_admit(r, run.obj, old, &run.e);
	return run;
}

static void rename_obj(json_t *o)
{
	json_object_set_new(adm_obj(o, "metadata"), "name", json_string("b"));
}

static void change_uid(json_t *o)
{
	json_object_set_new(adm_obj(o, "metadata"), "uid", json_string("999"));
}

static void drop_system_fields(json_t *o)
{
	json_object_del(adm_obj(o, "metadata"), "uid");
	json_object_set_new(adm_obj(o, "metadata"), "creationTimestamp",
	    json_string("2030-01-01T00:00:00Z"));
	json_object_set_new(adm_obj(o, "metadata"), "labels",
	    json_pack("{s:s}", "new", "label"));
}

static void change_selector(json_t *o)
{
	json_object_set_new(get(o, "spec.selector.matchLabels"), "app",
	    json_string("other"));
	json_object_set_new(get(o, "spec.template.metadata.labels"), "app",
	    json_string("other"));
}

static void scale(json_t *o)
{
	json_object_set_new(adm_obj(o, "spec"), "replicas", json_integer(5));
}

static void test_immutable_meta_and_selector(void **state)
{
	json_t *old = created(&res_deploy, nginx_deployment);
	struct run run;

	(void)state;
	run = update(&res_deploy, old, rename_obj);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"b\": field is immutable");
	done(&run);
	run = update(&res_deploy, old, change_uid);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueInvalid", "metadata.uid",
	    "Invalid value: \"999\": field is immutable");
	done(&run);
	/* a missing uid and a new creationTimestamp are taken from the old
	 * object, as Kubernetes does */
	run = update(&res_deploy, old, drop_system_fields);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "metadata.uid"), "1234");
	assert_string_equal(gets_(run.obj, "metadata.creationTimestamp"),
	    "2026-01-01T00:00:00Z");
	done(&run);
	run = update(&res_deploy, old, change_selector);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueInvalid", "spec.selector",
	    "Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: field is "
	    "immutable");
	done(&run);
	run = update(&res_deploy, old, scale);
	expect_ok(&run);
	done(&run);
	json_decref(old);
}

static void set_restart_never(json_t *o)
{
	json_object_set_new(adm_obj(o, "spec"), "restartPolicy",
	    json_string("Always"));
}

static void set_image(json_t *o)
{
	json_object_set_new(get(o, "spec.containers[0]"), "image",
	    json_string("busybox:1.37"));
	json_object_set_new(adm_obj(o, "spec"), "activeDeadlineSeconds",
	    json_integer(60));
}

static void add_container(json_t *o)
{
	json_array_append_new(get(o, "spec.containers"),
	    json_pack("{s:s,s:s}", "name", "extra", "image", "x"));
}

static void drop_toleration(json_t *o)
{
	json_array_remove(get(o, "spec.tolerations"), 0);
}

static void test_pod_update(void **state)
{
	json_t *old = created(&res_pod, busybox_pod);
	struct run run;

	(void)state;
	run = update(&res_pod, old, set_image);
	expect_ok(&run);
	done(&run);
	run = update(&res_pod, old, set_restart_never);
	expect_invalid(&run, 1);
	expect_prefix(&run.e, "spec",
	    "Forbidden: pod updates may not change "
	    "fields other than `spec.containers[*].image`,"
	    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
	    "`spec.tolerations` (only additions to existing tolerations),"
	    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
	    "was previously negative)\n");
	done(&run);
	run = update(&res_pod, old, add_container);
	expect_invalid(&run, 0);
	expect_cause(&run.e, "FieldValueForbidden", "spec.containers",
	    "Forbidden: pod updates may not add or remove containers");
	done(&run);
	/* DefaultTolerationSeconds puts a removed default toleration back */
	run = update(&res_pod, old, drop_toleration);
	expect_ok(&run);
	done(&run);
	json_decref(old);
}

static void change_cluster_ip(json_t *o)
{
	json_object_set_new(adm_obj(o, "spec"), "clusterIP",
	    json_string("10.96.0.99"));
}

static void forget_cluster_ip(json_t *o)
{
	json_object_del(adm_obj(o, "spec"), "clusterIP");
	json_object_del(adm_obj(o, "spec"), "clusterIPs");
}

static void change_secret_type(json_t *o)
{
	json_object_set_new(o, "type", json_string("kubernetes.io/tls"));
	json_object_set_new(o, "data",
	    json_pack("{s:s,s:s}", "tls.crt", "eA==", "tls.key", "eA=="));
}

static void test_service_and_secret_update(void **state)
{
	json_t *old = created(&res_svc,
	    SVC("{\"clusterIP\":\"10.96.0.11\",\"ports\":[{\"port\":80}]}"));
	struct run run;

	(void)state;
	assert_string_equal(gets_(old, "spec.clusterIPs[0]"), "10.96.0.11");
	run = update(&res_svc, old, change_cluster_ip);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueInvalid", "spec.clusterIPs[0]",
	    "Invalid value: [\"10.96.0.99\"]: may not change once set");
	done(&run);
	/* a replace without the allocated IP keeps it */
	run = update(&res_svc, old, forget_cluster_ip);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "spec.clusterIP"), "10.96.0.11");
	done(&run);
	json_decref(old);

	old = created(&res_secret,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":"
	    "\"default\"},\"data\":{\"a\":\"YQ==\"}}");
	run = update(&res_secret, old, change_secret_type);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueInvalid", "type",
	    "Invalid value: \"kubernetes.io/tls\": field is immutable");
	done(&run);
	json_decref(old);
}

/* --- unknown fields and decoding ------------------------------------------------------------ */

static void test_unknown_fields(void **state)
{
	const char *text = DEPLOY(
	    "{\"foo\":1," SEL ",\"template\":{"
	    "\"metadata\":{\"labels\":{\"app\":\"web\"},\"bogus\":true},\"spec\":{"
	    "\"containers\":[{\"name\":\"c\",\"image\":\"nginx\",\"imagex\":"
	    "\"y\"}]}}},\"status\":{\"bar\":1},\"extra\":{}");
	struct api_error e = { 0 };
	json_t *obj = J(text);

	(void)state;
	assert_false(api_check_unknown_fields(&res_deploy, obj, &e));
	assert_int_equal(e.code, 400);
	assert_string_equal(e.reason, "BadRequest");
	assert_string_equal(e.message,
	    "Deployment in version \"v1\" cannot be "
	    "handled as a Deployment: strict decoding error: unknown field "
	    "\"spec.foo\", unknown field \"spec.template.metadata.bogus\", "
	    "unknown field \"spec.template.spec.containers[0].imagex\", unknown "
	    "field \"status.bar\", unknown field \"extra\"");
	assert_int_equal(json_array_size(e.causes), 5);
	expect_cause(&e, "FieldValueInvalid",
	    "spec.template.spec.containers[0].imagex",
	    "unknown field \"spec.template.spec.containers[0].imagex\"");
	json_decref(e.causes);
	/* the check leaves the body alone; admission drops them */
	assert_non_null(get(obj, "spec.foo"));
	memset(&e, 0, sizeof e);
	assert_true(api_admit(&res_deploy, obj, NULL, &e));
	assert_null(get(obj, "spec.foo"));
	assert_null(get(obj, "extra"));
	assert_null(get(obj, "spec.template.spec.containers[0].imagex"));
	json_decref(obj);

	/* kinds without a schema are not checked */
	static const struct api_resource other = { .group =
						       "authorization.k8s.io",
		.version = "v1",
		.kind = "SelfSubjectAccessReview" };
	obj = J("{\"spec\":{\"anything\":1}}");
	memset(&e, 0, sizeof e);
	assert_true(api_check_unknown_fields(&other, obj, &e));
	json_decref(obj);
}

static void bad_request(const struct api_resource *r, const char *text,
    const char *message)
{
	struct run run = admit(r, text, NULL);

	assert_false(run.ok);
	if (run.e.code != 400 || strcmp(run.e.message, message)) {
		dump_causes(&run.e);
		fail_msg("want 400: %s", message);
	}
	done(&run);
}

static void test_decode_errors(void **state)
{
	(void)state;
	bad_request(&res_deploy,
	    DEPLOY("{\"replicas\":\"3\"," SEL "," TMPL "}"),
	    "Deployment in version \"v1\" cannot be handled as a Deployment: "
	    "json: cannot unmarshal string into Go struct field "
	    "DeploymentSpec.spec.replicas of type int32");
	bad_request(&res_pod,
	    POD(C1(",\"ports\":[{\"containerPort\":\"80\"}]")),
	    "Pod in version \"v1\" cannot be handled as a Pod: json: cannot "
	    "unmarshal string into Go struct field "
	    "ContainerPort.spec.containers.ports.containerPort of type int32");
	bad_request(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":"
	    "\"default\",\"labels\":{\"a\":1}},\"spec\":" C1("") "}",
	    "Pod in version \"v1\" cannot be handled as a Pod: json: cannot "
	    "unmarshal number into Go struct field ObjectMeta.metadata.labels of "
	    "type string");
	bad_request(&res_pod, POD("{\"restartPolicy\":1,\"containers\":[]}"),
	    "Pod in version \"v1\" cannot be handled as a Pod: json: cannot "
	    "unmarshal number into Go struct field PodSpec.spec.restartPolicy of "
	    "type v1.RestartPolicy");
	bad_request(&res_pod, POD("{\"containers\":{}}"),
	    "Pod in version \"v1\" "
	    "cannot be handled as a Pod: json: cannot unmarshal object into Go "
	    "struct field PodSpec.spec.containers of type []v1.Container");
	bad_request(&res_pod,
	    POD(C1(",\"resources\":{\"limits\":{\"cpu\":\"lots\"}}")),
	    "Pod in version \"v1\" cannot be handled as a Pod: "
	    "quantities must match the regular expression "
	    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
	bad_request(&res_deploy, DEPLOY("{\"replicas\":1.5}"),
	    "Deployment in "
	    "version \"v1\" cannot be handled as a Deployment: json: cannot "
	    "unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas "
	    "of type int32");
}

static void test_decode_normalises(void **state)
{
	struct run run = admit(&res_pod,
	    "{\"metadata\":{\"name\":\"p\","
	    "\"namespace\":\"default\",\"labels\":null,\"creationTimestamp\":"
	    "\"2026-03-01T10:00:00+02:00\"},\"spec\":{\"nodeName\":null,"
	    "\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"resources\":{"
	    "\"requests\":{\"cpu\":0.25,\"memory\":\"1.5Gi\"}}}]}}",
	    NULL);

	(void)state;
	expect_ok(&run);
	assert_null(get(run.obj, "metadata.labels"));
	assert_null(get(run.obj, "spec.nodeName"));
	assert_string_equal(gets_(run.obj, "metadata.creationTimestamp"),
	    "2026-03-01T08:00:00Z");
	assert_string_equal(gets_(run.obj,
				"spec.containers[0].resources.requests.cpu"),
	    "250m");
	assert_string_equal(gets_(run.obj,
				"spec.containers[0].resources.requests.memory"),
	    "1536Mi");
	done(&run);
}

/* A time is written back as decoding reads it, with four-digit years (a
 * pod's status patch decodes the stored status again). */
static void test_decode_times_again(void **state)
{
	static const char *const cases[][2] = {
		{ "0276-11-29T03:00:00+01:00", "0276-11-29T02:00:00Z" },
		{ "0001-01-01T00:30:00Z", "0001-01-01T00:30:00Z" },
		{ "0001-01-01T00:30:00+00:30", "0001-01-01T00:00:00Z" },
		{ "9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59Z" },
	};
	char text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof text,
		    "{\"metadata\":{\"name\":\"p\",\"namespace\":"
		    "\"default\",\"creationTimestamp\":\"%s\"},\"spec\":"
		    "{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
		    cases[i][0]);
		struct run run = admit(&res_pod, text, NULL);
		expect_ok(&run);
		assert_string_equal(gets_(run.obj,
					"metadata.creationTimestamp"),
		    cases[i][1]);
		/* and admitting what it stored changes nothing */
		char *once = json_dumps(run.obj, JSON_COMPACT);
		struct run again = admit(&res_pod, once, NULL);
		expect_ok(&again);
		assert_true(json_equal(again.obj, run.obj));
		free(once);
		done(&again);
		done(&run);
	}
	/* one whose year in UTC has no four digits: refused, since what
	 * would be stored could not be read back */
	bad_request(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\","
	    "\"creationTimestamp\":\"9999-12-31T23:59:59-01:00\"},\"spec\":"
	    "{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
	    "Pod in version \"v1\" cannot be handled as a Pod: parsing time "
	    "\"9999-12-31T23:59:59-01:00\": year outside of range [0,9999] in "
	    "UTC");
}

static void test_meta_details(void **state)
{
	struct run run;

	(void)state;
	one_cause(&res_pod,
	    "{\"metadata\":{\"generateName\":\"Web_\",\"namespace\":"
	    "\"default\"},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.generateName",
	    "Invalid value: \"Web_\": " SUBDOMAIN_MSG);
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\","
	    "\"finalizers\":[\"custom\"]},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.finalizers[0]",
	    "Invalid value: \"custom\": name is neither a standard finalizer "
	    "name nor is it fully qualified");
	one_cause(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\","
	    "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":"
	    "\"ReplicaSet\",\"name\":\"rs\"}]},\"spec\":" C1("") "}",
	    "FieldValueInvalid", "metadata.ownerReferences.uid",
	    "Invalid value: \"\": uid must not be empty");
	run = admit(&res_pod,
	    "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\","
	    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"A\","
	    "\"name\":\"a\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":"
	    "\"v1\",\"kind\":\"B\",\"name\":\"b\",\"uid\":\"2\",\"controller\":"
	    "true}]},\"spec\":" C1("") "}",
	    NULL);
	expect_invalid(&run, 1);
	expect_prefix(&run.e, "metadata.ownerReferences", "Invalid value: [");
	done(&run);
}

static void make_immutable(json_t *o)
{
	json_object_set_new(o, "immutable", json_true());
}

static void change_data(json_t *o)
{
	json_object_set_new(adm_obj(o, "data"), "k", json_string("new"));
}

static void test_immutable_configmap(void **state)
{
	json_t *old = created(&res_cm,
	    "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"},"
	    "\"data\":{\"k\":\"v\"},\"immutable\":true}");
	json_t *mutable = created(&res_cm,
	    "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"},"
	    "\"data\":{\"k\":\"v\"}}");
	struct run run;

	(void)state;
	run = update(&res_cm, old, change_data);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueForbidden", "data",
	    "Forbidden: field is immutable when `immutable` is set");
	done(&run);
	run = update(&res_cm, mutable, make_immutable);
	expect_ok(&run);
	done(&run);
	run = update(&res_cm, mutable, change_data);
	expect_ok(&run);
	done(&run);
	json_decref(old);
	json_decref(mutable);
}

static void raise_deadline(json_t *o)
{
	json_object_set_new(adm_obj(o, "spec"), "activeDeadlineSeconds",
	    json_integer(100));
}

static void edit_toleration(json_t *o)
{
	json_object_set_new(get(o, "spec.tolerations[0]"), "effect",
	    json_string("PreferNoSchedule"));
}

static void test_pod_update_rules(void **state)
{
	json_t *old = created(&res_pod,
	    POD("{\"activeDeadlineSeconds\":60,\"tolerations\":[{\"key\":\"a\","
		"\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],"
		"\"containers\":[{\"name\":\"c\","
		"\"image\":\"x\"}]}"));
	struct run run;

	(void)state;
	run = update(&res_pod, old, raise_deadline);
	expect_invalid(&run, 1);
	expect_cause(&run.e, "FieldValueInvalid", "spec.activeDeadlineSeconds",
	    "Invalid value: 100: must be less than or equal to previous value");
	done(&run);
	run = update(&res_pod, old, edit_toleration);
	expect_invalid(&run, 0);
	expect_cause(&run.e, "FieldValueForbidden", "spec.tolerations",
	    "Forbidden: existing toleration can not be modified except its "
	    "tolerationSeconds");
	done(&run);
	json_decref(old);
}

static void test_slices_and_events(void **state)
{
	struct run run;

	(void)state;
	run = admit(&res_slice,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"default\"},"
	    "\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":["
	    "\"db.example.com\"],\"conditions\":{\"ready\":true}}]}",
	    NULL);
	expect_ok(&run);
	done(&run);
	one_cause(&res_slice,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"default\"},"
	    "\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":[\"db\"]}]}",
	    "FieldValueInvalid", "endpoints[0].addresses[0]",
	    "Invalid value: \"db\": should be a domain with at least two "
	    "segments separated by dots");
	one_cause(&res_slice,
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"default\"},"
	    "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[]}]}",
	    "FieldValueRequired", "endpoints[0].addresses",
	    "Required value: must contain at least 1 address");
	/* kubelet-style events: the lease times are MicroTimes */
	run = admit(&res_event,
	    "{\"metadata\":{\"name\":\"p.1\",\"namespace\":\"default\"},"
	    "\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":\"default\","
	    "\"name\":\"p\"},\"reason\":\"Pulled\",\"message\":\"ok\","
	    "\"type\":\"Normal\",\"count\":1,\"firstTimestamp\":"
	    "\"2026-01-01T00:00:00Z\",\"source\":{\"component\":\"kubelet\"}}",
	    NULL);
	expect_ok(&run);
	done(&run);
	run = admit(&res_lease,
	    "{\"metadata\":{\"name\":\"node-1\",\"namespace\":"
	    "\"kube-node-lease\"},\"spec\":{\"holderIdentity\":\"node-1\","
	    "\"leaseDurationSeconds\":40,\"renewTime\":"
	    "\"2026-01-01T00:00:01.5Z\"}}",
	    NULL);
	expect_ok(&run);
	assert_string_equal(gets_(run.obj, "spec.renewTime"),
	    "2026-01-01T00:00:01.500000Z");
	done(&run);
}

static void test_priority_admission(void **state)
{
	struct run run = admit(&res_pod,
	    POD("{\"priority\":5,\"containers\":[{"
		"\"name\":\"c\",\"image\":\"x\"}]}"),
	    NULL);

	(void)state;
	assert_false(run.ok);
	assert_int_equal(run.e.code, 403);
	assert_string_equal(run.e.message,
	    "pods \"p\" is forbidden: the integer "
	    "value of priority (5) must not be provided in pod spec; priority "
	    "admission controller computed 0 from the given PriorityClass name");
	done(&run);
	run = admit(&res_pod,
	    POD("{\"priorityClassName\":\"system-node-critical\","
		"\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}"),
	    NULL);
	expect_ok(&run);
	assert_int_equal(geti(run.obj, "spec.priority"), 2000001000);
	done(&run);
}

/* The registry's hooks are the same functions: called directly they
 * default and validate as api_admit() does. */
static void test_hooks_directly(void **state)
{
	json_t *obj = J(DEPLOY("{\"replicas\":-2," SEL "," TMPL "}"));
	struct api_error e = { 0 };

	(void)state;
	api_default_deployment(obj, NULL);
	assert_int_equal(geti(obj, "spec.revisionHistoryLimit"), 10);
	api_validate_deployment(obj, NULL, &e);
	assert_int_equal(e.code, 422);
	expect_cause(&e, "FieldValueInvalid", "spec.replicas",
	    "Invalid value: -2: must be greater than or equal to 0");
	json_decref(e.causes);
	json_decref(obj);
}

static void ref_path(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ref_path(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, ADM_PATH, fmt, ap);
	va_end(ap);
}

/* adm_path writes "%s" and "%zu" itself: the same text and cut as
 * snprintf into ADM_PATH bytes. */
static void test_adm_path_as_snprintf(void **state)
{
	(void)state;
	char a[ADM_PATH], b[ADM_PATH], s1[800], s2[700];
	unsigned seed = 3;
	for (int it = 0; it < 30000; it++) {
		size_t l1 = (size_t)rand_r(&seed) % (it % 10 ? 20 : 700);
		size_t l2 = (size_t)rand_r(&seed) % 600;
		for (size_t i = 0; i < l1; i++)
			s1[i] = (char)('a' + rand_r(&seed) % 26);
		s1[l1] = '\0';
		for (size_t i = 0; i < l2; i++)
			s2[i] = (char)('A' + rand_r(&seed) % 26);
		s2[l2] = '\0';
		size_t x = (size_t)rand_r(&seed) * (it % 3 ? 1 : 1000003);
		size_t y = (size_t)rand_r(&seed) % 10;
		switch (it % 5) {
		case 0:
			adm_path(a, "%s.name", s1);
			ref_path(b, "%s.name", s1);
			break;
		case 1:
			adm_path(a, "%s[%zu]", s1, x);
			ref_path(b, "%s[%zu]", s1, x);
			break;
		case 2:
			adm_path(a, "%s.%s", s1, s2);
			ref_path(b, "%s.%s", s1, s2);
			break;
		case 3:
			adm_path(a, "%s.containers[%zu].ports[%zu].hostPort", s1, x, y);
			ref_path(b, "%s.containers[%zu].ports[%zu].hostPort", s1, x, y);
			break;
		default:
			adm_path(a, "%s[%d]", s1, (int)y); /* not ours: vsnprintf */
			ref_path(b, "%s[%d]", s1, (int)y);
		}
		assert_string_equal(a, b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adm_path_as_snprintf),
		cmocka_unit_test(test_real_world_manifests),
		cmocka_unit_test(test_pod_defaults),
		cmocka_unit_test(test_pod_image_pull_policy),
		cmocka_unit_test(test_pod_qos_and_requests),
		cmocka_unit_test(test_deployment_defaults),
		cmocka_unit_test(test_replicaset_defaults),
		cmocka_unit_test(test_service_defaults),
		cmocka_unit_test(test_namespace_secret_defaults),
		cmocka_unit_test(test_infra_defaults),
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_pod_validation),
		cmocka_unit_test(test_pod_metadata_validation),
		cmocka_unit_test(test_deployment_validation),
		cmocka_unit_test(test_service_validation),
		cmocka_unit_test(test_configmap_secret_validation),
		cmocka_unit_test(test_namespace_node_validation),
		cmocka_unit_test(test_infra_validation),
		cmocka_unit_test(test_immutable_meta_and_selector),
		cmocka_unit_test(test_pod_update),
		cmocka_unit_test(test_service_and_secret_update),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_decode_normalises),
		cmocka_unit_test(test_decode_times_again),
		cmocka_unit_test(test_priority_admission),
		cmocka_unit_test(test_hooks_directly),
		cmocka_unit_test(test_meta_details),
		cmocka_unit_test(test_immutable_configmap),
		cmocka_unit_test(test_pod_update_rules),
		cmocka_unit_test(test_slices_and_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
