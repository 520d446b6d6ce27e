/* admit_service.c — Service: SetDefaults_Service, what the service REST
 * storage does before validating (keeping allocated values on update,
 * syncing clusterIP with clusterIPs, IP family fields, dropping what a new
 * type cannot have), ValidateService and ValidateServiceUpdate.
 * Allocation, and with it the check of a nodePort against the configured
 * range, is alloc.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define AFFINITY_MAX 86400

static bool is_type(const json_t *spec, const char *type)
{
	const char *t = adm_str(spec, "type");
	return t && !strcmp(t, type);
}

static bool headless(const json_t *spec)
{
	json_t *ips = adm_arr(spec, "clusterIPs");
	const char *first = json_string_value(json_array_get(ips, 0));

	return json_array_size(ips) == 1 && first && !strcmp(first, "None");
}

static bool externally_accessible(const json_t *spec)
{
	return is_type(spec, "LoadBalancer") || is_type(spec, "NodePort") ||
	    (is_type(spec, "ClusterIP") &&
		json_array_size(adm_arr(spec, "externalIPs")));
}

/* --- defaults ------------------------------------------------------------------ */

static void set_defaults(json_t *spec)
{
	size_t i;
	json_t *p;

	adm_default_str(spec, "sessionAffinity", "None");
	if (!strcmp(adm_str(spec, "sessionAffinity"), "None"))
		json_object_del(spec, "sessionAffinityConfig");
	if (!strcmp(adm_str(spec, "sessionAffinity"), "ClientIP") &&
	    !json_object_get(adm_obj(adm_obj(spec, "sessionAffinityConfig"),
				 "clientIP"),
		"timeoutSeconds"))
		json_object_set_new(spec, "sessionAffinityConfig",
		    json_pack("{s:{s:i}}", "clientIP", "timeoutSeconds",
			10800));
	adm_default_str(spec, "type", "ClusterIP");
	json_array_foreach(adm_arr(spec, "ports"), i, p) {
		json_t *tp = json_object_get(p, "targetPort");
		adm_default_str(p, "protocol", "TCP");
		if (!tp || json_is_null(tp) ||
		    (json_is_integer(tp) && !json_integer_value(tp)) ||
		    (json_is_string(tp) && !*json_string_value(tp)))
			json_object_set_new(p, "targetPort",
			    json_object_get(p, "port") ?
				json_incref(json_object_get(p, "port")) :
				json_integer(0));
	}
	if (externally_accessible(spec))
		adm_default_str(spec, "externalTrafficPolicy", "Cluster");
	if (is_type(spec, "NodePort") || is_type(spec, "LoadBalancer") ||
	    is_type(spec, "ClusterIP"))
		adm_default_str(spec, "internalTrafficPolicy", "Cluster");
	if (is_type(spec, "LoadBalancer"))
		adm_default(spec, "allocateLoadBalancerNodePorts", json_true());
}

/* patchAllocatedValues: an update that leaves out allocated values keeps
 * them. */
static void keep_allocated(json_t *spec, const json_t *was)
{
	size_t i, j;
	json_t *p, *op;

	if (is_type(spec, "ExternalName") || is_type(was, "ExternalName"))
		return;
	if (adm_is_empty(adm_str(spec, "clusterIP")) &&
	    adm_str(was, "clusterIP"))
		json_object_set(spec, "clusterIP",
		    json_object_get(was, "clusterIP"));
	if (!json_array_size(adm_arr(spec, "clusterIPs")) &&
	    adm_arr(was, "clusterIPs"))
		json_object_set_new(spec, "clusterIPs",
		    json_deep_copy(adm_arr(was, "clusterIPs")));
	json_array_foreach(adm_arr(spec, "ports"), i, p) {
		if (json_integer_value(json_object_get(p, "nodePort")))
			continue;
		json_array_foreach(adm_arr(was, "ports"), j, op) {
			const char *a = adm_str(p, "name") ?: "";
			const char *b = adm_str(op, "name") ?: "";
			if (!strcmp(a, b) &&
			    json_integer_value(
				json_object_get(op, "nodePort"))) {
				json_object_set(p, "nodePort",
				    json_object_get(op, "nodePort"));
				break;
			}
		}
	}
}

static bool same_ips(const json_t *a, const json_t *b)
{
	return adm_equal(adm_arr(a, "clusterIPs"), adm_arr(b, "clusterIPs"));
}

/* normalizeClusterIPs: make the singular and plural fields agree. */
static void normalize_ips(json_t *spec, const json_t *was)
{
	const char *ip = adm_str(spec, "clusterIP") ?: "";
	const char *oip = adm_str(was, "clusterIP") ?: "";

	if (!was) {
		if (*ip && !json_array_size(adm_arr(spec, "clusterIPs")))
			json_object_set_new(spec, "clusterIPs",
			    json_pack("[s]", ip));
		return;
	}
	if (json_array_size(adm_arr(was, "clusterIPs")) &&
	    !json_array_size(adm_arr(spec, "clusterIPs")) && !strcmp(ip, oip))
		json_object_set_new(spec, "clusterIPs",
		    json_deep_copy(adm_arr(was, "clusterIPs")));
	if (!strcmp(ip, oip) || !same_ips(spec, was))
		return;
	if (*oip && !*ip)
		json_object_del(spec, "clusterIPs");
	else
		json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
}

static void ip_families(json_t *spec, const json_t *was)
{
	size_t i;
	json_t *ip;

	if (is_type(spec, "ExternalName")) {
		json_object_del(spec, "ipFamilies");
		json_object_del(spec, "ipFamilyPolicy");
		return;
	}
	if (was && !adm_str(spec, "ipFamilyPolicy") &&
	    adm_str(was, "ipFamilyPolicy"))
		json_object_set(spec, "ipFamilyPolicy",
		    json_object_get(was, "ipFamilyPolicy"));
	if (was && !json_array_size(adm_arr(spec, "ipFamilies")) &&
	    adm_arr(was, "ipFamilies"))
		json_object_set_new(spec, "ipFamilies",
		    json_deep_copy(adm_arr(was, "ipFamilies")));
	/* headless services without a selector default to dual-stack */
	adm_default_str(spec, "ipFamilyPolicy",
	    headless(spec) && !json_object_size(adm_obj(spec, "selector")) ?
		"RequireDualStack" :
		"SingleStack");
	if (json_array_size(adm_arr(spec, "ipFamilies")))
		return;
	json_t *fams = json_array();
	json_array_foreach(adm_arr(spec, "clusterIPs"), i, ip) {
		int f = adm_ip_family(json_string_value(ip));
		if (f)
			json_array_append_new(fams,
			    json_string(f == 6 ? "IPv6" : "IPv4"));
	}
	if (!json_array_size(fams))
		json_array_append_new(fams, json_string("IPv4"));
	json_object_set_new(spec, "ipFamilies", fams);
}

static bool same(const json_t *a, const json_t *b, const char *key)
{
	return adm_equal(json_object_get(a, key), json_object_get(b, key));
}

static bool needs_node_port(const json_t *spec)
{
	return is_type(spec, "NodePort") || is_type(spec, "LoadBalancer");
}

static bool same_node_ports(const json_t *a, const json_t *b)
{
	json_t *pa = adm_arr(a, "ports"), *pb = adm_arr(b, "ports");

	if (json_array_size(pa) != json_array_size(pb))
		return false;
	for (size_t i = 0; i < json_array_size(pa); i++)
		if (!same(json_array_get(pa, i), json_array_get(pb, i),
			"nodePort"))
			return false;
	return true;
}

/* dropTypeDependentFields: a type change drops the values the new type
 * cannot have, when the update left them as they were. */
static void drop_type_dependent(json_t *spec, const json_t *was)
{
	static const char *const ip_keys[] = { "ipFamilies", "ipFamilyPolicy" };
	size_t i;
	json_t *p;

	if (!is_type(was, "ExternalName") && is_type(spec, "ExternalName")) {
		if (same_ips(spec, was)) {
			json_object_del(spec, "clusterIP");
			json_object_del(spec, "clusterIPs");
		}
		for (int k = 0; k < 2; k++)
			if (same(spec, was, ip_keys[k]))
				json_object_del(spec, ip_keys[k]);
	}
	if (needs_node_port(was) && !needs_node_port(spec) &&
	    same_node_ports(spec, was))
		json_array_foreach(adm_arr(spec, "ports"), i, p)
			json_object_del(p, "nodePort");
	if (is_type(was, "LoadBalancer") && !is_type(spec, "LoadBalancer")) {
		static const char *const lb[] = { "healthCheckNodePort",
			"allocateLoadBalancerNodePorts", "loadBalancerClass" };
		for (int k = 0; k < 3; k++)
			if (same(spec, was, lb[k]))
				json_object_del(spec, lb[k]);
	}
	if (externally_accessible(was) && !externally_accessible(spec) &&
	    same(spec, was, "externalTrafficPolicy"))
		json_object_del(spec, "externalTrafficPolicy");
}

void api_default_service(json_t *obj, const json_t *old)
{
	json_t *spec, *was = adm_obj(old, "spec");

	if (!json_is_object(obj))
		return;
	spec = adm_obj_make(obj, "spec");
	if (old)
		keep_allocated(spec, was);
	if (old)
		drop_type_dependent(spec, was);
	set_defaults(spec);
	normalize_ips(spec, old ? was : NULL);
	ip_families(spec, old ? was : NULL);
	if (!old)
		json_object_set_new(obj, "status",
		    json_pack("{s:{}}", "loadBalancer"));
}

/* --- validation ------------------------------------------------------------------ */

static const char *const protocols[] = { "SCTP", "TCP", "UDP", NULL };

static void service_port(const json_t *sp, bool require_name, json_t *names,
    const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *name = adm_str(sp, "name") ?: "";
	const char *proto = adm_str(sp, "protocol");
	long long port = 0;

	adm_path(p, "%s.name", path);
	if (require_name && !*name) {
		adm_required(e, p, "");
	} else if (*name) {
		struct adm_msgs m = { 0 };
		adm_dns1123_label(name, &m);
		adm_invalid_msgs(e, p, name, &m);
		if (json_object_get(names, name))
			adm_duplicate_str(e, p, name);
		json_object_set_new(names, name, json_true());
	}
	adm_int(sp, "port", &port);
	if (port < 1 || port > 65535)
		adm_invalid_int(e, adm_path(p, "%s.port", path), port,
		    "must be between 1 and 65535, inclusive");
	adm_path(p, "%s.protocol", path);
	if (adm_is_empty(proto))
		adm_required(e, p, "");
	else if (!adm_in_list(proto, protocols))
		adm_unsupported(e, p, proto, protocols);
	adm_port_num_or_name(json_object_get(sp, "targetPort"),
	    adm_path(p, "%s.targetPort", path), e);
	if (adm_str(sp, "appProtocol")) {
		struct adm_msgs m = { 0 };
		adm_qualified_name(adm_str(sp, "appProtocol"), &m);
		adm_invalid_msgs(e, adm_path(p, "%s.appProtocol", path),
		    adm_str(sp, "appProtocol"), &m);
	}
}

static void by_type(const json_t *spec, struct api_error *e)
{
	const char *first =
	    json_string_value(json_array_get(adm_arr(spec, "clusterIPs"), 0));
	char cname[300];

	if ((is_type(spec, "LoadBalancer") || is_type(spec, "NodePort")) &&
	    headless(spec)) {
		char d[100];
		snprintf(d, sizeof d,
		    "may not be set to 'None' for %s services",
		    adm_str(spec, "type"));
		adm_invalid_str(e, "spec.clusterIPs[0]", first, d);
	}
	if (!is_type(spec, "ExternalName"))
		return;
	if (json_array_size(adm_arr(spec, "clusterIPs")))
		adm_forbidden(e, "spec.clusterIPs",
		    "may not be set for ExternalName services");
	if (json_array_size(adm_arr(spec, "ipFamilies")))
		adm_forbidden(e, "spec.ipFamilies",
		    "may not be set for ExternalName services");
	if (json_object_get(spec, "ipFamilyPolicy"))
		adm_forbidden(e, "spec.ipFamilyPolicy",
		    "may not be set for ExternalName services");
	snprintf(cname, sizeof cname, "%s",
	    adm_str(spec, "externalName") ?: "");
	if (*cname && cname[strlen(cname) - 1] == '.')
		cname[strlen(cname) - 1] = 0;
	if (*cname) {
		struct adm_msgs m = { 0 };
		adm_dns1123_subdomain(cname, &m);
		adm_invalid_msgs(e, "spec.externalName", cname, &m);
	} else {
		adm_required(e, "spec.externalName", "");
	}
}

static void affinity(const json_t *spec, struct api_error *e)
{
	static const char *const types[] = { "ClientIP", "None", NULL };
	const char *sa = adm_str(spec, "sessionAffinity");
	const char *p = "spec.sessionAffinityConfig";
	json_t *cfg = adm_obj(spec, "sessionAffinityConfig");
	json_t *cip = adm_obj(cfg, "clientIP");
	json_t *to = json_object_get(cip, "timeoutSeconds");
	const char *d = "when session affinity type is ClientIP";

	if (adm_is_empty(sa)) {
		adm_required(e, "spec.sessionAffinity", "");
		return;
	}
	if (!adm_in_list(sa, types)) {
		adm_unsupported(e, "spec.sessionAffinity", sa, types);
	} else if (!strcmp(sa, "None")) {
		if (cfg)
			adm_forbidden(e, p,
			    "must not be set when session affinity is None");
	} else if (!cfg) {
		adm_required(e, p, d);
	} else if (!cip) {
		adm_required(e, "spec.sessionAffinityConfig.clientIP", d);
	} else if (!json_is_integer(to)) {
		adm_required(e,
		    "spec.sessionAffinityConfig.clientIP.timeoutSeconds", d);
	} else if (json_integer_value(to) <= 0 ||
	    json_integer_value(to) > AFFINITY_MAX) {
		adm_invalid_int(e,
		    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
		    json_integer_value(to),
		    "must be greater than 0 and less than 86400");
	}
}

/* ValidateServiceClusterIPsRelatedFields */
static void cluster_ips(const json_t *spec, struct api_error *e)
{
	static const char *const fams[] = { "IPv4", "IPv6", NULL };
	static const char *const pols[] = { "PreferDualStack",
		"RequireDualStack", "SingleStack", NULL };
	json_t *ips = adm_arr(spec, "clusterIPs");
	const char *ip = adm_str(spec, "clusterIP") ?: "";
	const char *first = json_string_value(json_array_get(ips, 0));
	char p[ADM_PATH];
	bool bad = false;
	size_t i;
	json_t *v;

	if (is_type(spec, "ExternalName"))
		return;
	if (*ip && !json_array_size(ips))
		adm_required(e, "spec.clusterIPs", "");
	else if (*ip && (!first || strcmp(first, ip)))
		adm_invalid_json(e, "spec.clusterIPs", ips,
		    "first value must match `clusterIP`");
	else if (!*ip && json_array_size(ips))
		adm_invalid_json(e, "spec.clusterIPs", ips,
		    "must be empty when `clusterIP` is not specified");
	json_t *seen = json_object();
	json_array_foreach(adm_arr(spec, "ipFamilies"), i, v) {
		const char *f = json_string_value(v) ?: "";
		adm_path(p, "spec.ipFamilies[%zu]", i);
		if (!adm_in_list(f, fams))
			adm_unsupported(e, p, f, fams);
		if (json_object_get(seen, f))
			adm_duplicate_str(e, p, f);
		json_object_set_new(seen, f, json_true());
	}
	json_decref(seen);
	if (adm_str(spec, "ipFamilyPolicy") &&
	    !adm_in_list(adm_str(spec, "ipFamilyPolicy"), pols))
		adm_unsupported(e, "spec.ipFamilyPolicy",
		    adm_str(spec, "ipFamilyPolicy"), pols);
	json_array_foreach(ips, i, v) {
		const char *s = json_string_value(v) ?: "";
		if (i == 0 && !strcmp(s, "None")) {
			if (json_array_size(ips) > 1) {
				bad = true;
				adm_invalid_json(e, "spec.clusterIPs", ips,
				    "'None' must be the first and only value");
			}
			continue;
		}
		bad |= !adm_ip_family(s);
		adm_valid_ip(e, adm_path(p, "spec.clusterIPs[%zu]", i), s);
	}
	if (json_array_size(ips) > 2)
		adm_invalid_json(e, "spec.clusterIPs", ips,
		    "may only hold up to 2 values");
	if (bad)
		return;
	if (json_array_size(ips) == 2 &&
	    adm_ip_family(first) ==
		adm_ip_family(json_string_value(json_array_get(ips, 1))))
		adm_invalid_json(e, "spec.clusterIPs", ips,
		    "may specify no more than one IP for each IP family");
	if (headless(spec))
		return;
	json_array_foreach(ips, i, v) {
		const char *fam = json_string_value(
		    json_array_get(adm_arr(spec, "ipFamilies"), i));
		char d[100];
		int f = adm_ip_family(json_string_value(v));
		if (!fam)
			break;
		if ((!strcmp(fam, "IPv4") && f == 6) ||
		    (!strcmp(fam, "IPv6") && f != 6)) {
			snprintf(d, sizeof d,
			    "expected an %s value as indicated "
			    "by `ipFamilies[%zu]`",
			    fam, i);
			adm_invalid_str(e,
			    adm_path(p, "spec.clusterIPs[%zu]", i),
			    json_string_value(v), d);
		}
	}
}

/* The internal ServicePort key of a duplicate, marshalled with Go's
 * field names. */
static void dup_port(const json_t *port, const char *path, struct api_error *e)
{
	char v[200];
	long long n = 0;

	adm_int(port, "port", &n);
	char *proto = adm_quote(adm_str(port, "protocol") ?: "");
	snprintf(v, sizeof v,
	    "{\"Name\":\"\",\"Protocol\":%s,"
	    "\"AppProtocol\":null,\"Port\":%lld,\"TargetPort\":0,"
	    "\"NodePort\":0}",
	    proto, n);
	free(proto);
	adm_duplicate_raw(e, path, v);
}

static void ports_unique(const json_t *spec, struct api_error *e)
{
	json_t *nps = json_object(), *ps = json_object();
	char p[ADM_PATH], key[64];
	size_t i;
	json_t *port;
	long long np, n;

	json_array_foreach(adm_arr(spec, "ports"), i, port) {
		const char *proto = adm_str(port, "protocol") ?: "";
		if (!adm_int(port, "nodePort", &np) || !np)
			continue;
		snprintf(key, sizeof key, "%s/%lld", proto, np);
		if (json_object_get(nps, key))
			adm_duplicate_raw(e,
			    adm_path(p, "spec.ports[%zu].nodePort", i),
			    key + strlen(proto) + 1);
		json_object_set_new(nps, key, json_true());
	}
	json_array_foreach(adm_arr(spec, "ports"), i, port) {
		n = 0;
		adm_int(port, "port", &n);
		snprintf(key, sizeof key, "%s/%lld",
		    adm_str(port, "protocol") ?: "", n);
		if (json_object_get(ps, key))
			dup_port(port, adm_path(p, "spec.ports[%zu]", i), e);
		json_object_set_new(ps, key, json_true());
	}
	json_decref(nps);
	json_decref(ps);
}

static void node_ports(const json_t *spec, struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *port;
	long long np;

	if (!is_type(spec, "ClusterIP"))
		return;
	json_array_foreach(adm_arr(spec, "ports"), i, port)
		if (adm_int(port, "nodePort", &np) && np)
			adm_forbidden(e,
			    adm_path(p, "spec.ports[%zu].nodePort", i),
			    "may not be used when `type` is 'ClusterIP'");
}

static void load_balancer(const json_t *spec, const json_t *meta,
    struct api_error *e)
{
	const char *only = "may only be used when `type` is 'LoadBalancer'";
	bool lb = is_type(spec, "LoadBalancer");
	json_t *ranges = adm_arr(spec, "loadBalancerSourceRanges");
	const char *ann = adm_str(adm_obj(meta, "annotations"),
	    "service.beta.kubernetes.io/load-balancer-source-ranges");
	char p[ADM_PATH];
	size_t i;
	json_t *r;

	if (json_array_size(ranges)) {
		if (!lb)
			adm_forbidden(e, "spec.LoadBalancerSourceRanges", only);
		json_array_foreach(ranges, i, r) {
			char v[128];
			snprintf(v, sizeof v, "%s", json_string_value(r) ?: "");
			adm_valid_cidr(e,
			    adm_path(p, "spec.LoadBalancerSourceRanges[%zu]",
				i),
			    v);
		}
	} else if (ann && !lb) {
		adm_forbidden(e,
		    "metadata.annotations[service.beta.kubernetes.io"
		    "/load-balancer-source-ranges]",
		    only);
	}
	if (json_object_get(spec, "allocateLoadBalancerNodePorts") && !lb)
		adm_forbidden(e, "spec.allocateLoadBalancerNodePorts", only);
	if (adm_str(spec, "loadBalancerClass")) {
		if (!lb) {
			adm_forbidden(e, "spec.loadBalancerClass", only);
		} else {
			struct adm_msgs m = { 0 };
			adm_qualified_name(adm_str(spec, "loadBalancerClass"),
			    &m);
			adm_invalid_msgs(e, "spec.loadBalancerClass",
			    adm_str(spec, "loadBalancerClass"), &m);
		}
	}
}

static void traffic(const json_t *spec, struct api_error *e)
{
	static const char *const pols[] = { "Cluster", "Local", NULL };
	static const char *const dist[] = { "PreferClose", NULL };
	const char *etp = adm_str(spec, "externalTrafficPolicy");
	const char *itp = adm_str(spec, "internalTrafficPolicy");
	const char *td = adm_str(spec, "trafficDistribution");
	long long hc = 0;
	bool needs_hc = is_type(spec, "LoadBalancer") && etp &&
	    !strcmp(etp, "Local");

	if (!externally_accessible(spec)) {
		if (!adm_is_empty(etp))
			adm_invalid_str(e, "spec.externalTrafficPolicy", etp,
			    "may only be set for externally-accessible services");
	} else if (adm_is_empty(etp)) {
		adm_required(e, "spec.externalTrafficPolicy", "");
	} else if (!adm_in_list(etp, pols)) {
		adm_unsupported(e, "spec.externalTrafficPolicy", etp, pols);
	}
	adm_int(spec, "healthCheckNodePort", &hc);
	if (!needs_hc && hc)
		adm_invalid_int(e, "spec.healthCheckNodePort", hc,
		    "may only be set when `type` is 'LoadBalancer' and "
		    "`externalTrafficPolicy` is 'Local'");
	else if (needs_hc && hc && (hc < 1 || hc > 65535))
		adm_invalid_int(e, "spec.healthCheckNodePort", hc,
		    "must be between 1 and 65535, inclusive");
	if (!itp &&
	    (is_type(spec, "NodePort") || is_type(spec, "ClusterIP") ||
		is_type(spec, "LoadBalancer")))
		adm_required(e, "spec.internalTrafficPolicy", "");
	if (itp && !adm_in_list(itp, pols))
		adm_unsupported(e, "spec.internalTrafficPolicy", itp, pols);
	if (td && strcmp(td, "PreferClose"))
		adm_unsupported(e, "spec.trafficDistribution", td, dist);
}

static void topology_annotations(const json_t *meta, struct api_error *e)
{
	json_t *ann = adm_obj(meta, "annotations");
	const char *hints =
	    adm_str(ann, "service.kubernetes.io/topology-aware-hints");
	const char *mode = adm_str(ann, "service.kubernetes.io/topology-mode");

	if (hints && mode && strcmp(hints, mode))
		adm_invalid_str(e,
		    "metadata.annotations[service.kubernetes.io/topology-mode]",
		    mode,
		    "must match annotations[service."
		    "kubernetes.io/topology-aware-hints] when both are "
		    "specified");
}

static void validate_service(const json_t *svc, struct api_error *e)
{
	static const char *const types[] = { "ClusterIP", "ExternalName",
		"LoadBalancer", "NodePort", NULL };
	json_t *spec = adm_obj(svc, "spec"), *meta = adm_obj(svc, "metadata");
	json_t *ports = adm_arr(spec, "ports"), *names = json_object();
	const char *type = adm_str(spec, "type");
	char p[ADM_PATH];
	size_t i;
	json_t *v;

	adm_meta(svc, true, adm_name_1035, e);
	topology_annotations(meta, e);
	if (!json_array_size(ports) && !headless(spec) &&
	    !is_type(spec, "ExternalName"))
		adm_required(e, "spec.ports", "");
	by_type(spec, e);
	json_array_foreach(ports, i, v)
		service_port(v, json_array_size(ports) > 1, names,
		    adm_path(p, "spec.ports[%zu]", i), e);
	json_decref(names);
	adm_labels(adm_obj(spec, "selector"), "spec.selector", e);
	affinity(spec, e);
	cluster_ips(spec, e);
	json_array_foreach(adm_arr(spec, "externalIPs"), i, v) {
		const char *ip = json_string_value(v) ?: "";
		adm_path(p, "spec.externalIPs[%zu]", i);
		if (!adm_ip_family(ip))
			adm_valid_ip(e, p, ip);
		else
			adm_non_special_ip(e, p, ip);
	}
	if (adm_is_empty(type))
		adm_required(e, "spec.type", "");
	else if (!adm_in_list(type, types))
		adm_unsupported(e, "spec.type", type, types);
	node_ports(spec, e);
	ports_unique(spec, e);
	load_balancer(spec, meta, e);
	traffic(spec, e);
}

/* validateUpgradeDowngradeClusterIPs and ...IPFamilies, simplified to
 * what a single-stack cluster can see: set values may not change. */
static void ips_unchanged(const json_t *now, const json_t *was,
    struct api_error *e)
{
	json_t *a = adm_arr(now, "clusterIPs"), *b = adm_arr(was, "clusterIPs");
	json_t *fa = adm_arr(now, "ipFamilies"),
	       *fb = adm_arr(was, "ipFamilies");
	size_t i;
	json_t *v;

	if (is_type(now, "ExternalName") || is_type(was, "ExternalName") ||
	    (headless(now) && headless(was)))
		return;
	if (json_array_size(b) > json_array_size(a) && !json_array_size(a))
		adm_invalid_json(e, "spec.clusterIPs[0]", a ? a : json_null(),
		    "primary clusterIP can not be unset");
	json_array_foreach(b, i, v) {
		json_t *n = json_array_get(a, i);
		if (n && !json_equal(n, v)) {
			char p[ADM_PATH];
			adm_invalid_json(e,
			    adm_path(p, "spec.clusterIPs[%zu]", i), a,
			    "may not change once set");
		}
	}
	if (headless(now) != headless(was) || headless(now))
		return;
	json_array_foreach(fb, i, v) {
		json_t *n = json_array_get(fa, i);
		if (n && !json_equal(n, v))
			adm_invalid_json(e, "spec.ipFamilies[0]", fa,
			    "may not change once set");
	}
}

static void lb_class_unchanged(const json_t *now, const json_t *was,
    struct api_error *e)
{
	json_t *a = json_object_get(now, "loadBalancerClass");
	json_t *b = json_object_get(was, "loadBalancerClass");

	if (is_type(now, "LoadBalancer") && is_type(was, "LoadBalancer") &&
	    !adm_equal(a, b))
		adm_invalid_json(e, "spec.loadBalancerClass", a,
		    "may not change once set");
}

void api_validate_service(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	json_t *now = adm_obj(obj, "spec"), *was = adm_obj(old, "spec");

	if (old) {
		adm_meta_update(obj, old, e);
		ips_unchanged(now, was, e);
		lb_class_unchanged(now, was, e);
	}
	validate_service(obj, e);
}
