/* plugins/apiserver/alloc.c — ClusterIPs and NodePorts for Services.
 *
 * What is allocated is what the stored Services hold (read from the watch
 * cache), plus addresses handed out in the last minute whose Service may
 * not be stored yet: two creates racing can never get the same address,
 * and nothing needs releasing explicitly, so no allocation can leak.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"

#define RECENT 256
#define RECENT_SECONDS 60

struct recent {
	uint32_t ip;          /* host order; 0 = a port entry */
	int64_t port;
	time_t at;
};

static struct recent recent[RECENT];
static size_t nrecent;

static bool is_service(const struct api_resource *r)
{
	return !strcmp(r->plural, "services") && r->group[0] == '\0';
}

static bool recent_has(uint32_t ip, int64_t port)
{
	time_t now = time(NULL);
	for (size_t i = 0; i < nrecent; i++)
		if (now - recent[i].at < RECENT_SECONDS && recent[i].ip == ip && recent[i].port == port)
			return true;
	return false;
}

static void recent_add(uint32_t ip, int64_t port)
{
	recent[nrecent % RECENT] = (struct recent){ ip, port, time(NULL) };
	nrecent = nrecent < RECENT ? nrecent + 1 : RECENT;
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

/* Every IP and node port the stored services hold, except `self`'s. */
static void used(struct api_server *s, const json_t *self, json_t **ips, json_t **ports)
{
	struct api_error e = { 0 };
	json_t *items = NULL;
	int64_t rev;
	*ips = json_object();
	*ports = json_object();
	const struct api_resource *r = api_resource_find("", "v1", "services");
	if (api_cache_list(s, r, NULL, &items, &rev, &e) != 0) {
		api_err_clear(&e);
		return;
	}
	const char *uid = api_get_str(self, "metadata.uid");
	size_t i, j;
	json_t *o, *p;
	json_array_foreach(items, i, o) {
		if (uid && !strcmp(uid, api_get_str(o, "metadata.uid") ?: ""))
			continue;
		const char *ip = api_get_str(o, "spec.clusterIP");
		if (ip && *ip && strcmp(ip, "None"))
			json_object_set_new(*ips, ip, json_true());
		json_array_foreach(api_get(o, "spec.ports"), j, p) {
			json_t *np = json_object_get(p, "nodePort");
			if (json_is_integer(np)) {
				char k[24];
				snprintf(k, sizeof(k), "%" PRId64, (int64_t)json_integer_value(np));
				json_object_set_new(*ports, k, json_true());
			}
		}
	}
	json_decref(items);
}

static bool alloc_ip(struct api_server *s, json_t *obj, const json_t *ips, struct api_error *e)
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
		if (json_object_get(ips, want) || recent_has(ip, 0)) {
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
	for (uint32_t off = is_kubernetes ? 1 : 2; off < size - 1; off++) {
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

static bool alloc_ports(struct api_server *s, json_t *obj, const json_t *ports, struct api_error *e)
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
			if (json_object_get(ports, k) || recent_has(0, v)) {
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
		json_object_set_new((json_t *)ports, k, json_true());
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
	used(s, obj, &ips, &ports);
	bool ok = true;
	const char *oldip = old ? api_get_str(old, "spec.clusterIP") : NULL;
	const char *newip = api_get_str(obj, "spec.clusterIP");
	/* An update keeps its address: only a new one is allocated. */
	if (oldip && *oldip && (newip == NULL || !*newip))
		api_set(obj, "spec.clusterIP", json_string(oldip));
	else if (!(oldip && newip && !strcmp(oldip, newip)))
		ok = alloc_ip(s, obj, ips, e);
	if (ok)
		ok = alloc_ports(s, obj, ports, e);
	json_decref(ips);
	json_decref(ports);
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
	rc = kb_call(req->srv->ctx, service, "log",
	    kb_mp_body("{s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:I}", "namespace", req->ns,
	        "pod", req->name, "container", container ? container : "", "follow", req->follow,
	        "previous", req->previous, "timestamps", req->timestamps, "tailLines",
	        (int64_t)req->tail_lines, "sinceSeconds", (int64_t)req->since_seconds,
	        "limitBytes", (int64_t)req->limit_bytes),
	    (int)req->srv->request_timeout_ms, &rep);
	if (rc == 0) {
		const char *text;
		size_t len;
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
