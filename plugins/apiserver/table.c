/* plugins/apiserver/table.c — meta.k8s.io/v1 Tables: what `kubectl get`
 * prints.
 *
 * One row function per Kubernetes printer, filling the cells of the
 * resource's columns (registry.c) in order. The server always fills the
 * -o wide cells too, as Kubernetes does: kubectl hides priority-1 columns
 * unless asked. Cell values follow Kubernetes' printers: the same
 * "<none>" / "<unknown>" placeholders, the same integer-or-string typing,
 * ages in kubectl's short form ("5m", "3h12m", "2d").
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kubus/client.h>

#include "api.h"

/* --- small json helpers ---------------------------------------------------------- */

static json_t *child(const json_t *o, const char *key)
{
	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static const char *child_str(const json_t *o, const char *key)
{
	return json_string_value(child(o, key));
}

static const char *str_or(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

/* o.key is the string `value` (absent and non-strings are not). */
static bool str_is(const json_t *o, const char *key, const char *value)
{
	const char *s = child_str(o, key);
	return s && !strcmp(s, value);
}

static json_int_t int_or(const json_t *v, json_int_t dflt)
{
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* Append a string cell; never leaves a hole, even for bad UTF-8. */
static void add_str(json_t *cells, const char *s)
{
	json_t *v = json_string(s ? s : "");
	json_array_append_new(cells, v ? v : json_string(""));
}

static void add_int(json_t *cells, json_int_t n)
{
	json_array_append_new(cells, json_integer(n));
}

static size_t len_of(const json_t *v)
{
	if (json_is_object(v))
		return json_object_size(v);
	return json_is_array(v) ? json_array_size(v) : 0;
}

/* A growable string for joined cells ("a,b,c"). */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (p == NULL)
			return;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Append `s` after a separator unless it is the first item. */
static void sb_item(struct sbuf *b, const char *sep, const char *s)
{
	if (b->len)
		sb_puts(b, sep);
	sb_puts(b, s);
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_add(b, tmp,
		    (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Add the joined string as a cell (dflt when empty) and free it. */
static void add_sb(json_t *cells, struct sbuf *b, const char *dflt)
{
	add_str(cells, b->len ? b->s : dflt);
	free(b->s);
	*b = (struct sbuf){ 0 };
}

/* --- time ------------------------------------------------------------------------ */

/* RFC 3339 to seconds since the epoch; false when absent or malformed. */
static bool parse_time(const char *s, double *out)
{
	int64_t ms;
	if (s == NULL || !kb_time_parse(s, strlen(s), &ms))
		return false;
	*out = (double)ms / 1000.0;
	return true;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* kubectl's HumanDuration: ~2-3 significant figures of a duration. */
static void human_duration(double d, char *buf, size_t len)
{
	long long s = (long long)d; /* truncates toward zero, as Go's int() */
	if (s < -1) {
		snprintf(buf, len, "<invalid>");
	} else if (s < 0) {
		snprintf(buf, len, "0s");
	} else if (s < 120) {
		snprintf(buf, len, "%llds", s);
	} else if (s < 10 * 60) {
		if (s % 60)
			snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
		else
			snprintf(buf, len, "%lldm", s / 60);
	} else if (s < 3 * 3600) {
		snprintf(buf, len, "%lldm", s / 60);
	} else if (s < 8 * 3600) {
		if (s / 60 % 60)
			snprintf(buf, len, "%lldh%lldm", s / 3600, s / 60 % 60);
		else
			snprintf(buf, len, "%lldh", s / 3600);
	} else if (s < 48 * 3600) {
		snprintf(buf, len, "%lldh", s / 3600);
	} else if (s < 8 * 86400) {
		long long h = s / 3600;
		if (h % 24)
			snprintf(buf, len, "%lldd%lldh", h / 24, h % 24);
		else
			snprintf(buf, len, "%lldd", h / 24);
	} else if (s < 2 * 365 * 86400LL) {
		snprintf(buf, len, "%lldd", s / 86400);
	} else if (s < 8 * 365 * 86400LL) {
		long long days = s / 86400;
		if (days % 365)
			snprintf(buf, len, "%lldy%lldd", days / 365,
			    days % 365);
		else
			snprintf(buf, len, "%lldy", days / 365);
	} else {
		snprintf(buf, len, "%lldy", s / 86400 / 365);
	}
}

void api_age(const char *rfc3339, char *buf, size_t len)
{
	double t;
	if (!parse_time(rfc3339, &t))
		snprintf(buf, len, "<unknown>");
	else
		human_duration(now_seconds() - t, buf, len);
}

static void add_age(json_t *cells, const char *rfc3339)
{
	char age[32];
	api_age(rfc3339, age, sizeof(age));
	add_str(cells, age);
}

static void add_created(json_t *cells, const json_t *obj)
{
	add_age(cells, child_str(child(obj, "metadata"), "creationTimestamp"));
}

static void add_name(json_t *cells, const json_t *obj)
{
	add_str(cells, child_str(child(obj, "metadata"), "name"));
}

/* --- labels and selectors ------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a=b,c=d" sorted by key, as labels.FormatLabels; dflt when empty. */
static void add_labels(json_t *cells, const json_t *map, const char *dflt)
{
	size_t n = json_is_object(map) ? json_object_size(map) : 0, i = 0;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	struct sbuf b = { 0 };
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)map, k, v)
		if (keys && i < n)
			keys[i++] = k;
	if (keys)
		qsort(keys, i, sizeof(*keys), cmp_str);
	for (size_t j = 0; keys && j < i; j++) {
		if (b.len)
			sb_puts(&b, ",");
		sb_printf(&b, "%s=%s", keys[j],
		    str_or(child_str(map, keys[j]), ""));
	}
	free(keys);
	add_sb(cells, &b, dflt);
}

struct requirement {
	const char *key;
	char *text;
	size_t order; /* keeps equal keys in input order */
};

static int cmp_req(const void *a, const void *b)
{
	const struct requirement *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* One matchExpressions entry as labels.Requirement prints it; NULL when
 * the operator is unknown (the selector is then invalid). */
static char *expr_text(const json_t *e, const char *key)
{
	const char *op = str_or(child_str(e, "operator"), "");
	const json_t *vals = child(e, "values");
	struct sbuf b = { 0 };
	if (!strcmp(op, "Exists"))
		return strdup(key);
	if (!strcmp(op, "DoesNotExist")) {
		sb_printf(&b, "!%s", key);
		return b.s;
	}
	if (strcmp(op, "In") && strcmp(op, "NotIn"))
		return NULL;
	size_t n = json_array_size(vals);
	const char **v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		v[i] = str_or(json_string_value(json_array_get(vals, i)), "");
	if (v)
		qsort(v, n, sizeof(*v), cmp_str);
	sb_printf(&b, "%s %s (", key, !strcmp(op, "In") ? "in" : "notin");
	for (size_t i = 0; v && i < n; i++) {
		if (i)
			sb_puts(&b, ",");
		sb_puts(&b, v[i]);
	}
	sb_puts(&b, ")");
	free(v);
	return b.s;
}

/* Collect a LabelSelector's requirements; false when one is invalid. */
static bool selector_reqs(const json_t *sel, struct requirement *reqs,
    size_t *n)
{
	const char *k;
	json_t *v, *e;
	size_t i;
	bool ok = true;
	json_object_foreach(child(sel, "matchLabels"), k, v) {
		struct sbuf b = { 0 };
		sb_printf(&b, "%s=%s", k, str_or(json_string_value(v), ""));
		reqs[*n] = (struct requirement){ k, b.s, *n };
		(*n)++;
	}
	json_array_foreach(child(sel, "matchExpressions"), i, e) {
		const char *key = str_or(child_str(e, "key"), "");
		char *t = expr_text(e, key);
		if (t == NULL)
			ok = false;
		reqs[*n] = (struct requirement){ key, t, *n };
		(*n)++;
	}
	return ok;
}

/* metav1.LabelSelectorAsSelector(sel).String(): requirements sorted by
 * key. Empty for no selector; "<error>"-style `bad` when invalid. */
static void add_selector(json_t *cells, const json_t *sel, const char *empty,
    const char *bad)
{
	size_t cap = len_of(child(sel, "matchLabels")) +
	    len_of(child(sel, "matchExpressions"));
	struct requirement *reqs = calloc(cap ? cap : 1, sizeof(*reqs));
	struct sbuf b = { 0 };
	size_t n = 0;
	bool ok = reqs && selector_reqs(sel, reqs, &n);
	if (reqs)
		qsort(reqs, n, sizeof(*reqs), cmp_req);
	for (size_t i = 0; ok && i < n; i++)
		sb_item(&b, ",", reqs[i].text ? reqs[i].text : "");
	for (size_t i = 0; reqs && i < n; i++)
		free(reqs[i].text);
	free(reqs);
	if (!ok) {
		free(b.s);
		add_str(cells, bad);
		return;
	}
	add_sb(cells, &b, empty);
}

/* CONTAINERS and IMAGES of a pod template, comma-joined. */
static void add_containers(json_t *cells, const json_t *template_spec)
{
	struct sbuf names = { 0 }, images = { 0 };
	size_t i;
	json_t *c;
	json_array_foreach(child(template_spec, "containers"), i, c) {
		if (i) {
			sb_puts(&names, ",");
			sb_puts(&images, ",");
		}
		sb_puts(&names, str_or(child_str(c, "name"), ""));
		sb_puts(&images, str_or(child_str(c, "image"), ""));
	}
	add_sb(cells, &names, "");
	add_sb(cells, &images, "");
}

/* --- pods ------------------------------------------------------------------------- */

struct pod_view {
	const json_t *spec, *status;
	char reason[256];
	json_int_t restarts, ready, total;
	double last_restart; /* 0: never */
	bool initializing;
};

static bool has_condition(const json_t *status, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(child(status, "conditions"), i, c)
		if (str_is(c, "type", type))
			return str_is(c, "status", "True");
	return false;
}

static bool restartable_init(const json_t *spec, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(child(spec, "initContainers"), i, c)
		if (name && str_is(c, "name", name))
			return str_is(c, "restartPolicy", "Always");
	return false;
}

/* Latest lastState.terminated.finishedAt seen, into *last. */
static void note_restart(const json_t *cs, double *last)
{
	const json_t *t = child(child(cs, "lastState"), "terminated");
	double at;
	if (parse_time(child_str(t, "finishedAt"), &at) && at > *last)
		*last = at;
}

/* "Signal:9" / "ExitCode:1" for a terminated state without a reason. */
static void exit_text(const json_t *term, const char *prefix, char *buf,
    size_t len)
{
	json_int_t sig = int_or(child(term, "signal"), 0);
	if (sig)
		snprintf(buf, len, "%sSignal:%lld", prefix, (long long)sig);
	else
		snprintf(buf, len, "%sExitCode:%lld", prefix,
		    (long long)int_or(child(term, "exitCode"), 0));
}

/* One init container status; true when it decides the pod's reason. */
static bool init_status(struct pod_view *p, const json_t *cs, size_t i,
    size_t ninit)
{
	const json_t *state = child(cs, "state");
	const json_t *term = child(state, "terminated");
	const json_t *wait = child(state, "waiting");
	const char *wreason = str_or(child_str(wait, "reason"), "");
	if (term && int_or(child(term, "exitCode"), 0) == 0)
		return false;
	if (restartable_init(p->spec, child_str(cs, "name")) &&
	    json_is_true(child(cs, "started"))) {
		if (json_is_true(child(cs, "ready")))
			p->ready++;
		return false;
	}
	if (term && *str_or(child_str(term, "reason"), ""))
		snprintf(p->reason, sizeof(p->reason), "Init:%s",
		    child_str(term, "reason"));
	else if (term)
		exit_text(term, "Init:", p->reason, sizeof(p->reason));
	else if (wait && *wreason && strcmp(wreason, "PodInitializing"))
		snprintf(p->reason, sizeof(p->reason), "Init:%s", wreason);
	else
		snprintf(p->reason, sizeof(p->reason), "Init:%zu/%zu", i,
		    ninit);
	p->initializing = true;
	return true;
}

static void pod_init(struct pod_view *p, json_int_t *rs_restarts,
    double *rs_last)
{
	size_t i, ninit = json_array_size(child(p->spec, "initContainers"));
	json_t *cs;
	json_array_foreach(child(p->status, "initContainerStatuses"), i, cs) {
		json_int_t rc = int_or(child(cs, "restartCount"), 0);
		p->restarts += rc;
		note_restart(cs, &p->last_restart);
		if (restartable_init(p->spec, child_str(cs, "name"))) {
			*rs_restarts += rc;
			note_restart(cs, rs_last);
		}
		if (init_status(p, cs, i, ninit))
			break;
	}
}

/* Regular containers, last first, as kubectl's printer walks them. */
static void pod_containers(struct pod_view *p)
{
	const json_t *all = child(p->status, "containerStatuses");
	bool running = false;
	for (size_t i = json_array_size(all); i-- > 0;) {
		const json_t *cs = json_array_get(all, i);
		const json_t *state = child(cs, "state");
		const json_t *term = child(state, "terminated");
		const char *wr = child_str(child(state, "waiting"), "reason");
		p->restarts += int_or(child(cs, "restartCount"), 0);
		note_restart(cs, &p->last_restart);
		if (wr && *wr)
			snprintf(p->reason, sizeof(p->reason), "%s", wr);
		else if (term && *str_or(child_str(term, "reason"), ""))
			snprintf(p->reason, sizeof(p->reason), "%s",
			    child_str(term, "reason"));
		else if (term)
			exit_text(term, "", p->reason, sizeof(p->reason));
		else if (json_is_true(child(cs, "ready")) &&
		    child(state, "running")) {
			running = true;
			p->ready++;
		}
	}
	/* A pod whose last container completed while another still runs. */
	if (!strcmp(p->reason, "Completed") && running)
		snprintf(p->reason, sizeof(p->reason), "%s",
		    has_condition(p->status, "Ready") ? "Running" : "NotReady");
}

static void pod_reason_start(struct pod_view *p)
{
	const char *phase = str_or(child_str(p->status, "phase"), "");
	size_t i;
	json_t *c;
	snprintf(p->reason, sizeof(p->reason), "%s",
	    str_or(child_str(p->status, "reason"), phase));
	json_array_foreach(child(p->status, "conditions"), i, c)
		if (str_is(c, "type", "PodScheduled") &&
		    str_is(c, "reason", "SchedulingGated"))
			snprintf(p->reason, sizeof(p->reason),
			    "SchedulingGated");
}

static void pod_view(const json_t *pod, struct pod_view *p)
{
	size_t i;
	json_t *c;
	json_int_t rs_restarts = 0;
	double rs_last = 0;
	*p = (struct pod_view){ .spec = child(pod, "spec"),
		.status = child(pod, "status") };
	pod_reason_start(p);
	p->total = (json_int_t)json_array_size(child(p->spec, "containers"));
	json_array_foreach(child(p->spec, "initContainers"), i, c)
		if (str_is(c, "restartPolicy", "Always"))
			p->total++;
	pod_init(p, &rs_restarts, &rs_last);
	if (!p->initializing || has_condition(p->status, "Initialized")) {
		/* Ordinary init containers' restarts stop counting once the
		 * pod is initialized; sidecars' go on. */
		p->restarts = rs_restarts;
		p->last_restart = rs_last;
		pod_containers(p);
	}
	const char *phase = str_or(child_str(p->status, "phase"), "");
	bool terminal = !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
	if (child_str(child(pod, "metadata"), "deletionTimestamp") == NULL)
		return;
	if (str_is(p->status, "reason", "NodeLost"))
		snprintf(p->reason, sizeof(p->reason), "Unknown");
	else if (!terminal)
		snprintf(p->reason, sizeof(p->reason), "Terminating");
}

static void add_readiness_gates(json_t *cells, const json_t *pod)
{
	const json_t *gates = child(child(pod, "spec"), "readinessGates");
	const json_t *conds = child(child(pod, "status"), "conditions");
	size_t i, j, n = json_array_size(gates), ok = 0;
	json_t *g, *c;
	if (n == 0)
		return add_str(cells, "<none>");
	json_array_foreach(gates, i, g) {
		const char *type = str_or(child_str(g, "conditionType"), "");
		json_array_foreach(conds, j, c) {
			if (!str_is(c, "type", type))
				continue;
			ok += str_is(c, "status", "True");
			break;
		}
	}
	char buf[64];
	snprintf(buf, sizeof(buf), "%zu/%zu", ok, n);
	add_str(cells, buf);
}

void api_row_pod(const struct api_resource *r, const json_t *obj, json_t *cells)
{
	struct pod_view p;
	char buf[320], ago[32];
	(void)r;
	pod_view(obj, &p);
	add_name(cells, obj);
	snprintf(buf, sizeof(buf), "%lld/%lld", (long long)p.ready,
	    (long long)p.total);
	add_str(cells, buf);
	add_str(cells, p.reason);
	snprintf(buf, sizeof(buf), "%lld", (long long)p.restarts);
	if (p.restarts && p.last_restart > 0) {
		human_duration(now_seconds() - p.last_restart, ago,
		    sizeof(ago));
		snprintf(buf, sizeof(buf), "%lld (%s ago)",
		    (long long)p.restarts, ago);
	}
	add_str(cells, buf);
	add_created(cells, obj);
	/* podIPs[0], or podIP as the v1 -> internal conversion fills it */
	const char *ip =
	    child_str(json_array_get(child(p.status, "podIPs"), 0), "ip");
	add_str(cells,
	    str_or(ip, str_or(child_str(p.status, "podIP"), "<none>")));
	add_str(cells, str_or(child_str(p.spec, "nodeName"), "<none>"));
	add_str(cells,
	    str_or(child_str(p.status, "nominatedNodeName"), "<none>"));
	add_readiness_gates(cells, obj);
}

/* --- workloads -------------------------------------------------------------------- */

void api_row_deployment(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	const json_t *spec = child(obj, "spec"), *st = child(obj, "status");
	char buf[64];
	(void)r;
	add_name(cells, obj);
	/* apps/v1 defaults spec.replicas to 1 */
	snprintf(buf, sizeof(buf), "%lld/%lld",
	    (long long)int_or(child(st, "readyReplicas"), 0),
	    (long long)int_or(child(spec, "replicas"), 1));
	add_str(cells, buf);
	add_int(cells, int_or(child(st, "updatedReplicas"), 0));
	add_int(cells, int_or(child(st, "availableReplicas"), 0));
	add_created(cells, obj);
	add_containers(cells, child(child(spec, "template"), "spec"));
	add_selector(cells, child(spec, "selector"), "", "<invalid>");
}

void api_row_replicaset(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	const json_t *spec = child(obj, "spec"), *st = child(obj, "status");
	(void)r;
	add_name(cells, obj);
	add_int(cells, int_or(child(spec, "replicas"), 1));
	add_int(cells, int_or(child(st, "replicas"), 0));
	add_int(cells, int_or(child(st, "readyReplicas"), 0));
	add_created(cells, obj);
	add_containers(cells, child(child(spec, "template"), "spec"));
	add_selector(cells, child(spec, "selector"), "<none>", "<error>");
}

/* --- services --------------------------------------------------------------------- */

static void join_strings(struct sbuf *b, const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		sb_item(b, ",", str_or(json_string_value(v), ""));
}

/* status.loadBalancer.ingress IPs (else hostnames), sorted, unique. */
static void lb_ingress(struct sbuf *b, const json_t *svc)
{
	const json_t *ing =
	    child(child(child(svc, "status"), "loadBalancer"), "ingress");
	size_t n = json_array_size(ing), k = 0;
	const char **v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		const json_t *e = json_array_get(ing, i);
		const char *s =
		    str_or(child_str(e, "ip"), child_str(e, "hostname"));
		if (s && *s)
			v[k++] = s;
	}
	if (v)
		qsort(v, k, sizeof(*v), cmp_str);
	for (size_t i = 0; v && i < k; i++)
		if (i == 0 || strcmp(v[i], v[i - 1]))
			sb_item(b, ",", v[i]);
	free(v);
}

static void add_external_ip(json_t *cells, const json_t *svc)
{
	const json_t *spec = child(svc, "spec");
	const char *type = str_or(child_str(spec, "type"), "");
	struct sbuf b = { 0 };
	if (!strcmp(type, "ClusterIP") || !strcmp(type, "NodePort")) {
		join_strings(&b, child(spec, "externalIPs"));
		return add_sb(cells, &b, "<none>");
	}
	if (!strcmp(type, "LoadBalancer")) {
		lb_ingress(&b, svc);
		join_strings(&b, child(spec, "externalIPs"));
		return add_sb(cells, &b, "<pending>");
	}
	if (!strcmp(type, "ExternalName"))
		return add_str(cells,
		    str_or(child_str(spec, "externalName"), ""));
	add_str(cells, "<unknown>");
}

static void add_ports(json_t *cells, const json_t *spec)
{
	struct sbuf b = { 0 };
	size_t i;
	json_t *p;
	json_array_foreach(child(spec, "ports"), i, p) {
		json_int_t port = int_or(child(p, "port"), 0);
		json_int_t np = int_or(child(p, "nodePort"), 0);
		const char *proto = str_or(child_str(p, "protocol"), "TCP");
		if (i)
			sb_puts(&b, ",");
		if (np > 0)
			sb_printf(&b, "%lld:%lld/%s", (long long)port,
			    (long long)np, proto);
		else
			sb_printf(&b, "%lld/%s", (long long)port, proto);
	}
	add_sb(cells, &b, "<none>");
}

void api_row_service(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	const json_t *spec = child(obj, "spec");
	(void)r;
	add_name(cells, obj);
	add_str(cells, str_or(child_str(spec, "type"), ""));
	/* clusterIPs[0], or clusterIP as the v1 -> internal conversion
	 * fills it */
	add_str(cells,
	    str_or(json_string_value(
		       json_array_get(child(spec, "clusterIPs"), 0)),
		str_or(child_str(spec, "clusterIP"), "<none>")));
	add_external_ip(cells, obj);
	add_ports(cells, spec);
	add_created(cells, obj);
	add_labels(cells, child(spec, "selector"), "<none>");
}

/* --- nodes ------------------------------------------------------------------------ */

static void add_node_status(json_t *cells, const json_t *node)
{
	const json_t *conds = child(child(node, "status"), "conditions");
	struct sbuf b = { 0 };
	size_t i;
	json_t *c;
	/* Only Ready counts; the last Ready condition listed wins. */
	const char *ready = NULL;
	json_array_foreach(conds, i, c)
		if (str_is(c, "type", "Ready"))
			ready = str_or(child_str(c, "status"), "");
	if (ready == NULL)
		sb_puts(&b, "Unknown");
	else
		sb_puts(&b, strcmp(ready, "True") ? "NotReady" : "Ready");
	if (json_is_true(child(child(node, "spec"), "unschedulable")))
		sb_puts(&b, ",SchedulingDisabled");
	add_sb(cells, &b, "Unknown");
}

/* node-role.kubernetes.io/<role> labels and kubernetes.io/role=<role>. */
static void add_node_roles(json_t *cells, const json_t *labels)
{
	static const char prefix[] = "node-role.kubernetes.io/";
	size_t n = json_is_object(labels) ? json_object_size(labels) : 0, k = 0;
	const char **roles = calloc(n ? n : 1, sizeof(*roles));
	struct sbuf b = { 0 };
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)labels, key, v) {
		const char *role = NULL;
		if (!strncmp(key, prefix, sizeof(prefix) - 1))
			role = key + sizeof(prefix) - 1;
		else if (!strcmp(key, "kubernetes.io/role"))
			role = json_string_value(v);
		if (roles && role && *role && k < n)
			roles[k++] = role;
	}
	if (roles)
		qsort(roles, k, sizeof(*roles), cmp_str);
	for (size_t i = 0; roles && i < k; i++)
		if (i == 0 || strcmp(roles[i], roles[i - 1]))
			sb_item(&b, ",", roles[i]);
	free(roles);
	add_sb(cells, &b, "<none>");
}

static void add_node_address(json_t *cells, const json_t *node,
    const char *type)
{
	size_t i;
	json_t *a;
	json_array_foreach(child(child(node, "status"), "addresses"), i, a)
		if (str_is(a, "type", type))
			return add_str(cells,
			    str_or(child_str(a, "address"), ""));
	add_str(cells, "<none>");
}

void api_row_node(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	const json_t *info = child(child(obj, "status"), "nodeInfo");
	(void)r;
	add_name(cells, obj);
	add_node_status(cells, obj);
	add_node_roles(cells, child(child(obj, "metadata"), "labels"));
	add_created(cells, obj);
	add_str(cells, str_or(child_str(info, "kubeletVersion"), ""));
	add_node_address(cells, obj, "InternalIP");
	add_node_address(cells, obj, "ExternalIP");
	add_str(cells, str_or(child_str(info, "osImage"), "<unknown>"));
	add_str(cells, str_or(child_str(info, "kernelVersion"), "<unknown>"));
	add_str(cells,
	    str_or(child_str(info, "containerRuntimeVersion"), "<unknown>"));
}

/* --- the simple ones --------------------------------------------------------------- */

void api_row_namespace(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	(void)r;
	add_name(cells, obj);
	add_str(cells, child_str(child(obj, "status"), "phase"));
	add_created(cells, obj);
}

void api_row_configmap(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	(void)r;
	add_name(cells, obj);
	add_int(cells,
	    (json_int_t)(len_of(child(obj, "data")) +
		len_of(child(obj, "binaryData"))));
	add_created(cells, obj);
}

void api_row_secret(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	(void)r;
	add_name(cells, obj);
	add_str(cells, child_str(obj, "type"));
	add_int(cells, (json_int_t)len_of(child(obj, "data")));
	add_created(cells, obj);
}

void api_row_serviceaccount(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	(void)r;
	add_name(cells, obj);
	add_int(cells, (json_int_t)len_of(child(obj, "secrets")));
	add_created(cells, obj);
}

void api_row_lease(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	(void)r;
	add_name(cells, obj);
	add_str(cells, child_str(child(obj, "spec"), "holderIdentity"));
	add_created(cells, obj);
}

/* --- endpoints ---------------------------------------------------------------------- */

/* Up to three "ip:port" (or "ip" for port-less subsets), then
 * " + N more..."; "<none>" with no subsets. */
struct ep_list {
	struct sbuf b;
	size_t shown, count;
};

static void ep_add(struct ep_list *l, const char *ip, json_int_t port,
    bool with_port)
{
	l->count++;
	if (l->shown == 3)
		return;
	l->shown++;
	if (l->b.len)
		sb_puts(&l->b, ",");
	/* net.JoinHostPort brackets IPv6 addresses */
	if (with_port && strchr(ip, ':'))
		sb_printf(&l->b, "[%s]:%lld", ip, (long long)port);
	else if (with_port)
		sb_printf(&l->b, "%s:%lld", ip, (long long)port);
	else
		sb_puts(&l->b, ip);
}

static void ep_subset(struct ep_list *l, const json_t *ss)
{
	const json_t *addrs = child(ss, "addresses");
	const json_t *ports = child(ss, "ports");
	size_t i, j;
	json_t *a, *p;
	if (json_array_size(ports) == 0) {
		json_array_foreach(addrs, i, a)
			ep_add(l, str_or(child_str(a, "ip"), ""), 0, false);
		return;
	}
	json_array_foreach(ports, j, p)
		json_array_foreach(addrs, i, a)
			ep_add(l, str_or(child_str(a, "ip"), ""),
			    int_or(child(p, "port"), 0), true);
}

void api_row_endpoints(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	const json_t *subsets = child(obj, "subsets");
	struct ep_list l = { 0 };
	size_t i;
	json_t *ss;
	(void)r;
	add_name(cells, obj);
	if (json_array_size(subsets) == 0) {
		add_str(cells, "<none>");
	} else {
		json_array_foreach(subsets, i, ss)
			ep_subset(&l, ss);
		if (l.count > l.shown)
			sb_printf(&l.b, " + %zu more...", l.count - l.shown);
		add_sb(cells, &l.b, "");
	}
	add_created(cells, obj);
}

/* Up to three items, " + N more...", "<unset>" when none. */
static void add_more_list(json_t *cells, struct ep_list *l)
{
	if (l->count > l->shown)
		sb_printf(&l->b, " + %zu more...", l->count - l->shown);
	add_sb(cells, &l->b, "<unset>");
}

static void more_add(struct ep_list *l, const char *s)
{
	l->count++;
	if (l->shown < 3) {
		l->shown++;
		sb_item(&l->b, ",", s);
	}
}

void api_row_endpointslice(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	struct ep_list ports = { 0 }, eps = { 0 };
	size_t i, j;
	json_t *p, *e, *a;
	char buf[32];
	(void)r;
	add_name(cells, obj);
	add_str(cells, child_str(obj, "addressType"));
	json_array_foreach(child(obj, "ports"), i, p) {
		const char *s = "*";
		if (json_is_integer(child(p, "port"))) {
			snprintf(buf, sizeof(buf), "%lld",
			    (long long)json_integer_value(child(p, "port")));
			s = buf;
		} else if (child_str(p, "name")) {
			s = child_str(p, "name");
		}
		more_add(&ports, s);
	}
	add_more_list(cells, &ports);
	json_array_foreach(child(obj, "endpoints"), i, e)
		json_array_foreach(child(e, "addresses"), j, a)
			more_add(&eps, str_or(json_string_value(a), ""));
	add_more_list(cells, &eps);
	add_created(cells, obj);
}

/* --- events ------------------------------------------------------------------------- */

/* Field names differ between core/v1 and events.k8s.io/v1 events. */
struct event_fields {
	const char *object, *message, *source, *first, *last, *count,
	    *controller;
};

static const struct event_fields core_event = { "involvedObject", "message",
	"source", "firstTimestamp", "lastTimestamp", "count",
	"reportingComponent" };
static const struct event_fields new_event = { "regarding", "note",
	"deprecatedSource", "deprecatedFirstTimestamp",
	"deprecatedLastTimestamp", "deprecatedCount", "reportingController" };

/* "pod/web-1" or just "pod" when the object has no name. */
static void add_event_object(json_t *cells, const json_t *ref)
{
	const char *kind = str_or(child_str(ref, "kind"), "");
	const char *name = child_str(ref, "name");
	struct sbuf b = { 0 };
	for (const char *p = kind; *p; p++) {
		char c = (char)tolower((unsigned char)*p);
		sb_add(&b, &c, 1);
	}
	if (name && *name)
		sb_printf(&b, "/%s", name);
	add_sb(cells, &b, "");
}

static void add_event_source(json_t *cells, const json_t *ev,
    const struct event_fields *f)
{
	const json_t *src = child(ev, f->source);
	const char *comp = str_or(child_str(src, "component"),
	    str_or(child_str(ev, f->controller), ""));
	const char *host = str_or(child_str(src, "host"),
	    str_or(child_str(ev, "reportingInstance"), ""));
	struct sbuf b = { 0 };
	sb_puts(&b, comp);
	if (*host)
		sb_printf(&b, ", %s", host);
	add_sb(cells, &b, "");
}

/* The message without surrounding white space (strings.TrimSpace). */
static void add_trimmed(json_t *cells, const char *s)
{
	s = s ? s : "";
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	struct sbuf b = { 0 };
	sb_add(&b, s, n);
	add_sb(cells, &b, "");
}

void api_row_event(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	const struct event_fields *f = r && r->group[0] ? &new_event :
							  &core_event;
	const json_t *series = child(obj, "series");
	char first[32], last[32];
	double t;
	/* FIRST SEEN falls back to eventTime, LAST SEEN to FIRST SEEN; a
	 * series overrides both LAST SEEN and COUNT. */
	if (parse_time(child_str(obj, f->first), &t))
		api_age(child_str(obj, f->first), first, sizeof(first));
	else
		api_age(child_str(obj, "eventTime"), first, sizeof(first));
	if (parse_time(child_str(obj, f->last), &t))
		api_age(child_str(obj, f->last), last, sizeof(last));
	else
		snprintf(last, sizeof(last), "%s", first);
	json_int_t count = int_or(child(obj, f->count), 0);
	if (json_is_object(series)) {
		api_age(child_str(series, "lastObservedTime"), last,
		    sizeof(last));
		count = int_or(child(series, "count"), 0);
	} else if (count == 0) {
		count = 1; /* singleton events carry no count in the new API */
	}
	add_str(cells, last);
	add_str(cells, child_str(obj, "type"));
	add_str(cells, child_str(obj, "reason"));
	add_event_object(cells, child(obj, f->object));
	add_str(cells, child_str(child(obj, f->object), "fieldPath"));
	add_event_source(cells, obj, f);
	add_trimmed(cells, child_str(obj, f->message));
	add_str(cells, first);
	add_int(cells, count);
	add_name(cells, obj);
}

/* --- tables ------------------------------------------------------------------------- */

/* Used when a resource has no printer of its own. */
static const struct api_column default_cols[] = {
	{ "Name", "string", "name", 0,
	    "Name must be unique within a "
	    "namespace." },
	{ "Age", "string", "", 0, "Time since the object was created." },
};

static void default_row(const struct api_resource *r, const json_t *obj,
    json_t *cells)
{
	(void)r;
	add_name(cells, obj);
	add_created(cells, obj);
}

static json_t *column_defs(const struct api_resource *r)
{
	const struct api_column *c = r->columns ? r->columns : default_cols;
	size_t n = r->columns ? r->ncolumns :
				sizeof(default_cols) / sizeof(default_cols[0]);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a,
		    json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c[i].name,
			"type", c[i].type, "format",
			c[i].format ? c[i].format : "", "description",
			c[i].description ? c[i].description : "", "priority",
			c[i].priority));
	return a;
}

/* Finished pods carry a Completed row condition, as in Kubernetes. */
static void pod_row_conditions(json_t *row, const json_t *obj)
{
	const char *phase = child_str(child(obj, "status"), "phase");
	const char *msg;
	if (phase && !strcmp(phase, "Succeeded"))
		msg = "The pod has completed successfully.";
	else if (phase && !strcmp(phase, "Failed"))
		msg = "The pod failed.";
	else
		return;
	json_object_set_new(row, "conditions",
	    json_pack("[{s:s, s:s, s:s, s:s}]", "type", "Completed", "status",
		"True", "reason", phase, "message", msg));
}

static json_t *table_row(const struct api_resource *r, const json_t *obj,
    bool full_object)
{
	json_t *cells = json_array();
	api_row_fn row = r->columns && r->row ? r->row : default_row;
	row(r, obj, cells);
	json_t *o;
	if (full_object) {
		o = json_incref((json_t *)obj);
	} else {
		/* The metadata is shared, not copied: rows are read-only. */
		json_t *md = child(obj, "metadata");
		o = json_pack("{s:s, s:s, s:o}", "kind",
		    "PartialObjectMetadata", "apiVersion", "meta.k8s.io/v1",
		    "metadata", md ? json_incref(md) : json_object());
	}
	json_t *rowj = json_pack("{s:o, s:o}", "cells", cells, "object", o);
	if (row == api_row_pod)
		pod_row_conditions(rowj, obj);
	return rowj;
}

json_t *api_table_row(const struct api_resource *r, const json_t *obj)
{
	return table_row(r, obj, false);
}

json_t *api_table(const struct api_resource *r, const json_t *items,
    const char *resource_version, const char *cont, bool wide_objects)
{
	json_t *rows = json_array(), *md = json_object();
	size_t i;
	json_t *o;
	if (json_is_object(items)) {
		json_array_append_new(rows, table_row(r, items, wide_objects));
		if (resource_version == NULL)
			resource_version = child_str(child(items, "metadata"),
			    "resourceVersion");
	} else {
		json_array_foreach(items, i, o)
			json_array_append_new(rows,
			    table_row(r, o, wide_objects));
	}
	if (resource_version)
		json_object_set_new(md, "resourceVersion",
		    json_string(resource_version));
	if (cont && *cont)
		json_object_set_new(md, "continue", json_string(cont));
	return json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Table",
	    "apiVersion", "meta.k8s.io/v1", "metadata", md, "columnDefinitions",
	    column_defs(r), "rows", rows);
}
