/* admit_pod.c — ValidatePodSpec: the container lists (names unique,
 * probes, what init containers may not have), and the spec-wide fields,
 * in Kubernetes' order so causes come out as a real API server lists
 * them. One container's own rules are in admit_container.c; volumes,
 * probes, resources, security and scheduling in their own files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define INT32_MAX_S "2147483647"

static void probes(const json_t *c, struct adm_podctx *ctx, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	json_t *lc = adm_obj(c, "lifecycle");

	if (lc)
		adm_lifecycle_validate(lc, adm_path(p, "%s.lifecycle", path),
		    ctx, e);
	adm_probe_validate(adm_obj(c, "livenessProbe"),
	    adm_path(p, "%s.livenessProbe", path), ADM_PROBE_LIVENESS, ctx, e);
	adm_probe_validate(adm_obj(c, "readinessProbe"),
	    adm_path(p, "%s.readinessProbe", path), ADM_PROBE_READINESS, ctx,
	    e);
	adm_probe_validate(adm_obj(c, "startupProbe"),
	    adm_path(p, "%s.startupProbe", path), ADM_PROBE_STARTUP, ctx, e);
}

static void containers(const json_t *cs, struct adm_podctx *ctx,
    const char *path, struct api_error *e)
{
	json_t *names = json_object(), *seen = json_object();
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *c;

	if (!json_array_size(cs)) {
		adm_required(e, path, "");
		goto out;
	}
	json_array_foreach(cs, i, c) {
		const char *name = adm_str(c, "name") ?: "";
		adm_path(base, "%s[%zu]", path, i);
		adm_container_common(c, ctx, base, e);
		if (json_object_get(names, name))
			adm_duplicate_str(e, adm_path(p, "%s.name", base),
			    name);
		json_object_set_new(names, name, json_true());
		probes(c, ctx, base, e);
		if (json_object_get(c, "restartPolicy"))
			adm_forbidden(e, adm_path(p, "%s.restartPolicy", base),
			    "may not be set for non-init containers");
	}
	adm_host_ports(cs, path, seen, e);
out:
	json_decref(names);
	json_decref(seen);
}

static void init_forbidden(const json_t *c, const char *base,
    struct api_error *e)
{
	static const char *const fields[] = { "lifecycle", "livenessProbe",
		"readinessProbe", "startupProbe" };
	char p[ADM_PATH];

	for (int i = 0; i < 4; i++)
		if (json_object_get(c, fields[i]))
			adm_forbidden(e, adm_path(p, "%s.%s", base, fields[i]),
			    "may not be set for init containers without "
			    "restartPolicy=Always");
}

static void init_containers(const json_t *ics, const json_t *cs,
    struct adm_podctx *ctx, const char *path, struct api_error *e)
{
	static const char *const always[] = { "Always", NULL };
	json_t *names = json_object();
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *c;

	json_array_foreach(cs, i, c)
		json_object_set_new(names, adm_str(c, "name") ?: "",
		    json_true());
	json_array_foreach(ics, i, c) {
		const char *name = adm_str(c, "name") ?: "";
		const char *rp = adm_str(c, "restartPolicy");
		adm_path(base, "%s[%zu]", path, i);
		adm_container_common(c, ctx, base, e);
		if (rp && strcmp(rp, "Always"))
			adm_unsupported(e,
			    adm_path(p, "%s.restartPolicy", base), rp, always);
		if (json_object_get(names, name))
			adm_duplicate_str(e, adm_path(p, "%s.name", base),
			    name);
		else if (*name)
			json_object_set_new(names, name, json_true());
		json_t *one = json_pack("[O]", c), *seen = json_object();
		adm_host_ports(one, path, seen, e);
		json_decref(one);
		json_decref(seen);
		if (rp && !strcmp(rp, "Always"))
			probes(c, ctx, base, e);
		else
			init_forbidden(c, base, e);
	}
	json_decref(names);
}

/* --- spec-wide fields ------------------------------------------------------ */

static void enum_field(const json_t *spec, const char *key, const char *path,
    const char *const *values, struct api_error *e)
{
	const char *v = adm_str(spec, key);

	if (adm_is_empty(v))
		adm_required(e, path, "");
	else if (!adm_in_list(v, values))
		adm_unsupported(e, path, v, values);
}

static void host_network_ports(const json_t *spec, const char *path,
    bool is_pod, struct api_error *e)
{
	char p[ADM_PATH];
	size_t i, j;
	json_t *c, *port;

	if (!adm_bool(spec, "hostNetwork"))
		return;
	json_array_foreach(adm_arr(spec, "containers"), i, c) {
		json_array_foreach(adm_arr(c, "ports"), j, port) {
			long long hp = 0, cp = 0;
			adm_int(port, "hostPort", &hp);
			adm_int(port, "containerPort", &cp);
			if ((is_pod || hp) && hp != cp)
				adm_invalid_int(e,
				    adm_path(p,
					"%s.containers[%zu].ports[%zu].hostPort",
					path, i, j),
				    hp,
				    "must match `containerPort` "
				    "when `hostNetwork` is true");
		}
	}
}

static void pull_secrets(const json_t *list, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *s;

	json_array_foreach(list, i, s) {
		const char *k;
		json_t *v;
		json_object_foreach(s, k, v) {
			if (strcmp(k, "name")) {
				adm_invalid_json(e,
				    adm_path(p, "%s[%zu]", path, i), s,
				    "only name may be set");
				break;
			}
		}
	}
}

static void dns_config(const json_t *spec, const char *path,
    struct api_error *e)
{
	json_t *dc = adm_obj(spec, "dnsConfig");
	const char *policy = adm_str(spec, "dnsPolicy");
	char p[ADM_PATH], d[128];
	size_t i, total = 0;
	json_t *v;

	if (policy && !strcmp(policy, "None")) {
		if (!dc) {
			adm_required(e, path,
			    "must provide `dnsConfig` when "
			    "`dnsPolicy` is None");
			return;
		}
		if (!json_array_size(adm_arr(dc, "nameservers"))) {
			adm_required(e, adm_path(p, "%s.nameservers", path),
			    "must provide at least one DNS nameserver when "
			    "`dnsPolicy` is None");
			return;
		}
	}
	if (!dc)
		return;
	if (json_array_size(adm_arr(dc, "nameservers")) > 3)
		adm_invalid_json(e, adm_path(p, "%s.nameservers", path),
		    adm_arr(dc, "nameservers"),
		    "must not have more than 3 nameservers");
	json_array_foreach(adm_arr(dc, "nameservers"), i, v)
		adm_valid_ip(e, adm_path(p, "%s.nameservers[%zu]", path, i),
		    json_string_value(v) ?: "");
	if (json_array_size(adm_arr(dc, "searches")) > 32)
		adm_invalid_json(e, adm_path(p, "%s.searches", path),
		    adm_arr(dc, "searches"),
		    "must not have more than 32 search paths");
	json_array_foreach(adm_arr(dc, "searches"), i, v)
		total += (i ? 1 : 0) + strlen(json_string_value(v) ?: "");
	if (total > 2048) {
		snprintf(d, sizeof d,
		    "must not have more than 2048 characters "
		    "(including spaces) in the search list");
		adm_invalid_json(e, adm_path(p, "%s.searches", path),
		    adm_arr(dc, "searches"), d);
	}
	json_array_foreach(adm_arr(dc, "searches"), i, v) {
		/* RelaxedDNSSearchValidation is off by default in 1.32 */
		char s[300];
		struct adm_msgs m = { 0 };
		snprintf(s, sizeof s, "%s", json_string_value(v) ?: "");
		if (*s && s[strlen(s) - 1] == '.')
			s[strlen(s) - 1] = 0;
		adm_dns1123_subdomain(s, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.searches[%zu]", path, i), s,
		    &m);
	}
	json_array_foreach(adm_arr(dc, "options"), i, v)
		if (adm_is_empty(adm_str(v, "name")))
			adm_required(e, adm_path(p, "%s.options[%zu]", path, i),
			    "must not be empty");
}

static void gates(const json_t *spec, const char *path, struct api_error *e)
{
	json_t *seen = json_object();
	char p[ADM_PATH];
	size_t i;
	json_t *g;

	json_array_foreach(adm_arr(spec, "readinessGates"), i, g) {
		struct adm_msgs m = { 0 };
		const char *ct = adm_str(g, "conditionType") ?: "";
		adm_qualified_name(ct, &m);
		adm_invalid_msgs(e,
		    adm_path(p, "%s.readinessGates[%zu].conditionType", path,
			i),
		    ct, &m);
	}
	json_array_foreach(adm_arr(spec, "schedulingGates"), i, g) {
		struct adm_msgs m = { 0 };
		const char *name = adm_str(g, "name") ?: "";
		adm_path(p, "%s.schedulingGates[%zu]", path, i);
		adm_qualified_name(name, &m);
		adm_invalid_msgs(e, p, name, &m);
		if (json_object_get(seen, name))
			adm_duplicate_str(e, p, name);
		json_object_set_new(seen, name, json_true());
	}
	json_decref(seen);
}

static void spread(const json_t *spec, const char *path, struct api_error *e)
{
	static const char *const actions[] = { "DoNotSchedule",
		"ScheduleAnyway", NULL };
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *tc;

	json_array_foreach(adm_arr(spec, "topologySpreadConstraints"), i, tc) {
		long long skew = 0;
		const char *wu = adm_str(tc, "whenUnsatisfiable") ?: "";
		adm_path(base, "%s.topologySpreadConstraints[%zu]", path, i);
		adm_int(tc, "maxSkew", &skew);
		if (skew <= 0)
			adm_invalid_int(e, adm_path(p, "%s.maxSkew", base),
			    skew, "must be greater than zero");
		if (adm_is_empty(adm_str(tc, "topologyKey")))
			adm_required(e, adm_path(p, "%s.topologyKey", base),
			    "can not be empty");
		if (!adm_in_list(wu, actions))
			adm_unsupported(e,
			    adm_path(p, "%s.whenUnsatisfiable", base), wu,
			    actions);
		adm_label_selector(adm_obj(tc, "labelSelector"),
		    adm_path(p, "%s.labelSelector", base), e);
	}
}

static void name_field(const json_t *spec, const char *key, const char *path,
    void (*check)(const char *, struct adm_msgs *), struct api_error *e)
{
	char p[ADM_PATH];
	const char *v = adm_str(spec, key);
	struct adm_msgs m = { 0 };

	if (adm_is_empty(v))
		return;
	check(v, &m);
	adm_invalid_msgs(e, adm_path(p, "%s.%s", path, key), v, &m);
}

static void host_aliases(const json_t *list, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i, j;
	json_t *ha, *h;

	json_array_foreach(list, i, ha) {
		adm_valid_ip(e, adm_path(p, "%s[%zu].ip", path, i),
		    adm_str(ha, "ip") ?: "");
		json_array_foreach(adm_arr(ha, "hostnames"), j, h) {
			struct adm_msgs m = { 0 };
			const char *s = json_string_value(h) ?: "";
			adm_dns1123_subdomain(s, &m);
			adm_invalid_msgs(e,
			    adm_path(p, "%s[%zu].hostnames[%zu]", path, i, j),
			    s, &m);
		}
	}
}

static void spec_tail(const json_t *spec, const char *path, struct api_error *e)
{
	static const char *const preempt[] = { "PreemptLowerPriority", "Never",
		NULL };
	static const char *const oses[] = { "linux", "windows", NULL };
	char p[ADM_PATH];
	long long ads;
	json_t *os = adm_obj(spec, "os");

	name_field(spec, "serviceAccountName", path, adm_dns1123_subdomain, e);
	name_field(spec, "nodeName", path, adm_dns1123_subdomain, e);
	if (adm_int(spec, "activeDeadlineSeconds", &ads) &&
	    (ads < 1 || ads > 2147483647))
		adm_invalid_int(e,
		    adm_path(p, "%s.activeDeadlineSeconds", path), ads,
		    "must be between 1 and " INT32_MAX_S ", inclusive");
	name_field(spec, "hostname", path, adm_dns1123_label, e);
	name_field(spec, "subdomain", path, adm_dns1123_label, e);
	adm_tolerations_validate(adm_arr(spec, "tolerations"),
	    adm_path(p, "%s.tolerations", path), e);
	host_aliases(adm_arr(spec, "hostAliases"),
	    adm_path(p, "%s.hostAliases", path), e);
	name_field(spec, "priorityClassName", path, adm_dns1123_subdomain, e);
	if (json_is_string(json_object_get(spec, "runtimeClassName"))) {
		struct adm_msgs m = { 0 };
		const char *rc = adm_str(spec, "runtimeClassName");
		adm_dns1123_subdomain(rc, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.runtimeClassName", path),
		    rc, &m);
	}
	if (json_object_get(spec, "preemptionPolicy"))
		enum_field(spec, "preemptionPolicy",
		    adm_path(p, "%s.preemptionPolicy", path), preempt, e);
	if (adm_obj(spec, "overhead")) {
		json_t *res =
		    json_pack("{s:O}", "limits", adm_obj(spec, "overhead"));
		adm_resources_validate(res, adm_path(p, "%s.overhead", path),
		    e);
		json_decref(res);
	}
	if (os)
		enum_field(os, "name", adm_path(p, "%s.os.name", path), oses,
		    e);
}

void adm_podspec_validate(const json_t *spec, const char *path, bool is_pod,
    struct api_error *e)
{
	static const char *const restart[] = { "Always", "OnFailure", "Never",
		NULL };
	static const char *const dns[] = { "ClusterFirstWithHostNet",
		"ClusterFirst", "Default", "None", NULL };
	struct adm_podctx c = { .is_pod = is_pod };
	char p[ADM_PATH];

	c.volumes = json_object();
	c.have_grace = adm_int(spec, "terminationGracePeriodSeconds", &c.grace);
	if (!c.have_grace)
		adm_required(e,
		    adm_path(p, "%s.terminationGracePeriodSeconds", path), "");
	adm_volumes_validate(adm_arr(spec, "volumes"), &c,
	    adm_path(p, "%s.volumes", path), e);
	containers(adm_arr(spec, "containers"), &c,
	    adm_path(p, "%s.containers", path), e);
	init_containers(adm_arr(spec, "initContainers"),
	    adm_arr(spec, "containers"), &c,
	    adm_path(p, "%s.initContainers", path), e);
	host_network_ports(spec, path, is_pod, e);
	enum_field(spec, "restartPolicy", adm_path(p, "%s.restartPolicy", path),
	    restart, e);
	enum_field(spec, "dnsPolicy", adm_path(p, "%s.dnsPolicy", path), dns,
	    e);
	adm_labels(adm_obj(spec, "nodeSelector"),
	    adm_path(p, "%s.nodeSelector", path), e);
	adm_pod_security_validate(spec, adm_path(p, "%s.securityContext", path),
	    e);
	pull_secrets(adm_arr(spec, "imagePullSecrets"),
	    adm_path(p, "%s.imagePullSecrets", path), e);
	adm_affinity_validate(adm_obj(spec, "affinity"),
	    adm_path(p, "%s.affinity", path), e);
	dns_config(spec, adm_path(p, "%s.dnsConfig", path), e);
	gates(spec, path, e);
	spread(spec, path, e);
	spec_tail(spec, path, e);
	json_decref(c.volumes);
}
