/* admit_apps.c — apps/v1 Deployment and ReplicaSet: SetDefaults_Deployment
 * / SetDefaults_ReplicaSet, the strategies' fresh status, and
 * ValidateDeploymentSpec / ValidateReplicaSetSpec with apps/v1's
 * immutable selector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

/* --- defaults --------------------------------------------------------------- */

static void strategy_defaults(json_t *spec)
{
	json_t *st = adm_obj_make(spec, "strategy");
	const char *type;

	adm_default_str(st, "type", "RollingUpdate");
	type = adm_str(st, "type");
	if (strcmp(type, "RollingUpdate"))
		return;
	json_t *ru = adm_obj_make(st, "rollingUpdate");
	adm_default(ru, "maxUnavailable", json_string("25%"));
	adm_default(ru, "maxSurge", json_string("25%"));
}

void api_default_deployment(json_t *obj, const json_t *old)
{
	json_t *spec;

	if (!json_is_object(obj))
		return;
	spec = adm_obj_make(obj, "spec");
	adm_default(spec, "replicas", json_integer(1));
	strategy_defaults(spec);
	adm_default(spec, "revisionHistoryLimit", json_integer(10));
	adm_default(spec, "progressDeadlineSeconds", json_integer(600));
	adm_template_defaults(adm_obj_make(spec, "template"));
	if (!old)
		json_object_set_new(obj, "status", json_object());
}

void api_default_replicaset(json_t *obj, const json_t *old)
{
	json_t *spec;

	if (!json_is_object(obj))
		return;
	spec = adm_obj_make(obj, "spec");
	adm_default(spec, "replicas", json_integer(1));
	adm_template_defaults(adm_obj_make(spec, "template"));
	if (!old)
		json_object_set_new(obj, "status",
		    json_pack("{s:i}", "replicas", 0));
}

/* --- the pod template ---------------------------------------------------------- */

/* Would metav1.LabelSelectorAsSelector accept it? */
static bool selector_converts(const json_t *sel)
{
	struct api_error tmp = { 0 };
	bool ok;

	adm_label_selector(sel, "spec.selector", &tmp);
	ok = !json_array_size(tmp.causes);
	json_decref(tmp.causes);
	return ok;
}

/* ValidatePodTemplateSpecForReplicaSet. A missing selector selects
 * nothing, so it never matches the template's labels. */
static void template_for_rs(const json_t *spec, struct api_error *e)
{
	static const char *const always[] = { "Always", NULL };
	json_t *tmpl = adm_obj(spec, "template");
	json_t *sel = json_object_get(spec, "selector");
	json_t *labels = adm_obj(adm_obj(tmpl, "metadata"), "labels");
	json_t *pspec = adm_obj(tmpl, "spec");
	const char *rp = adm_str(pspec, "restartPolicy") ?: "";

	bool mismatch;

	if (!json_is_object(sel))
		mismatch = true;
	else if (adm_selector_empty(sel))
		mismatch = false; /* selects everything */
	else
		mismatch = !adm_selector_matches(sel, labels);
	if (mismatch)
		adm_invalid_json(e, "spec.template.metadata.labels", labels,
		    "`selector` does not match template `labels`");
	adm_template_validate(tmpl, "spec.template", e);
	if (strcmp(rp, "Always"))
		adm_unsupported(e, "spec.template.spec.restartPolicy", rp,
		    always);
	if (json_object_get(pspec, "activeDeadlineSeconds"))
		adm_forbidden(e, "spec.template.spec.activeDeadlineSeconds",
		    "activeDeadlineSeconds in ReplicaSet is not Supported");
}

/* selector: required, valid, not empty; then the template against it */
static void selector_and_template(const json_t *spec, struct api_error *e)
{
	json_t *sel = json_object_get(spec, "selector");

	if (!json_is_object(sel)) {
		adm_required(e, "spec.selector", "");
	} else {
		adm_label_selector(sel, "spec.selector", e);
		if (adm_selector_empty(sel)) {
			char *r = adm_render_selector(sel);
			adm_invalid_raw(e, "spec.selector", r,
			    "empty selector is invalid for deployment");
			free(r);
		}
	}
	if (json_is_object(sel) && !selector_converts(sel)) {
		char *r = adm_render_selector(sel);
		adm_invalid_raw(e, "spec.selector", r,
		    "invalid label selector");
		free(r);
		return;
	}
	template_for_rs(spec, e);
}

static void selector_immutable(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	json_t *now = json_object_get(adm_obj(obj, "spec"), "selector");
	json_t *was = json_object_get(adm_obj(old, "spec"), "selector");

	if (adm_equal(now, was))
		return;
	char *r = adm_render_selector(now);
	adm_invalid_raw(e, "spec.selector", r, "field is immutable");
	free(r);
}

/* --- Deployment ------------------------------------------------------------------ */

static void int_or_percent(const json_t *v, const char *path,
    struct api_error *e)
{
	if (json_is_string(v)) {
		struct adm_msgs m = { 0 };
		adm_percent(json_string_value(v), &m);
		for (int i = 0; i < m.n; i++)
			adm_invalid_json(e, path, v, m.m[i]);
	} else {
		adm_nonneg(e, path, v);
	}
}

/* getIntOrPercentValue: a valid percentage's number, else the integer
 * (or a string's Atoi). */
static long long int_or_percent_value(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	return json_is_string(v) ? atoll(json_string_value(v)) : 0;
}

static void rolling_update(const json_t *ru, struct api_error *e)
{
	const char *mu = "spec.strategy.rollingUpdate.maxUnavailable";
	json_t *unavail = json_object_get(ru, "maxUnavailable");
	json_t *surge = json_object_get(ru, "maxSurge");

	int_or_percent(unavail, mu, e);
	int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge", e);
	if (!int_or_percent_value(unavail) && !int_or_percent_value(surge)) {
		if (unavail)
			adm_invalid_json(e, mu, unavail,
			    "may not be 0 when `maxSurge` is 0");
		else
			adm_invalid_int(e, mu, 0,
			    "may not be 0 when `maxSurge` is 0");
	}
	if (json_is_string(unavail)) {
		struct adm_msgs m = { 0 };
		adm_percent(json_string_value(unavail), &m);
		if (!m.n && int_or_percent_value(unavail) > 100)
			adm_invalid_json(e, mu, unavail,
			    "must not be greater than 100%");
	}
}

/* The internal DeploymentStrategy marshalled with its Go field names, in
 * declaration order. */
static char *render_strategy(const json_t *st)
{
	json_t *ru = adm_obj(st, "rollingUpdate");
	char *type = adm_render(json_object_get(st, "type"));
	char *mu = adm_render(json_object_get(ru, "maxUnavailable"));
	char *ms = adm_render(json_object_get(ru, "maxSurge"));
	char *out;

	if (asprintf(&out,
		ru ? "{\"Type\":%s,\"RollingUpdate\":"
		     "{\"MaxUnavailable\":%s,\"MaxSurge\":%s}}" :
		     "{\"Type\":%s,\"RollingUpdate\":null}",
		type, mu, ms) < 0)
		out = NULL;
	free(type);
	free(mu);
	free(ms);
	return out;
}

static void strategy(const json_t *st, struct api_error *e)
{
	static const char *const types[] = { "Recreate", "RollingUpdate",
		NULL };
	const char *type = adm_str(st, "type") ?: "";
	json_t *ru = adm_obj(st, "rollingUpdate");

	if (!strcmp(type, "Recreate")) {
		if (ru)
			adm_forbidden(e, "spec.strategy.rollingUpdate",
			    "may not be specified when strategy `type` is "
			    "'Recreate'");
	} else if (!strcmp(type, "RollingUpdate")) {
		if (!ru)
			adm_required(e, "spec.strategy.rollingUpdate",
			    "this should be defaulted and never be nil");
		else
			rolling_update(ru, e);
	} else {
		/* NotSupported with the whole strategy as its value */
		char *r = render_strategy(st);
		adm_unsupported_raw(e, "spec.strategy", r ? r : "{}", types);
		free(r);
	}
}

static void deployment_spec(const json_t *spec, struct api_error *e)
{
	long long pds, mrs = 0;

	adm_nonneg(e, "spec.replicas", json_object_get(spec, "replicas"));
	selector_and_template(spec, e);
	strategy(adm_obj(spec, "strategy"), e);
	adm_nonneg(e, "spec.minReadySeconds",
	    json_object_get(spec, "minReadySeconds"));
	adm_nonneg(e, "spec.revisionHistoryLimit",
	    json_object_get(spec, "revisionHistoryLimit"));
	adm_int(spec, "minReadySeconds", &mrs);
	if (adm_int(spec, "progressDeadlineSeconds", &pds)) {
		adm_nonneg(e, "spec.progressDeadlineSeconds",
		    json_object_get(spec, "progressDeadlineSeconds"));
		if (pds <= mrs)
			adm_invalid_int(e, "spec.progressDeadlineSeconds", pds,
			    "must be greater than minReadySeconds");
	}
}

void api_validate_deployment(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	if (old)
		adm_meta_update(obj, old, e);
	else
		adm_meta(obj, true, adm_name_subdomain, e);
	deployment_spec(adm_obj(obj, "spec"), e);
	if (old)
		selector_immutable(obj, old, e);
}

/* --- ReplicaSet -------------------------------------------------------------------- */

static void replicaset_spec(const json_t *spec, struct api_error *e)
{
	adm_nonneg(e, "spec.replicas", json_object_get(spec, "replicas"));
	adm_nonneg(e, "spec.minReadySeconds",
	    json_object_get(spec, "minReadySeconds"));
	selector_and_template(spec, e);
}

void api_validate_replicaset(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	/* the ReplicaSet strategy validates an update as a create too */
	adm_meta(obj, true, adm_name_subdomain, e);
	replicaset_spec(adm_obj(obj, "spec"), e);
	if (!old)
		return;
	adm_meta_update(obj, old, e);
	replicaset_spec(adm_obj(obj, "spec"), e);
	selector_immutable(obj, old, e);
}
