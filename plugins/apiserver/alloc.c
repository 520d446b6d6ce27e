/* plugins/apiserver/alloc.c — ClusterIPs and NodePorts for Services.
 *
 * What is allocated is what the stored Services hold (read from the watch
 * cache), plus what this server handed out in the last minute whose
 * Service may not be stored yet: two creates racing can never get the same
 * address, and nothing needs releasing explicitly, so no allocation can
 * leak. The stored part is scanned again at most once a second (so a
 * create costs O(1), not O(services)); a deleted Service's address is free
 * again after that. A new address is picked from a random place in the
 * range, as Kubernetes does, so that two API servers sharing a store are
 * unlikely to race for the same one within a scan period.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "busapi.h"
#include "alloc.h"

#define RECENT_SECONDS 60
#define RESCAN_MS 1000

/* Under s->alloc_mu. Sets as JSON objects: "10.96.0.7" -> true, and
 * "30080" -> true; `recent` maps the same keys to the unix time handed out. */
static json_t *stored_ips, *stored_ports, *recent;
static int64_t scanned_ms;

static bool is_service(const struct api_resource *r)
{
	return !strcmp(r->plural, "services") && r->group[0] == '\0';
}

static void recent_key(uint32_t ip, int64_t port, char *k, size_t len)
{
	if (ip != 0) {
		struct in_addr a = { .s_addr = htonl(ip) };
		inet_ntop(AF_INET, &a, k, (socklen_t)len);
	} else {
		snprintf(k, len, "%" PRId64, port);
	}
}

static bool recent_has(uint32_t ip, int64_t port)
{
	char k[INET_ADDRSTRLEN + 24];
	recent_key(ip, port, k, sizeof(k));
	json_t *at = recent ? json_object_get(recent, k) : NULL;
	return at && time(NULL) - json_integer_value(at) < RECENT_SECONDS;
}

static void recent_add(uint32_t ip, int64_t port)
{
	char k[INET_ADDRSTRLEN + 24];
	recent_key(ip, port, k, sizeof(k));
	if (recent == NULL)
		recent = json_object();
	json_object_set_new(recent, k, json_integer(time(NULL)));
}

/* The static sets go with the plugin when it is unloaded, as authn.c's
 * caches do (else LeakSanitizer reports them once the module is gone). */
__attribute__((destructor)) static void alloc_sets_free(void)
{
	json_decref(stored_ips);
	json_decref(stored_ports);
	json_decref(recent);
	stored_ips = stored_ports = recent = NULL;
}

static int parse_cidr(const char *cidr, uint32_t *net, uint32_t *size)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", cidr ? cidr : "10.96.0.0/12");
	char *slash = strchr(buf, '/');
	int bits = slash ? atoi(slash + 1) : 32;
	if (slash)
		*slash = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1 || bits < 8 || bits > 30)
		return -1;
	*size = 1u << (32 - bits);
	*net = ntohl(a.s_addr) & ~(*size - 1);
	return 0;
}

/* Every IP and node port the stored services hold (as of the last scan,
 * at most RESCAN_MS old), borrowed; drops expired recent entries. */
static void used(struct api_server *s, json_t **ips, json_t **ports)
{
	int64_t now = api_mono_ms();
	if (stored_ips == NULL || now - scanned_ms >= RESCAN_MS) {
		struct api_error e = { 0 };
		json_t *items = NULL;
		int64_t rev;
		const struct api_resource *r = api_resource_find("", "v1", "services");
		json_t *ipset = json_object(), *portset = json_object();
		if (api_cache_list(s, r, NULL, &items, &rev, &e) != 0)
			api_err_clear(&e);
		size_t i, j;
		json_t *o, *p;
		json_array_foreach(items, i, o) {
			const char *ip = api_get_str(o, "spec.clusterIP");
			if (ip && *ip && strcmp(ip, "None"))
				json_object_set_new(ipset, ip, json_true());
			json_array_foreach(api_get(o, "spec.ports"), j, p) {
				json_t *np = json_object_get(p, "nodePort");
				if (json_is_integer(np)) {
					char k[24];
					snprintf(k, sizeof(k), "%" PRId64, (int64_t)json_integer_value(np));
					json_object_set_new(portset, k, json_true());
				}
			}
		}
		json_decref(items);
		json_decref(stored_ips);
		json_decref(stored_ports);
		stored_ips = ipset;
		stored_ports = portset;
		scanned_ms = now;
		const char *k;
		json_t *v, *tmp;
		time_t t = time(NULL);
		if (recent != NULL)
			json_object_foreach_safe(recent, tmp, k, v)
				if (t - json_integer_value(v) >= RECENT_SECONDS)
					json_object_del(recent, k);
	}
	*ips = stored_ips;
	*ports = stored_ports;
}

/* Is key (an IP, or a port as text) held by a stored Service? A hit in a
 * scan that is not fresh is checked again against a new scan: a Service
 * deleted a moment ago gives its address back at once when asked for by
 * name. *set is updated to the new scan's set. */
static bool stored_has(struct api_server *s, json_t **set, bool ip,
    const char *key)
{
	if (!json_object_get(*set, key))
		return false;
	if (api_mono_ms() - scanned_ms < 50)
		return true;
	json_t *ips, *ports;
	scanned_ms = api_mono_ms() - RESCAN_MS;
	used(s, &ips, &ports);
	*set = ip ? ips : ports;
	return json_object_get(*set, key) != NULL;
}

static bool alloc_ip(struct api_server *s, json_t *obj, json_t *ips, struct api_error *e)
{
	const char *want = api_get_str(obj, "spec.clusterIP");
	const char *type = api_get_str(obj, "spec.type");
	if ((type && !strcmp(type, "ExternalName")) || (want && !strcmp(want, "None")))
		return true;
	uint32_t net, size;
	if (parse_cidr(s->service_cidr, &net, &size) != 0) {
		api_err(e, 500, "InternalError", "bad service CIDR %s", s->service_cidr);
		return false;
	}
	char buf[INET_ADDRSTRLEN];
	if (want && *want) {
		struct in_addr a;
		uint32_t ip;
		if (inet_pton(AF_INET, want, &a) != 1) {
			api_err_cause(e, "FieldValueInvalid", "spec.clusterIPs",
			    "Invalid value: [\"%s\"]: must be a valid IP address", want);
			return false;
		}
		ip = ntohl(a.s_addr);
		if (ip < net || ip >= net + size) {
			api_err_cause(e, "FieldValueInvalid", "spec.clusterIPs",
			    "Invalid value: [\"%s\"]: failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s",
			    want, want, want, s->service_cidr);
			return false;
		}
		if (stored_has(s, &ips, true, want) || recent_has(ip, 0)) {
			api_err_cause(e, "FieldValueInvalid", "spec.clusterIPs",
			    "Invalid value: [\"%s\"]: failed to allocate IP %s: provided IP is already allocated",
			    want, want);
			return false;
		}
		recent_add(ip, 0);
		return true;
	}
	/* The first address (network + 1) is the `kubernetes` service's. */
	bool is_kubernetes = !strcmp(api_get_str(obj, "metadata.name") ?: "", "kubernetes") &&
	    !strcmp(api_get_str(obj, "metadata.namespace") ?: "", "default");
	uint32_t span = size - 3, start = (uint32_t)random() % span;
	for (uint32_t k = 0; k <= span; k++) {
		uint32_t off = is_kubernetes && k == 0 ? 1 : 2 + (start + k) % span;
		struct in_addr a = { .s_addr = htonl(net + off) };
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		if (json_object_get(ips, buf) || recent_has(net + off, 0))
			continue;
		recent_add(net + off, 0);
		api_set(obj, "spec.clusterIP", json_string(buf));
		api_set(obj, "spec.clusterIPs", json_pack("[s]", buf));
		return true;
	}
	api_err(e, 500, "InternalError", "failed to allocate a serviceIP: range is full");
	return false;
}

static bool alloc_ports(struct api_server *s, json_t *obj, json_t *ports, struct api_error *e)
{
	const char *type = api_get_str(obj, "spec.type");
	bool wants = type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
	size_t i;
	json_t *p;
	json_array_foreach(api_get(obj, "spec.ports"), i, p) {
		json_t *np = json_object_get(p, "nodePort");
		char field[64];
		snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
		if (!wants) {
			if (np)
				json_object_del(p, "nodePort");
			continue;
		}
		if (json_is_integer(np) && json_integer_value(np) != 0) {
			int64_t v = json_integer_value(np);
			char k[24];
			snprintf(k, sizeof(k), "%" PRId64, v);
			if (v < s->node_port_min || v > s->node_port_max) {
				api_err_cause(e, "FieldValueInvalid", field,
				    "Invalid value: %" PRId64 ": provided port is not in the valid range. The range of valid ports is %" PRId64 "-%" PRId64,
				    v, s->node_port_min, s->node_port_max);
				return false;
			}
			if (stored_has(s, &ports, false, k) || recent_has(0, v)) {
				api_err_cause(e, "FieldValueInvalid", field,
				    "Invalid value: %" PRId64 ": provided port is already allocated", v);
				return false;
			}
			recent_add(0, v);
			continue;
		}
		int64_t v;
		for (v = s->node_port_min; v <= s->node_port_max; v++) {
			char k[24];
			snprintf(k, sizeof(k), "%" PRId64, v);
			if (!json_object_get(ports, k) && !recent_has(0, v))
				break;
		}
		if (v > s->node_port_max) {
			api_err(e, 500, "InternalError", "failed to allocate a nodePort: range is full");
			return false;
		}
		recent_add(0, v);
		char k[24];
		snprintf(k, sizeof(k), "%" PRId64, v);
		json_object_set_new(p, "nodePort", json_integer(v));
	}
	return true;
}

bool api_allocate(struct api_server *s, const struct api_resource *r, json_t *obj,
    const json_t *old, struct api_error *e)
{
	if (!is_service(r))
		return true;
	pthread_mutex_lock(&s->alloc_mu);
	json_t *ips, *ports;
	used(s, &ips, &ports);
	bool ok = true;
	const char *oldip = old ? api_get_str(old, "spec.clusterIP") : NULL;
	const char *newip = api_get_str(obj, "spec.clusterIP");
	/* An update keeps its address: only a new one is allocated. */
	if (oldip && *oldip && (newip == NULL || !*newip))
		api_set(obj, "spec.clusterIP", json_string(oldip));
	else if (!(oldip && newip && !strcmp(oldip, newip)))
		ok = alloc_ip(s, obj, ips, e);
	if (ok) {
		used(s, &ips, &ports); /* alloc_ip may have scanned again */
		ok = alloc_ports(s, obj, ports, e);
	}
	pthread_mutex_unlock(&s->alloc_mu);
	if (!ok && e->causes)
		api_err_invalid(e, "Service", api_get_str(obj, "metadata.name") ?: "");
	return ok;
}

void api_release(struct api_server *s, const struct api_resource *r, const json_t *obj)
{
	/* Allocation is read from the stored services: a deleted one has
	 * released its addresses already. */
	(void)s;
	(void)r;
	(void)obj;
}

json_t *api_scale_of(const struct api_resource *r, const json_t *obj)
{
	json_t *md = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?}", "name",
	    api_get_str(obj, "metadata.name"), "namespace", api_get_str(obj, "metadata.namespace"),
	    "uid", api_get_str(obj, "metadata.uid"), "resourceVersion",
	    api_get_str(obj, "metadata.resourceVersion"), "creationTimestamp",
	    api_get_str(obj, "metadata.creationTimestamp"));
	/* status.selector is the label selector as a string, as in Kubernetes. */
	char sel[1024] = "";
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(api_get(obj, "spec.selector.matchLabels"), k, v) {
		int w = snprintf(sel + n, sizeof(sel) - n, "%s%s=%s", n ? "," : "", k,
		    json_string_value(v) ?: "");
		if (w < 0 || (size_t)w >= sizeof(sel) - n)
			break;
		n += (size_t)w;
	}
	json_t *rep = api_get(obj, "spec.replicas");
	json_t *st = api_get(obj, "status.replicas");
	(void)r;
	return json_pack("{s:s, s:s, s:o, s:{s:I}, s:{s:I, s:s}}", "kind", "Scale",
	    "apiVersion", "autoscaling/v1", "metadata", md, "spec", "replicas",
	    (json_int_t)(json_is_integer(rep) ? json_integer_value(rep) : 1), "status",
	    "replicas", (json_int_t)(json_is_integer(st) ? json_integer_value(st) : 0),
	    "selector", sel);
}

/* Is c one of the pod's containers (init and ephemeral ones too)? */
static bool pod_has_container(const json_t *pod, const char *c)
{
	static const char *const lists[] = { "spec.containers", "spec.initContainers",
		"spec.ephemeralContainers" };
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		size_t i;
		json_t *v;
		json_array_foreach(api_get(pod, lists[l]), i, v)
			if (!strcmp(api_get_str(v, "name") ?: "", c))
				return true;
	}
	return false;
}

/* --- pods/log?follow=true ------------------------------------------------------
 * The kubelet answers each `log` request with what its log holds from a
 * cursor on ({text, cursor, done}; see plugins/kubelet/logs.c). The stream
 * asks again with the cursor every LOG_POLL_MS while the client is there,
 * and ends when the kubelet says done, the pod is gone, or limitBytes is
 * reached. The HTTP layer writes each text as a chunk as it comes and
 * checks between reads that the client is still connected. */

#define LOG_POLL_MS 100
#define LOG_GIVE_UP_MS 30000 /* kubelet unreachable this long: end */

struct log_stream {
	struct api_stream st; /* first: the HTTP layer's handle */
	struct api_server *srv;
	char *service, *ns, *pod, *container;
	bool timestamps;
	int64_t limit;  /* bytes left to send; -1: no limit */
	uint64_t attempt, offset;
	bool done;
	char *text; /* what the kubelet sent, not yet written */
	size_t len, pos;
	int64_t failing_since_ms;
};

static int64_t log_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Take a kubelet answer: the text to send, the cursor, done. */
static void log_take(struct log_stream *ls, const msgpack_object *b)
{
	const char *t;
	size_t n = 0;
	if (!kb_mp_str(b, "text", &t, &n))
		n = 0;
	free(ls->text);
	ls->text = NULL;
	ls->len = ls->pos = 0;
	if (n && (ls->text = malloc(n)) != NULL) {
		memcpy(ls->text, t, n);
		ls->len = n;
	}
	uint64_t a, o;
	if (kb_mp_uint(b, "cursor.attempt", &a) &&
	    kb_mp_uint(b, "cursor.offset", &o)) {
		ls->attempt = a;
		ls->offset = o;
	} else {
		ls->done = true; /* a kubelet that cannot follow */
	}
	bool d = false;
	if (kb_mp_bool(b, "done", &d) && d)
		ls->done = true;
}

static void log_poll(struct log_stream *ls)
{
	kb_msg *rep = NULL;
	kb_body *b = kb_mp_body("{s:s, s:s, s:s, s:b, s:b, s:{s:u, s:u}}",
	    "namespace", ls->ns, "pod", ls->pod, "container", ls->container,
	    "follow", 1, "timestamps", ls->timestamps, "cursor", "attempt",
	    ls->attempt, "offset", ls->offset);
	int rc = b ? api_call(ls->srv->ctx, ls->service, "log", b, 5000, &rep) :
		     KB_ENOMEM;
	if (rc == 0) {
		ls->failing_since_ms = 0;
		log_take(ls, kb_msg_body(rep));
	} else if (rc == KB_ENOTFOUND || rc == KB_EBADREQUEST) {
		ls->done = true; /* the pod or container is gone */
	} else if (ls->failing_since_ms == 0) {
		ls->failing_since_ms = log_now_ms();
	} else if (log_now_ms() - ls->failing_since_ms > LOG_GIVE_UP_MS) {
		ls->done = true;
	}
	kb_msg_free(rep);
}

static ssize_t log_read(struct api_stream *st, char *buf, size_t max,
    int timeout_ms)
{
	struct log_stream *ls = (struct log_stream *)st;
	int64_t until = log_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if (ls->limit == 0 || ls->srv->stopping)
			return -1;
		if (ls->pos < ls->len) {
			size_t n = ls->len - ls->pos;
			if (n > max)
				n = max;
			if (ls->limit > 0 && (int64_t)n > ls->limit)
				n = (size_t)ls->limit;
			memcpy(buf, ls->text + ls->pos, n);
			ls->pos += n;
			if (ls->limit > 0)
				ls->limit -= (int64_t)n;
			return (ssize_t)n;
		}
		if (ls->done)
			return -1;
		log_poll(ls);
		if (ls->pos < ls->len || ls->done)
			continue;
		int64_t left = until - log_now_ms();
		if (left <= 0)
			return 0; /* the HTTP layer checks the client, calls again */
		log_nap(left < LOG_POLL_MS ? (int)left : LOG_POLL_MS);
	}
}

static void log_close(struct api_stream *st)
{
	struct log_stream *ls = (struct log_stream *)st;
	free(ls->service);
	free(ls->ns);
	free(ls->pod);
	free(ls->container);
	free(ls->text);
	free(ls);
}

/* The first answer came: the rest is a stream. NULL when out of memory. */
static struct api_stream *log_stream_new(struct api_req *req,
    const char *service, const char *container, const msgpack_object *first)
{
	struct log_stream *ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return NULL;
	ls->st.read = log_read;
	ls->st.close = log_close;
	ls->st.content_type = "text/plain";
	ls->srv = req->srv;
	ls->service = strdup(service);
	ls->ns = strdup(req->ns);
	ls->pod = strdup(req->name);
	ls->container = strdup(container ? container : "");
	ls->timestamps = req->timestamps;
	ls->limit = req->limit_bytes > 0 ? req->limit_bytes : -1;
	if (ls->service == NULL || ls->ns == NULL || ls->pod == NULL ||
	    ls->container == NULL) {
		log_close(&ls->st);
		return NULL;
	}
	log_take(ls, first);
	return &ls->st;
}

void api_pod_log(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	struct api_kv kv = { 0 };
	char *key = api_key(req->res, req->ns, req->name);
	int rc = api_store_get(req->srv, key, &kv, &e);
	free(key);
	if (rc) {
		api_err(&e, 404, "NotFound", "pods \"%s\" not found", req->name);
		resp->code = 404;
		resp->json = api_status(&e);
		api_err_clear(&e);
		return;
	}
	const char *node = api_get_str(kv.obj, "spec.nodeName");
	const char *container = req->container;
	if (container == NULL)
		container = api_get_str(kv.obj, "spec.containers[0].name");
	if (container && !pod_has_container(kv.obj, container)) {
		api_err(&e, 400, "BadRequest", "container %s is not valid for pod %s", container,
		    req->name);
		goto out;
	}
	if (node == NULL || !*node) {
		/* Not scheduled: no kubelet to ask, and Kubernetes streams
		 * nothing (an empty 200), as `kubectl logs` of a Pending pod. */
		resp->code = 200;
		resp->text = strdup("");
		resp->text_len = 0;
		resp->content_type = "text/plain";
		json_decref(kv.obj);
		return;
	}
	char service[300];
	snprintf(service, sizeof(service), "kubelet/%s", node);
	kb_msg *rep = NULL;
	rc = api_call(req->srv->ctx, service, "log",
	    kb_mp_body("{s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:I}", "namespace", req->ns,
	        "pod", req->name, "container", container ? container : "", "follow", req->follow,
	        "previous", req->previous, "timestamps", req->timestamps, "tailLines",
	        (int64_t)req->tail_lines, "sinceSeconds", (int64_t)req->since_seconds,
	        "limitBytes", (int64_t)req->limit_bytes),
	    (int)req->srv->request_timeout_ms, &rep);
	if (rc == 0) {
		const char *text;
		size_t len;
		if (req->follow) {
			resp->stream = log_stream_new(req, service, container,
			    kb_msg_body(rep));
			kb_msg_free(rep);
			json_decref(kv.obj);
			if (resp->stream == NULL) {
				api_err(&e, 500, "InternalError", "out of memory");
				resp->code = e.code;
				resp->json = api_status(&e);
				api_err_clear(&e);
				return;
			}
			resp->code = 200;
			resp->content_type = "text/plain";
			return;
		}
		if (kb_mp_str(kb_msg_body(rep), "text", &text, &len)) {
			resp->code = 200;
			resp->text = strndup(text, len);
			resp->text_len = len;
			resp->content_type = "text/plain";
		}
		kb_msg_free(rep);
		json_decref(kv.obj);
		return;
	}
	if (rep) {
		const char *msg;
		kb_msg_err(rep, &msg);
		api_err_from_kb(&e, rc, msg);
		kb_msg_free(rep);
	} else if (rc == KB_EUNAVAILABLE && !req->from_peer) {
		/* The node's uplink is on another control-plane host: ask
		 * the other API servers (peer.c). */
		char why[2048];
		if (api_peer_pod_log(req, node, container, resp, why, sizeof(why)) == 0) {
			json_decref(kv.obj);
			return;
		}
		api_err(&e, 503, "ServiceUnavailable",
		    "no kubelet answers for node \"%s\": this host has no route to it, nor does "
		    "another API server's (%s)",
		    node, why);
	} else {
		api_err(&e, 503, "ServiceUnavailable", "no kubelet answers for node \"%s\": %s", node,
		    kb_strerror(rc));
	}
out:
	json_decref(kv.obj);
	resp->code = e.code;
	resp->json = api_status(&e);
	api_err_clear(&e);
}
