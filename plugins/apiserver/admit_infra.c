/* admit_infra.c — the kinds components write rather than users: Node,
 * Endpoints, EndpointSlice, Lease and Event, with the defaults Kubernetes
 * gives them and its validation (taints, resources, addresses, ports,
 * lease durations, event fields). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

static const char *const protocols[] = { "SCTP", "TCP", "UDP", NULL };

static void protocol(const json_t *port, const char *base, struct api_error *e)
{
	char p[ADM_PATH];
	const char *proto = adm_str(port, "protocol");

	adm_path(p, "%s.protocol", base);
	if (adm_is_empty(proto))
		adm_required(e, p, "");
	else if (!adm_in_list(proto, protocols))
		adm_unsupported(e, p, proto, protocols);
}

static void app_protocol(const json_t *port, const char *base,
    struct api_error *e)
{
	char p[ADM_PATH];
	const char *ap = adm_str(port, "appProtocol");
	struct adm_msgs m = { 0 };

	if (!ap)
		return;
	adm_qualified_name(ap, &m);
	adm_invalid_msgs(e, adm_path(p, "%s.appProtocol", base), ap, &m);
}

static void meta(const json_t *obj, const json_t *old, bool namespaced,
    struct api_error *e)
{
	if (old)
		adm_meta_update(obj, old, e);
	else
		adm_meta(obj, namespaced, adm_name_subdomain, e);
}

/* --- Node ------------------------------------------------------------------- */

void api_default_node(json_t *obj, const json_t *old)
{
	json_t *spec, *status;
	json_t *cidrs;
	const char *cidr;

	(void)old;
	if (!json_is_object(obj))
		return;
	spec = adm_obj_make(obj, "spec");
	cidr = adm_str(spec, "podCIDR");
	cidrs = adm_arr(spec, "podCIDRs");
	/* podCIDR mirrors podCIDRs[0] in v1 */
	if (!adm_is_empty(cidr) && !json_array_size(cidrs))
		json_object_set_new(spec, "podCIDRs", json_pack("[s]", cidr));
	else if (json_array_size(cidrs))
		json_object_set(spec, "podCIDR", json_array_get(cidrs, 0));
	status = adm_obj(obj, "status");
	if (!status)
		return;
	adm_resource_list_defaults(adm_obj(status, "capacity"));
	adm_resource_list_defaults(adm_obj(status, "allocatable"));
	if (!adm_obj(status, "allocatable") && adm_obj(status, "capacity"))
		json_object_set_new(status, "allocatable",
		    json_deep_copy(adm_obj(status, "capacity")));
}

static void taints(const json_t *list, struct api_error *e)
{
	json_t *seen = json_object();
	char base[ADM_PATH], p[ADM_PATH], key[600];
	size_t i;
	json_t *t;

	json_array_foreach(list, i, t) {
		const char *k = adm_str(t, "key") ?: "";
		const char *v = adm_str(t, "value") ?: "";
		const char *eff = adm_str(t, "effect") ?: "";
		struct adm_msgs m = { 0 };
		char joined[1000] = "";
		/* Kubernetes reports node taints under metadata */
		adm_path(base, "metadata.taints[%zu]", i);
		adm_label_name(k, adm_path(p, "%s.key", base), e);
		adm_label_value(v, &m);
		for (int j = 0; j < m.n; j++)
			snprintf(joined + strlen(joined),
			    sizeof joined - strlen(joined), "%s%s",
			    j ? ";" : "", m.m[j]);
		if (m.n)
			adm_invalid_str(e, adm_path(p, "%s.value", base), v,
			    joined);
		adm_taint_effect(eff, false, adm_path(p, "%s.effect", base), e);
		snprintf(key, sizeof key, "%s\n%s", eff, k);
		if (json_object_get(seen, key)) {
			char *qk = adm_quote(k), *qv = adm_quote(v);
			char *qe = adm_quote(eff),
			     *ta = adm_render(json_object_get(t, "timeAdded"));
			char d[1200];
			snprintf(d, sizeof d,
			    "Duplicate value: {\"Key\":%s,"
			    "\"Value\":%s,\"Effect\":%s,\"TimeAdded\":%s}: taints "
			    "must be unique by key and effect pair",
			    qk, qv, qe, ta);
			api_err_cause(e, "FieldValueDuplicate", base, "%s", d);
			free(qk);
			free(qv);
			free(qe);
			free(ta);
			continue;
		}
		json_object_set_new(seen, key, json_true());
	}
	json_decref(seen);
}

static void node_resources(const json_t *status, struct api_error *e)
{
	static const char *const lists[] = { "capacity", "allocatable" };
	char p[ADM_PATH], buf[64];
	const char *k;
	json_t *v;

	for (int l = 0; l < 2; l++)
		json_object_foreach(adm_obj(status, lists[l]), k, v) {
			struct adm_qty q;
			if (adm_qty_json(v, &q))
				continue;
			adm_qty_text(&q, buf, sizeof buf);
			adm_path(p, "status.%s.%s", lists[l], k);
			if (adm_qty_sign(&q) < 0)
				adm_invalid_str(e, p, buf,
				    "must be greater than or equal to 0");
			if (!strcmp(k, "pods") && !adm_qty_is_int(&q))
				adm_invalid_str(e, p, buf,
				    "must be an integer");
		}
}

static void pod_cidrs(const json_t *spec, struct api_error *e)
{
	json_t *cidrs = adm_arr(spec, "podCIDRs");
	json_t *seen = json_object();
	char p[ADM_PATH];
	size_t i;
	json_t *c;

	json_array_foreach(cidrs, i, c)
		adm_valid_cidr(e, adm_path(p, "spec.podCIDRs[%zu]", i),
		    json_string_value(c) ?: "");
	if (json_array_size(cidrs) > 2)
		adm_invalid_json(e, "spec.podCIDRs", cidrs,
		    "may specify no more than one CIDR for each IP family");
	json_array_foreach(json_array_size(cidrs) > 1 ? cidrs : NULL, i, c) {
		const char *s = json_string_value(c) ?: "";
		if (json_object_get(seen, s))
			adm_duplicate_str(e,
			    adm_path(p, "spec.podCIDRs[%zu]", i), s);
		json_object_set_new(seen, s, json_true());
	}
	json_decref(seen);
}

static void node_update(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	json_t *spec = adm_obj(obj, "spec"), *was = adm_obj(old, "spec");
	json_t *seen = json_object();
	const char *msg = "node updates may not change %s except from \"\" to "
			  "valid";
	char d[100], p[ADM_PATH], key[600];
	size_t i;
	json_t *a;

	adm_meta_update(obj, old, e);
	node_resources(adm_obj(obj, "status"), e);
	json_array_foreach(adm_arr(adm_obj(obj, "status"), "addresses"), i, a) {
		const char *t = adm_str(a, "type") ?: "";
		const char *ad = adm_str(a, "address") ?: "";
		snprintf(key, sizeof key, "%s\n%s", t, ad);
		if (json_object_get(seen, key)) {
			char *qt = adm_quote(t), *qa = adm_quote(ad);
			char v[600];
			snprintf(v, sizeof v, "{\"Type\":%s,\"Address\":%s}",
			    qt, qa);
			adm_duplicate_raw(e,
			    adm_path(p, "status.addresses[%zu]", i), v);
			free(qt);
			free(qa);
		}
		json_object_set_new(seen, key, json_true());
	}
	json_decref(seen);
	if (json_array_size(adm_arr(was, "podCIDRs")) &&
	    !adm_equal(adm_arr(was, "podCIDRs"), adm_arr(spec, "podCIDRs"))) {
		snprintf(d, sizeof d, msg, "podCIDR");
		adm_forbidden(e, "spec.podCIDRs", d);
	}
	if (!adm_is_empty(adm_str(was, "providerID")) &&
	    !adm_equal(json_object_get(was, "providerID"),
		json_object_get(spec, "providerID"))) {
		snprintf(d, sizeof d, msg, "providerID");
		adm_forbidden(e, "spec.providerID", d);
	}
	taints(adm_arr(spec, "taints"), e);
	if (!adm_equal(json_object_get(spec, "externalID"),
		json_object_get(was, "externalID")))
		adm_forbidden(e, "spec.externalID", "may not be updated");
}

void api_validate_node(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	json_t *spec = adm_obj(obj, "spec");

	if (old) {
		node_update(obj, old, e);
		return;
	}
	adm_meta(obj, false, adm_name_subdomain, e);
	taints(adm_arr(spec, "taints"), e);
	node_resources(adm_obj(obj, "status"), e);
	pod_cidrs(spec, e);
}

/* --- Endpoints ---------------------------------------------------------------- */

void api_default_endpoints(json_t *obj, const json_t *old)
{
	size_t i, j;
	json_t *ss, *port;

	(void)old;
	json_array_foreach(adm_arr(obj, "subsets"), i, ss)
		json_array_foreach(adm_arr(ss, "ports"), j, port)
			adm_default_str(port, "protocol", "TCP");
}

static void endpoint_address(const json_t *a, const char *base,
    struct api_error *e)
{
	char p[ADM_PATH];
	const char *ip = adm_str(a, "ip") ?: "";
	const char *host = adm_str(a, "hostname");
	const char *node = adm_str(a, "nodeName");
	struct adm_msgs m = { 0 };

	adm_path(p, "%s.ip", base);
	adm_valid_ip(e, p, ip);
	if (!adm_is_empty(host)) {
		adm_dns1123_label(host, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.hostname", base), host, &m);
	}
	if (node) {
		m.n = 0;
		adm_dns1123_subdomain(node, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.nodeName", base), node, &m);
	}
	adm_non_special_ip(e, adm_path(p, "%s.ip", base), ip);
}

static void endpoint_port(const json_t *port, bool require_name,
    const char *base, struct api_error *e)
{
	char p[ADM_PATH];
	const char *name = adm_str(port, "name") ?: "";
	long long n = 0;

	adm_path(p, "%s.name", base);
	if (require_name && !*name) {
		adm_required(e, p, "");
	} else if (*name) {
		struct adm_msgs m = { 0 };
		adm_dns1123_label(name, &m);
		adm_invalid_msgs(e, p, name, &m);
	}
	adm_int(port, "port", &n);
	if (n < 1 || n > 65535)
		adm_invalid_int(e, adm_path(p, "%s.port", base), n,
		    "must be between 1 and 65535, inclusive");
	protocol(port, base, e);
	app_protocol(port, base, e);
}

static void subset(const json_t *ss, const char *base, struct api_error *e)
{
	static const char *const lists[] = { "addresses", "notReadyAddresses" };
	char p[ADM_PATH];
	json_t *ports = adm_arr(ss, "ports");
	size_t i;
	json_t *x;

	if (!json_array_size(adm_arr(ss, "addresses")) &&
	    !json_array_size(adm_arr(ss, "notReadyAddresses")))
		adm_required(e, base,
		    "must specify `addresses` or `notReadyAddresses`");
	for (int l = 0; l < 2; l++)
		json_array_foreach(adm_arr(ss, lists[l]), i, x)
			endpoint_address(x,
			    adm_path(p, "%s.%s[%zu]", base, lists[l], i), e);
	json_array_foreach(ports, i, x)
		endpoint_port(x, json_array_size(ports) > 1,
		    adm_path(p, "%s.ports[%zu]", base, i), e);
}

void api_validate_endpoints(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *ss;

	if (old)
		adm_meta_update(obj, old, e);
	adm_meta(obj, true, adm_name_subdomain, e);
	json_array_foreach(adm_arr(obj, "subsets"), i, ss)
		subset(ss, adm_path(p, "subsets[%zu]", i), e);
}

/* --- EndpointSlice --------------------------------------------------------------- */

void api_default_endpointslice(json_t *obj, const json_t *old)
{
	size_t i;
	json_t *port;

	(void)old;
	json_array_foreach(adm_arr(obj, "ports"), i, port) {
		adm_default(port, "name", json_string(""));
		adm_default(port, "protocol", json_string("TCP"));
	}
}

static void fqdn(const char *name, const char *path, struct api_error *e)
{
	char s[300];
	struct adm_msgs m = { 0 };

	if (!*name) {
		adm_required(e, path, "");
		return;
	}
	snprintf(s, sizeof s, "%s", name);
	if (s[strlen(s) - 1] == '.')
		s[strlen(s) - 1] = 0;
	adm_dns1123_subdomain(s, &m);
	if (m.n) {
		adm_invalid_str(e, path, s, m.m[0]);
		return;
	}
	if (!strchr(s, '.'))
		adm_invalid_str(e, path, s,
		    "should be a domain with at least two "
		    "segments separated by dots");
}

static void slice_address(const char *type, const char *a, const char *path,
    struct api_error *e)
{
	int fam = adm_ip_family(a);

	if (!strcmp(type, "IPv4") || !strcmp(type, "IPv6")) {
		int want = type[3] - '0';
		if (fam != want)
			adm_invalid_str(e, path, a,
			    want == 4 ? "must be a valid IPv4 address" :
					"must be a valid IPv6 address");
		else
			adm_non_special_ip(e, path, a);
	} else if (!strcmp(type, "FQDN")) {
		fqdn(a, path, e);
	}
}

static void slice_endpoint(const json_t *ep, const char *type, const char *base,
    struct api_error *e)
{
	char p[ADM_PATH], q[ADM_PATH];
	json_t *addrs = adm_arr(ep, "addresses");
	const char *node = adm_str(ep, "nodeName");
	const char *host = adm_str(ep, "hostname");
	size_t i;
	json_t *a;

	adm_path(p, "%s.addresses", base);
	if (!json_array_size(addrs))
		adm_required(e, p, "must contain at least 1 address");
	else if (json_array_size(addrs) > 100)
		adm_toomany(e, p, (long long)json_array_size(addrs), 100);
	json_array_foreach(addrs, i, a)
		slice_address(type, json_string_value(a) ?: "",
		    adm_path(q, "%s[%zu]", p, i), e);
	if (node) {
		struct adm_msgs m = { 0 };
		adm_dns1123_subdomain(node, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.nodeName", base), node, &m);
	}
	adm_labels(adm_obj(ep, "deprecatedTopology"),
	    adm_path(p, "%s.deprecatedTopology", base), e);
	if (host) {
		struct adm_msgs m = { 0 };
		adm_dns1123_label(host, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.hostname", base), host, &m);
	}
}

static void slice_ports(const json_t *ports, struct api_error *e)
{
	json_t *names = json_object();
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *port;

	if (json_array_size(ports) > 20000) {
		adm_toomany(e, "ports", (long long)json_array_size(ports),
		    20000);
		goto out;
	}
	json_array_foreach(ports, i, port) {
		const char *name = adm_str(port, "name") ?: "";
		adm_path(base, "ports[%zu]", i);
		adm_path(p, "%s.name", base);
		if (*name) {
			struct adm_msgs m = { 0 };
			adm_dns1123_label(name, &m);
			adm_invalid_msgs(e, p, name, &m);
		}
		if (json_object_get(names, name))
			adm_duplicate_str(e, p, name);
		json_object_set_new(names, name, json_true());
		protocol(port, base, e);
		app_protocol(port, base, e);
	}
out:
	json_decref(names);
}

void api_validate_endpointslice(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	static const char *const types[] = { "FQDN", "IPv4", "IPv6", NULL };
	const char *type = adm_str(obj, "addressType") ?: "";
	json_t *eps = adm_arr(obj, "endpoints");
	char p[ADM_PATH];
	size_t i;
	json_t *ep;

	meta(obj, old, true, e);
	if (json_array_size(eps) > 1000) {
		adm_toomany(e, "endpoints", (long long)json_array_size(eps),
		    1000);
	} else {
		json_array_foreach(eps, i, ep)
			slice_endpoint(ep, type,
			    adm_path(p, "endpoints[%zu]", i), e);
	}
	slice_ports(adm_arr(obj, "ports"), e);
	if (old)
		adm_immutable(e, "addressType",
		    json_object_get(obj, "addressType"),
		    json_object_get(old, "addressType"));
	else if (!*type)
		adm_required(e, "addressType", "");
	else if (!adm_in_list(type, types))
		adm_unsupported(e, "addressType", type, types);
}

/* --- Lease ------------------------------------------------------------------------ */

void api_validate_lease(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	json_t *spec = adm_obj(obj, "spec");
	long long v;

	meta(obj, old, true, e);
	if (adm_int(spec, "leaseDurationSeconds", &v) && v <= 0)
		adm_invalid_int(e, "spec.leaseDurationSeconds", v,
		    "must be greater than 0");
	if (adm_int(spec, "leaseTransitions", &v) && v < 0)
		adm_invalid_int(e, "spec.leaseTransitions", v,
		    "must be greater than or equal to 0");
}

/* --- Event ------------------------------------------------------------------------- */

static void limit(const json_t *ev, const char *key, size_t max, bool required,
    struct api_error *e)
{
	const char *v = adm_str(ev, key) ?: "";
	char d[64];

	if (required && !*v)
		adm_required(e, key, "");
	if (strlen(v) > max) {
		snprintf(d, sizeof d, "can have at most %zu characters", max);
		adm_invalid_str(e, key, "", d);
	}
}

/* legacyValidateEvent for core/v1 Events. */
static void legacy_event(const json_t *ev, struct api_error *e)
{
	const char *ns = adm_str(adm_obj(ev, "metadata"), "namespace") ?: "";
	json_t *io = adm_obj(ev, "involvedObject");
	const char *ions = adm_str(io, "namespace") ?: "";
	const char *rc = adm_str(ev, "reportingComponent") ?: "";
	const char *bad = "does not match event.namespace";
	struct adm_msgs m = { 0 };

	if (!json_object_get(ev, "eventTime")) {
		if ((!*ions && *ns && strcmp(ns, "default")) ||
		    (*ions && strcmp(ns, ions)))
			adm_invalid_str(e, "involvedObject.namespace", ions,
			    bad);
	} else {
		if (!*ions && strcmp(ns, "default") &&
		    strcmp(ns, "kube-system"))
			adm_invalid_str(e, "involvedObject.namespace", ions,
			    bad);
		if (!*rc)
			adm_required(e, "reportingComponent", "");
		adm_qualified_name(rc, &m);
		adm_invalid_msgs(e, "reportingComponent", rc, &m);
		limit(ev, "reportingInstance", 128, true, e);
		limit(ev, "action", 128, true, e);
		limit(ev, "reason", 128, true, e);
		limit(ev, "message", 1024, false, e);
	}
	m.n = 0;
	adm_dns1123_subdomain(ns, &m);
	adm_invalid_msgs(e, "namespace", ns, &m);
}

/* events.k8s.io/v1 Events name their fields differently. */
static void new_event(const json_t *ev, struct api_error *e)
{
	const char *type = adm_str(ev, "type") ?: "";
	char d[300];

	if (!json_object_get(ev, "eventTime"))
		adm_required(e, "eventTime", "");
	if (strcmp(type, "Normal") && strcmp(type, "Warning")) {
		snprintf(d, sizeof d, "has invalid value: %s", type);
		adm_invalid_str(e, "type", "", d);
	}
	limit(ev, "reportingController", 253, true, e);
	limit(ev, "reportingInstance", 128, true, e);
	limit(ev, "action", 128, true, e);
	limit(ev, "reason", 128, true, e);
	limit(ev, "note", 1024, false, e);
}

void api_validate_event(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	const char *av = adm_str(obj, "apiVersion") ?: "";

	meta(obj, old, true, e);
	if (!strncmp(av, "events.k8s.io/", 14) ||
	    json_object_get(obj, "regarding") || json_object_get(obj, "note"))
		new_event(obj, e);
	else
		legacy_event(obj, e);
}
