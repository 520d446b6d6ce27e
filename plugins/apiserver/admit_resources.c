/* admit_resources.c — container resource requirements
 * (validateResourceRequirements): resource names, non-negative (and for
 * extended resources integer) quantities, requests within limits, and
 * requests equal to limits where overcommit is not allowed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

static bool is_native(const char *name)
{
	return !strchr(name, '/') || strstr(name, "kubernetes.io/");
}

static bool is_hugepages(const char *name)
{
	return !strncmp(name, "hugepages-", 10);
}

static bool is_extended(const char *name)
{
	char quota[400];
	struct adm_msgs m = { 0 };

	if (is_native(name) || !strncmp(name, "requests.", 9))
		return false;
	snprintf(quota, sizeof quota, "requests.%s", name);
	adm_qualified_name(quota, &m);
	return m.n == 0;
}

static bool standard_resource(const char *name)
{
	static const char *const std[] = { "cpu", "memory", "storage",
		"ephemeral-storage", "requests.cpu", "requests.memory",
		"requests.storage", "requests.ephemeral-storage", "limits.cpu",
		"limits.memory", "limits.ephemeral-storage", "pods", "services",
		"replicationcontrollers", "resourcequotas", "secrets",
		"configmaps", "persistentvolumeclaims", "services.nodeports",
		"services.loadbalancers", NULL };

	return adm_in_list(name, std) || is_hugepages(name) ||
	    !strncmp(name, "requests.hugepages-", 19);
}

static void resource_name(const char *name, const char *path,
    struct api_error *e)
{
	struct adm_msgs m = { 0 };

	adm_qualified_name(name, &m);
	adm_invalid_msgs(e, path, name, &m);
	if (!m.n && !strchr(name, '/') && !standard_resource(name))
		adm_invalid_str(e, path, name,
		    "must be a standard resource type or fully qualified");
	if (!strchr(name, '/')) {
		if (strcmp(name, "cpu") && strcmp(name, "memory") &&
		    strcmp(name, "ephemeral-storage") && !is_hugepages(name))
			adm_invalid_str(e, path, name,
			    "must be a standard resource for containers");
	} else if (!is_native(name) && !is_extended(name)) {
		adm_invalid_str(e, path, name,
		    "doesn't follow extended resource name standard");
	}
}

static bool quantity_value(const json_t *v, const char *name, const char *path,
    struct adm_qty *q, struct api_error *e)
{
	char buf[64];

	if (adm_qty_json(v, q))
		return false; /* a decoding error, reported as such */
	adm_qty_text(q, buf, sizeof buf);
	if (adm_qty_sign(q) < 0)
		adm_invalid_str(e, path, buf,
		    "must be greater than or equal to 0");
	if (is_extended(name) && !adm_qty_is_int(q))
		adm_invalid_str(e, path, buf, "must be an integer");
	return true;
}

static void request_vs_limit(const char *name, const struct adm_qty *req,
    const json_t *lim, const char *reqpath, const char *limpath,
    struct api_error *e)
{
	bool overcommit = is_native(name) && !is_hugepages(name);
	struct adm_qty l;
	char rs[64], ls[64], d[300];

	if (!lim || adm_qty_json(lim, &l)) {
		if (!overcommit && !lim)
			adm_required(e, limpath,
			    "Limit must be set for non "
			    "overcommitable resources");
		return;
	}
	adm_qty_text(req, rs, sizeof rs);
	adm_qty_text(&l, ls, sizeof ls);
	if (!overcommit && adm_qty_cmp(req, &l)) {
		snprintf(d, sizeof d, "must be equal to %s limit of %s", name,
		    ls);
		adm_invalid_str(e, reqpath, rs, d);
	} else if (adm_qty_cmp(req, &l) > 0) {
		snprintf(d, sizeof d,
		    "must be less than or equal to %s limit of %s", name, ls);
		adm_invalid_str(e, reqpath, rs, d);
	}
}

void adm_resources_validate(const json_t *res, const char *path,
    struct api_error *e)
{
	char lp[ADM_PATH], rp[ADM_PATH], p[ADM_PATH];
	json_t *lim = adm_obj(res, "limits"), *req = adm_obj(res, "requests");
	bool cpumem = false, huge = false;
	const char *k;
	json_t *v;
	struct adm_qty q;

	adm_path(lp, "%s.limits", path);
	adm_path(rp, "%s.requests", path);
	json_object_foreach(lim, k, v) {
		adm_path(p, "%s[%s]", lp, k);
		resource_name(k, p, e);
		quantity_value(v, k, p, &q, e);
		huge |= is_hugepages(k);
		cpumem |= !strcmp(k, "cpu") || !strcmp(k, "memory");
	}
	json_object_foreach(req, k, v) {
		adm_path(p, "%s[%s]", rp, k);
		resource_name(k, p, e);
		if (quantity_value(v, k, p, &q, e))
			request_vs_limit(k, &q, json_object_get(lim, k), rp, lp,
			    e);
		huge |= is_hugepages(k);
		cpumem |= !strcmp(k, "cpu") || !strcmp(k, "memory");
	}
	if (huge && !cpumem)
		adm_forbidden(e, path, "HugePages require cpu or memory");
}
