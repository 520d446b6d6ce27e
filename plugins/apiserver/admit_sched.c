/* admit_sched.c — the scheduling parts of a PodSpec: tolerations and
 * taint effects, node affinity (selector terms, field selectors, weights)
 * and pod (anti-)affinity terms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

void adm_taint_effect(const char *effect, bool allow_empty, const char *path,
    struct api_error *e)
{
	static const char *const effects[] = { "NoSchedule", "PreferNoSchedule",
		"NoExecute", NULL };

	if (!allow_empty && adm_is_empty(effect))
		adm_required(e, path, "");
	else if (!adm_in_list(effect ? effect : "", effects))
		adm_unsupported(e, path, effect ? effect : "", effects);
}

static void toleration(const json_t *t, const char *base, struct api_error *e)
{
	static const char *const ops[] = { "Equal", "Exists", NULL };
	char p[ADM_PATH];
	const char *key = adm_str(t, "key") ?: "";
	const char *op = adm_str(t, "operator") ?: "";
	const char *val = adm_str(t, "value") ?: "";
	const char *eff = adm_str(t, "effect") ?: "";

	if (*key)
		adm_label_name(key, adm_path(p, "%s.key", base), e);
	adm_path(p, "%s.operator", base);
	if (!*key && strcmp(op, "Exists"))
		adm_invalid_str(e, p, op,
		    "operator must be Exists when `key` is "
		    "empty, which means \"match all values and all keys\"");
	if (json_object_get(t, "tolerationSeconds") && strcmp(eff, "NoExecute"))
		adm_invalid_str(e, adm_path(p, "%s.effect", base), eff,
		    "effect must be 'NoExecute' when `tolerationSeconds` is set");
	adm_path(p, "%s.operator", base);
	if (!*op || !strcmp(op, "Equal")) {
		struct adm_msgs m = { 0 };
		char joined[1000] = "";
		adm_label_value(val, &m);
		for (int i = 0; i < m.n; i++)
			snprintf(joined + strlen(joined),
			    sizeof joined - strlen(joined), "%s%s",
			    i ? ";" : "", m.m[i]);
		if (m.n)
			adm_invalid_str(e, p, val, joined);
	} else if (!strcmp(op, "Exists")) {
		if (*val)
			adm_invalid_str(e, p, val,
			    "value must be empty when `operator` is 'Exists'");
	} else {
		adm_unsupported(e, p, op, ops);
	}
	if (*eff)
		adm_taint_effect(eff, true, adm_path(p, "%s.effect", base), e);
}

void adm_tolerations_validate(const json_t *tols, const char *path,
    struct api_error *e)
{
	char base[ADM_PATH];
	size_t i;
	json_t *t;

	json_array_foreach(tols, i, t)
		toleration(t, adm_path(base, "%s[%zu]", path, i), e);
}

static void node_requirement(const json_t *r, const char *path,
    bool check_values, struct api_error *e)
{
	char p[ADM_PATH];
	const char *op = adm_str(r, "operator") ?: "";
	size_t nv = json_array_size(adm_arr(r, "values")), i;
	json_t *v;

	adm_path(p, "%s.values", path);
	if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
		if (!nv)
			adm_required(e, p,
			    "must be specified when `operator` is "
			    "'In' or 'NotIn'");
	} else if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
		if (nv)
			adm_forbidden(e, p,
			    "may not be specified when "
			    "`operator` is 'Exists' or 'DoesNotExist'");
	} else if (!strcmp(op, "Gt") || !strcmp(op, "Lt")) {
		if (nv != 1)
			adm_required(e, p,
			    "must be specified single value when "
			    "`operator` is 'Lt' or 'Gt'");
	} else {
		adm_invalid_str(e, adm_path(p, "%s.operator", path), op,
		    "not a valid selector operator");
	}
	adm_label_name(adm_str(r, "key") ?: "", adm_path(p, "%s.key", path), e);
	json_array_foreach(check_values ? adm_arr(r, "values") : NULL, i, v) {
		struct adm_msgs m = { 0 };
		const char *s = json_string_value(v) ?: "";
		adm_label_value(s, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.values[%zu]", path, i), s,
		    &m);
	}
}

static void field_requirement(const json_t *r, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	const char *op = adm_str(r, "operator") ?: "";
	const char *key = adm_str(r, "key") ?: "";

	if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
		if (json_array_size(adm_arr(r, "values")) != 1)
			adm_required(e, adm_path(p, "%s.values", path),
			    "must be "
			    "only one value when `operator` is 'In' or 'NotIn' "
			    "for node field selector");
	} else {
		adm_invalid_str(e, adm_path(p, "%s.operator", path), op,
		    "not a valid selector operator");
	}
	if (strcmp(key, "metadata.name"))
		adm_invalid_str(e, adm_path(p, "%s.key", path), key,
		    "not a valid field selector key");
}

static void node_term(const json_t *term, const char *path, bool values,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *r;

	json_array_foreach(adm_arr(term, "matchExpressions"), i, r)
		node_requirement(r,
		    adm_path(p, "%s.matchExpressions[%zu]", path, i), values,
		    e);
	json_array_foreach(adm_arr(term, "matchFields"), i, r)
		field_requirement(r,
		    adm_path(p, "%s.matchFields[%zu]", path, i), e);
}

static void weight(const json_t *o, const char *path, struct api_error *e)
{
	long long w = 0;

	adm_int(o, "weight", &w);
	if (w <= 0 || w > 100)
		adm_invalid_int(e, path, w, "must be in the range 1-100");
}

static void node_affinity(const json_t *na, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH], q[ADM_PATH];
	json_t *req =
	    adm_obj(na, "requiredDuringSchedulingIgnoredDuringExecution");
	size_t i;
	json_t *t;

	if (req) {
		adm_path(p,
		    "%s.requiredDuringSchedulingIgnoredDuringExecution."
		    "nodeSelectorTerms",
		    path);
		if (!json_array_size(adm_arr(req, "nodeSelectorTerms")))
			adm_required(e, p,
			    "must have at least one node selector term");
		json_array_foreach(adm_arr(req, "nodeSelectorTerms"), i, t)
			node_term(t, adm_path(q, "%s[%zu]", p, i), true, e);
	}
	adm_path(p, "%s.preferredDuringSchedulingIgnoredDuringExecution", path);
	json_array_foreach(adm_arr(na,
			       "preferredDuringSchedulingIgnoredDuringExecution"),
	    i, t) {
		weight(t, adm_path(q, "%s[%zu].weight", p, i), e);
		/* preferred terms may use any label value */
		node_term(adm_obj(t, "preference"),
		    adm_path(q, "%s[%zu].preference", p, i), false, e);
	}
}

static void pod_term(const json_t *t, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *ns;

	adm_label_selector(adm_obj(t, "labelSelector"),
	    adm_path(p, "%s.labelSelector", path), e);
	adm_label_selector(adm_obj(t, "namespaceSelector"),
	    adm_path(p, "%s.namespaceSelector", path), e);
	json_array_foreach(adm_arr(t, "namespaces"), i, ns) {
		struct adm_msgs m = { 0 };
		const char *s = json_string_value(ns) ?: "";
		adm_dns1123_label(s, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.namespace", path), s, &m);
	}
	adm_path(p, "%s.topologyKey", path);
	if (adm_is_empty(adm_str(t, "topologyKey")))
		adm_required(e, p, "can not be empty");
	adm_label_name(adm_str(t, "topologyKey") ?: "", p, e);
}

static void pod_affinity(const json_t *pa, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH], q[ADM_PATH];
	size_t i;
	json_t *t;

	adm_path(p, "%s.requiredDuringSchedulingIgnoredDuringExecution", path);
	json_array_foreach(adm_arr(pa,
			       "requiredDuringSchedulingIgnoredDuringExecution"),
	    i, t)
		pod_term(t, adm_path(q, "%s[%zu]", p, i), e);
	adm_path(p, "%s.preferredDuringSchedulingIgnoredDuringExecution", path);
	json_array_foreach(adm_arr(pa,
			       "preferredDuringSchedulingIgnoredDuringExecution"),
	    i, t) {
		weight(t, adm_path(q, "%s[%zu].weight", p, i), e);
		pod_term(adm_obj(t, "podAffinityTerm"),
		    adm_path(q, "%s[%zu].podAffinityTerm", p, i), e);
	}
}

void adm_affinity_validate(const json_t *aff, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];

	if (adm_obj(aff, "nodeAffinity"))
		node_affinity(adm_obj(aff, "nodeAffinity"),
		    adm_path(p, "%s.nodeAffinity", path), e);
	if (adm_obj(aff, "podAffinity"))
		pod_affinity(adm_obj(aff, "podAffinity"),
		    adm_path(p, "%s.podAffinity", path), e);
	if (adm_obj(aff, "podAntiAffinity"))
		pod_affinity(adm_obj(aff, "podAntiAffinity"),
		    adm_path(p, "%s.podAntiAffinity", path), e);
}
