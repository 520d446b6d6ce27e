/* tests/e2e/semantics.c — object semantics as Kubernetes has them, each
 * seen through kubectl or raw HTTP: fieldValidation (Strict's 400 and
 * Warn's warnings), tables with includeObject=Object (--sort-by), group-
 * qualified Invalid messages, NamespaceLifecycle before validation, logs of
 * an unscheduled pod, graceful pod deletion, finalizers, generation,
 * status subresources, DeleteOptions preconditions, paging with selectors,
 * events.k8s.io/v1 and event field selectors; on a server of its own with
 * a tiny watch buffer, 410 Expired and bookmarks over HTTP. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "e2e.h"

#define ARGS(...) (snprintf(a, sizeof(a), __VA_ARGS__), a)
#define NS "/api/v1/namespaces/sem"

static const char unknown_cm[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME, namespace: sem}\n"
    "dataa: {x: y}\n";
static const char bound_pod[] =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: gp, namespace: sem}\n"
    "spec:\n  nodeName: node-x\n  containers: [{name: c, image: nginx}]\n";
static const char node_pods[] =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: np, namespace: sem}\n"
    "spec:\n  nodeName: n1\n  containers: [{name: c, image: nginx}]\n"
    "---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: op, namespace: sem}\n"
    "spec:\n  nodeName: n2\n  containers: [{name: c, image: nginx}]\n";
static const char fin_cm[] =
    "apiVersion: v1\nkind: ConfigMap\n"
    "metadata: {name: fin1, namespace: sem, finalizers: [example.com/hold]}\n"
    "data: {a: b}\n";

/* One raw request; passes when the code is `code` and every needle
 * (NULL-terminated) is in the body. */
static bool raw_h(struct e2e *e, const char *name, const char *method,
    const char *path, const char *ctype, const char *body, const char *hdr,
    long code, va_list ap)
{
	struct e2e_resp r;
	bool ok = e2e_http(e, method, path, ctype, body, body ? strlen(body) : 0,
	    e->admin_token, hdr, 30000, &r) && r.code == code;
	const char *miss = NULL;
	for (const char *n; ok && (n = va_arg(ap, const char *));)
		if (strstr(r.body, n) == NULL) {
			ok = false;
			miss = n;
		}
	if (ok)
		e2e_pass(e, name);
	else
		e2e_fail(e, name, "%s %s: expected %ld%s%s, got %ld: %.600s",
		    method, path, code, miss ? " with " : "", miss ? miss : "",
		    r.code, r.body);
	e2e_resp_free(&r);
	return ok;
}

static bool raw(struct e2e *e, const char *name, const char *method,
    const char *path, const char *ctype, const char *body, long code, ...)
    __attribute__((sentinel));
static bool raw(struct e2e *e, const char *name, const char *method,
    const char *path, const char *ctype, const char *body, long code, ...)
{
	va_list ap;
	va_start(ap, code);
	bool ok = raw_h(e, name, method, path, ctype, body, NULL, code, ap);
	va_end(ap);
	return ok;
}

/* The same as a Table, as kubectl get asks. */
static bool raw_table(struct e2e *e, const char *name, const char *path, ...)
    __attribute__((sentinel));
static bool raw_table(struct e2e *e, const char *name, const char *path, ...)
{
	va_list ap;
	va_start(ap, path);
	bool ok = raw_h(e, name, "GET", path, NULL, NULL,
	    "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
	    200, ap);
	va_end(ap);
	return ok;
}

static char *named(struct e2e *e, const char *file, const char *text,
    const char *name)
{
	char buf[1024];
	const char *at = strstr(text, "NAME");
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - text), text, name,
	    at + 4);
	return e2e_file(e, file, buf);
}

static void field_validation(struct e2e *e)
{
	char a[4096], x[1024];
	char *strict = named(e, "sem-strict.yaml", unknown_cm, "strict2");
	char *warn = named(e, "sem-warn.yaml", unknown_cm, "warn1");
	snprintf(x, sizeof(x),
	    "=Error from server (BadRequest): error when creating \"%s\": ConfigMap in version "
	    "\"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field "
	    "\"dataa\"",
	    strict);
	e2e_kubectl(e, "Strict: Kubernetes' 400 wording", 1,
	    ARGS("create -f %s", strict), x, NULL);
	raw(e, "Strict: a 400 Status without causes", "POST",
	    NS "/configmaps?fieldValidation=Strict", "application/json",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"strict3\"},"
	    "\"dataa\":{}}",
	    400,
	    "\"message\":\"ConfigMap in version \\\"v1\\\" cannot be handled as a ConfigMap: "
	    "strict decoding error: unknown field \\\"dataa\\\"\",\"reason\":\"BadRequest\","
	    "\"code\":400}",
	    NULL);
	e2e_kubectl(e, "Warn: created, with kubectl's warning", 0,
	    ARGS("create --validate=warn -f %s", warn),
	    "~^Warning: unknown field \"dataa\"$", "configmap/warn1 created",
	    NULL);
	e2e_kubectl(e, "Warn: the unknown field was dropped", 0,
	    "get cm warn1 -n sem -o json", "!dataa", "\"name\": \"warn1\"",
	    NULL);
	e2e_kubectl(e, "Ignore: no warning", 0,
	    "create --validate=false configmap ign1 -n sem", "!Warning",
	    NULL);
	free(strict);
	free(warn);
}

static void tables_and_errors(struct e2e *e)
{
	e2e_kubectl(e, "sem: create deployment d1", 0,
	    "create deployment d1 -n sem --image=nginx --replicas=3",
	    "=deployment.apps/d1 created", NULL);
	e2e_kubectl(e, "sem: create deployment d2", 0,
	    "create deployment d2 -n sem --image=nginx --replicas=1",
	    "=deployment.apps/d2 created", NULL);
	e2e_sh(e, "get --sort-by a spec field (includeObject=Object)", 0,
	    "KUBECTL get deploy -n sem --sort-by=.spec.replicas 2>&1 | awk '{print $1}' | tr '\\n' ' '",
	    "=NAME d2 d1", NULL);
	raw_table(e, "includeObject=None: rows without objects",
	    "/apis/apps/v1/namespaces/sem/deployments?includeObject=None",
	    "\"kind\":\"Table\"", "{\"cells\":[\"d1\",", "\"app=d1\"]}", NULL);
	raw_table(e, "includeObject=Object: rows with whole objects",
	    "/apis/apps/v1/namespaces/sem/deployments/d1?includeObject=Object",
	    "\"object\":{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\"",
	    "\"replicas\":3", NULL);
	raw_table(e, "by default rows carry PartialObjectMetadata",
	    "/apis/apps/v1/namespaces/sem/deployments/d1",
	    "\"object\":{\"kind\":\"PartialObjectMetadata\"", NULL);
	raw(e, "Invalid names the kind with its group", "POST",
	    "/apis/apps/v1/namespaces/sem/deployments", "application/json",
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"bad\"},"
	    "\"spec\":{\"replicas\":-1,\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
	    "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":"
	    "[{\"name\":\"c\",\"image\":\"nginx\"}]}}}}",
	    422,
	    "\"message\":\"Deployment.apps \\\"bad\\\" is invalid: spec.replicas: Invalid value: -1: "
	    "must be greater than or equal to 0\"",
	    "\"group\":\"apps\"", "\"kind\":\"Deployment\"", NULL);
	e2e_kubectl(e, "a missing namespace before validation", 1,
	    "create configmap Bad_Name -n nosuchns",
	    "=error: failed to create configmap: namespaces \"nosuchns\" not found",
	    NULL);
}

static void pods(struct e2e *e)
{
	char a[4096];
	e2e_kubectl(e, "sem: run an unscheduled pod", 0,
	    "run lp -n sem --image=nginx", "=pod/lp created", NULL);
	e2e_kubectl(e, "logs of an unscheduled pod: empty", 0, "logs lp -n sem",
	    "=", NULL);
	raw(e, "logs of a container the pod lacks", "GET",
	    NS "/pods/lp/log?container=nosuch", NULL, NULL, 400,
	    "\"message\":\"container nosuch is not valid for pod lp\"",
	    "\"reason\":\"BadRequest\"", NULL);
	char *f = e2e_file(e, "sem-bound.yaml", bound_pod);
	e2e_kubectl(e, "sem: create a bound pod", 0, ARGS("create -f %s", f),
	    "=pod/gp created", NULL);
	e2e_kubectl(e, "graceful delete of a bound pod", 0,
	    "delete pod gp -n sem --wait=false", "=pod \"gp\" deleted", NULL);
	e2e_kubectl(e, "the pod stays, with its grace period", 0,
	    "get pod gp -n sem -o jsonpath='{.metadata.deletionGracePeriodSeconds} {.metadata.deletionTimestamp}'",
	    "~^30 20[0-9-]+T[0-9:]+Z$", NULL);
	e2e_kubectl(e, "a deleting pod is Terminating", 0, "get pod gp -n sem",
	    "~^gp +0/1 +Terminating +0 +", NULL);
	e2e_kubectl(e, "--grace-period=0 --force removes it at once", 0,
	    "delete pod gp -n sem --grace-period=0 --force",
	    "pod \"gp\" force deleted", NULL);
	e2e_kubectl(e, "the force-deleted pod is gone", 1, "get pod gp -n sem",
	    "=Error from server (NotFound): pods \"gp\" not found", NULL);
	free(f);
}

/* The kubelet of n1 (node:n1) writes only what is bound to n1. */
static void node_restriction(struct e2e *e)
{
	char a[4096];
	const char *t = e->node_token;
	char *f = e2e_file(e, "sem-node-pods.yaml", node_pods);
	e2e_kubectl(e, "sem: pods on n1 and n2", 0, ARGS("create -f %s", f),
	    "pod/np created", "pod/op created", NULL);
	e2e_kubectl(e, "a node reads pods", 0,
	    ARGS("--token=%s get pod op -n sem -o name", t), "=pod/op", NULL);
	e2e_kubectl(e, "a node writes the status of its own pod", 0,
	    ARGS("--token=%s patch pod np -n sem --subresource=status --type=merge "
		 "-p '{\"status\":{\"phase\":\"Running\"}}'",
		t),
	    "=pod/np patched", NULL);
	e2e_kubectl(e, "NodeRestriction: not another node's pod status", 1,
	    ARGS("--token=%s patch pod op -n sem --subresource=status --type=merge "
		 "-p '{\"status\":{\"phase\":\"Running\"}}'",
		t),
	    "=Error from server (Forbidden): pods \"op\" is forbidden: node \"n1\" can only "
	    "update pod status for pods with spec.nodeName set to itself",
	    NULL);
	e2e_kubectl(e, "NodeRestriction: not another node's pod deleted", 1,
	    ARGS("--token=%s delete pod op -n sem --wait=false", t),
	    "=Error from server (Forbidden): pods \"op\" is forbidden: node \"n1\" can only "
	    "delete pods with spec.nodeName set to itself",
	    NULL);
	e2e_kubectl(e, "NodeRestriction changed nothing", 0,
	    "get pod op -n sem -o jsonpath='{.status.phase} {.metadata.deletionTimestamp}'",
	    "=Pending", NULL);
	e2e_kubectl(e, "sem: remove the node pods", 0,
	    "delete pod np op -n sem --grace-period=0 --force",
	    "pod \"np\" force deleted", "pod \"op\" force deleted", NULL);
	free(f);
}

static void finalizers_and_generation(struct e2e *e)
{
	char a[4096];
	char *f = e2e_file(e, "sem-fin.yaml", fin_cm);
	e2e_kubectl(e, "sem: create with a finalizer", 0, ARGS("create -f %s", f),
	    "=configmap/fin1 created", NULL);
	e2e_kubectl(e, "delete with a finalizer", 0,
	    "delete cm fin1 -n sem --wait=false", "=configmap \"fin1\" deleted",
	    NULL);
	e2e_kubectl(e, "a finalizer holds the object", 0,
	    "get cm fin1 -n sem -o jsonpath='{.metadata.finalizers[*]} {.metadata.deletionTimestamp}'",
	    "~^example.com/hold 20[0-9-]+T", NULL);
	e2e_kubectl(e, "removing the last finalizer", 0,
	    "patch cm fin1 -n sem --type=json -p '[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]'",
	    "=configmap/fin1 patched", NULL);
	e2e_kubectl(e, "finalized: gone", 1, "get cm fin1 -n sem",
	    "=Error from server (NotFound): configmaps \"fin1\" not found", NULL);
	const char *gen = "get deploy d1 -n sem -o jsonpath='{.metadata.generation}'";
	e2e_kubectl(e, "label: generation unchanged", 0,
	    "label deploy d1 -n sem x=y", "=deployment.apps/d1 labeled", NULL);
	e2e_kubectl(e, "generation is still 1", 0, gen, "=1", NULL);
	e2e_kubectl(e, "scale: a spec change", 0,
	    "scale deploy d1 -n sem --replicas=2", "=deployment.apps/d1 scaled",
	    NULL);
	e2e_kubectl(e, "generation is 2", 0, gen, "=2", NULL);
	e2e_kubectl(e, "patch /status with spec and status", 0,
	    "patch deploy d1 -n sem --subresource=status --type=merge "
	    "-p '{\"spec\":{\"replicas\":7},\"status\":{\"replicas\":5}}'",
	    "deployment.apps/d1 patched", NULL);
	e2e_kubectl(e, "/status ignored the spec", 0,
	    "get deploy d1 -n sem -o jsonpath='{.spec.replicas} {.status.replicas} {.metadata.generation}'",
	    "=2 5 2", NULL);
	e2e_kubectl(e, "patch status through the main resource", 0,
	    "patch deploy d1 -n sem --type=merge -p '{\"status\":{\"replicas\":9}}'",
	    "deployment.apps/d1 patched", NULL);
	e2e_kubectl(e, "the main resource ignored the status", 0,
	    "get deploy d1 -n sem -o jsonpath='{.status.replicas}'", "=5", NULL);
	free(f);
}

static void preconditions(struct e2e *e)
{
	e2e_kubectl(e, "sem: create pc1", 0, "create configmap pc1 -n sem",
	    "=configmap/pc1 created", NULL);
	raw(e, "DeleteOptions: a UID precondition", "DELETE",
	    NS "/configmaps/pc1", "application/json",
	    "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"preconditions\":{\"uid\":\"nope\"}}",
	    409,
	    "Operation cannot be fulfilled on configmaps \\\"pc1\\\": Precondition failed: "
	    "UID in precondition: nope, UID in object meta: ",
	    "\"reason\":\"Conflict\"", NULL);
	raw(e, "DeleteOptions: a resourceVersion precondition", "DELETE",
	    NS "/configmaps/pc1", "application/json",
	    "{\"preconditions\":{\"resourceVersion\":\"1\"}}", 409,
	    "Precondition failed: ResourceVersion in precondition: 1, "
	    "ResourceVersion in object meta: ",
	    NULL);
	e2e_kubectl(e, "failed preconditions deleted nothing", 0,
	    "get cm pc1 -n sem -o name", "=configmap/pc1", NULL);
	raw(e, "generateName", "POST", NS "/configmaps", "application/json",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"generateName\":\"gen-\"}}",
	    201, "\"name\":\"gen-", "\"generateName\":\"gen-\"", NULL);
	raw(e, "list at resourceVersion=0 (the watch cache)", "GET",
	    NS "/configmaps?resourceVersion=0", NULL, NULL, 200,
	    "\"kind\":\"ConfigMapList\"", "\"name\":\"pc1\"", "\"name\":\"gen-", NULL);
}

static char *curl_escape_dup(const char *s)
{
	char *q = curl_easy_escape(NULL, s, 0);
	char *out = q ? strdup(q) : NULL;
	curl_free(q);
	return out;
}

/* Follow `continue` with a selector and a limit of 1: every match, once,
 * one a page as Kubernetes fills its pages (a last empty page may say
 * that the store held more). */
static void paging(struct e2e *e)
{
	e2e_sh(e, "sem: configmaps to page through", 0,
	    "for i in 1 2 3 4 5 6; do KUBECTL create configmap pg$i -n sem >/dev/null || exit 1; done; "
	    "KUBECTL label cm pg2 pg4 pg6 -n sem pick=yes",
	    "configmap/pg6 labeled", NULL);
	char path[2048], *cont = NULL, names[512] = "", counts[32] = "";
	int pages = 0;
	bool ok = true;
	do {
		struct e2e_resp r;
		snprintf(path, sizeof(path),
		    NS "/configmaps?labelSelector=pick%%3Dyes&limit=1%s%s",
		    cont ? "&continue=" : "", cont ? cont : "");
		free(cont);
		cont = NULL;
		ok = e2e_http(e, "GET", path, NULL, NULL, 0, e->admin_token, NULL,
		    10000, &r) && r.code == 200;
		json_t *j = ok ? json_loads(r.body, 0, NULL) : NULL;
		size_t i;
		json_t *it;
		size_t nc = strlen(counts);
		if (nc + 1 < sizeof(counts))
			snprintf(counts + nc, sizeof(counts) - nc, "%zu",
			    json_array_size(json_object_get(j, "items")));
		json_array_foreach(json_object_get(j, "items"), i, it) {
			size_t n = strlen(names);
			snprintf(names + n, sizeof(names) - n, "%s ",
			    json_string_value(json_object_get(
				json_object_get(it, "metadata"), "name")));
		}
		const char *c = json_string_value(json_object_get(
		    json_object_get(j, "metadata"), "continue"));
		cont = c && *c ? curl_escape_dup(c) : NULL;
		json_decref(j);
		e2e_resp_free(&r);
	} while (ok && cont && ++pages < 20);
	free(cont);
	if (ok && !strcmp(names, "pg2 pg4 pg6 ") &&
	    (!strcmp(counts, "111") || !strcmp(counts, "1110")))
		e2e_pass(e, "limit=1 with a label selector, through continue");
	else
		e2e_fail(e, "limit=1 with a label selector, through continue",
		    "got \"%s\" in pages of %s", names, counts);
}

static void events(struct e2e *e)
{
	raw(e, "events.k8s.io/v1: create", "POST",
	    "/apis/events.k8s.io/v1/namespaces/sem/events", "application/json",
	    "{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"nev1\"},"
	    "\"eventTime\":\"2025-01-01T00:00:00.000000Z\",\"reportingController\":\"e2e/ctl\","
	    "\"reportingInstance\":\"e2e-1\",\"action\":\"Testing\",\"reason\":\"NewTested\","
	    "\"type\":\"Normal\",\"note\":\"from events.k8s.io\","
	    "\"regarding\":{\"kind\":\"ConfigMap\",\"namespace\":\"sem\",\"name\":\"pc1\"}}",
	    201, "\"note\":\"from events.k8s.io\"", NULL);
	raw(e, "events.k8s.io/v1: list", "GET",
	    "/apis/events.k8s.io/v1/namespaces/sem/events", NULL, NULL, 200,
	    "\"kind\":\"EventList\"", "\"name\":\"nev1\"", NULL);
	e2e_kubectl(e, "get events --field-selector involvedObject.name", 0,
	    "get events -n e2e --field-selector involvedObject.name=cm1",
	    "~ Normal +Tested +configmap/cm1 +hello from e2e$", NULL);
	e2e_kubectl(e, "get events --field-selector type,reason", 0,
	    "get events -n e2e --field-selector type=Warning,reason=Tested",
	    "=No resources found in e2e namespace.", NULL);
}

void e2e_semantics_steps(struct e2e *e)
{
	if (!e2e_kubectl(e, "sem: create namespace", 0, "create namespace sem",
		"=namespace/sem created", NULL))
		return;
	field_validation(e);
	tables_and_errors(e);
	pods(e);
	node_restriction(e);
	finalizers_and_generation(e);
	preconditions(e);
	paging(e);
	events(e);
}

/* --- a server with a watch buffer of 16 events and 1 s bookmarks ----------- */

static char *create_cm(struct e2e *e, const char *name)
{
	char body[256];
	struct e2e_resp r;
	snprintf(body, sizeof(body),
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"}}",
	    name);
	if (!e2e_http(e, "POST", "/api/v1/namespaces/default/configmaps",
		"application/json", body, strlen(body), e->admin_token, NULL,
		10000, &r) ||
	    r.code != 201) {
		e2e_resp_free(&r);
		return NULL;
	}
	json_t *j = json_loads(r.body, 0, NULL);
	const char *rv = json_string_value(json_object_get(
	    json_object_get(j, "metadata"), "resourceVersion"));
	char *out = rv ? strdup(rv) : NULL;
	json_decref(j);
	e2e_resp_free(&r);
	return out;
}

void e2e_watch_expiry_steps(struct e2e *main_e)
{
	struct e2e e = { .kubectl = NULL };
	const char *sets[] = { "apiserver.watch_buffer=16",
		"apiserver.bookmark_interval=1s", NULL };
	if (!e2e_start(&e, sets)) {
		e2e_fail(main_e, "third server (watch_buffer=16)", "did not start");
		e2e_free(&e);
		return;
	}
	struct e2e_resp r;
	/* Start the configmaps' watch cache, then push 40 events through it. */
	e2e_http(&e, "GET", "/api/v1/configmaps?watch=true&timeoutSeconds=1",
	    NULL, NULL, 0, e.admin_token, NULL, 5000, &r);
	e2e_resp_free(&r);
	char *first = create_cm(&e, "x0"), *last = NULL;
	for (int i = 1; i < 40 && first; i++) {
		char n[16];
		snprintf(n, sizeof(n), "x%d", i);
		free(last);
		last = create_cm(&e, n);
	}
	char path[512];
	snprintf(path, sizeof(path),
	    "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=%s&timeoutSeconds=5",
	    first ? first : "1");
	bool made = e2e_http(&e, "GET", path, NULL, NULL, 0, e.admin_token, NULL,
	    10000, &r);
	if (made && first && last && r.code == 200 &&
	    strstr(r.body, "{\"type\":\"ERROR\"") &&
	    strstr(r.body, "\"reason\":\"Expired\"") &&
	    strstr(r.body, "\"code\":410") && r.seconds < 4)
		e2e_pass(main_e, "watch from a too old resourceVersion: 410 Expired, then the end");
	else
		e2e_fail(main_e, "watch from a too old resourceVersion: 410 Expired, then the end",
		    "code %ld after %.1f s: %.400s", r.code, r.seconds, r.body);
	e2e_resp_free(&r);
	snprintf(path, sizeof(path),
	    "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=3",
	    last ? last : "1");
	made = e2e_http(&e, "GET", path, NULL, NULL, 0, e.admin_token, NULL, 10000,
	    &r);
	if (made && last && r.code == 200 &&
	    strstr(r.body, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\"") &&
	    !strstr(r.body, "\"ERROR\""))
		e2e_pass(main_e, "watch bookmarks over HTTP");
	else
		e2e_fail(main_e, "watch bookmarks over HTTP", "code %ld: %.400s",
		    r.code, r.body);
	e2e_resp_free(&r);
	free(first);
	free(last);
	e2e_free(&e);
}
