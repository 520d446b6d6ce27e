/* admit.c — admission for a create or update, in Kubernetes' order:
 *
 *   1. decode: what reading the body into the Go types does — type
 *      errors (400 BadRequest), unknown and null fields dropped,
 *      quantities and times in canonical form (admit_fields.c);
 *   2. the system fields BeforeCreate/BeforeUpdate fix: no namespace on
 *      cluster-scoped kinds; an update keeps uid and creationTimestamp;
 *   3. defaulting (the kind's hook, which also does what the default
 *      mutating admission plugins and the strategy's PrepareFor* do);
 *   4. validation (the kind's hook), finished as a 422 Invalid whose
 *      details.causes kubectl prints.
 *
 * The per-kind hooks are the registry's (r->defaults, r->validate); a
 * kind the registry gives none gets admission's own from the table
 * below, so the built-in kinds are always admitted the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

static const struct {
	const char *group, *kind;
	api_default_fn defaults;
	api_validate_fn validate;
} hooks[] = {
	{ "", "Pod", api_default_pod, api_validate_pod },
	{ "apps", "Deployment", api_default_deployment,
	    api_validate_deployment },
	{ "apps", "ReplicaSet", api_default_replicaset,
	    api_validate_replicaset },
	{ "", "Service", api_default_service, api_validate_service },
	{ "", "Namespace", api_default_namespace, api_validate_namespace },
	{ "", "ConfigMap", NULL, api_validate_configmap },
	{ "", "Secret", api_default_secret, api_validate_secret },
	{ "", "Node", api_default_node, api_validate_node },
	{ "", "Endpoints", api_default_endpoints, api_validate_endpoints },
	{ "discovery.k8s.io", "EndpointSlice", api_default_endpointslice,
	    api_validate_endpointslice },
	{ "coordination.k8s.io", "Lease", NULL, api_validate_lease },
	{ "", "ServiceAccount", NULL, api_validate_serviceaccount },
	{ "", "Event", NULL, api_validate_event },
	{ "events.k8s.io", "Event", NULL, api_validate_event },
};

static int hook_index(const struct api_resource *r)
{
	for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++)
		if (!strcmp(hooks[i].group, r->group ? r->group : "") &&
		    !strcmp(hooks[i].kind, r->kind))
			return (int)i;
	return -1;
}

/* BeforeCreate / BeforeUpdate's handling of system fields. */
static void system_fields(const struct api_resource *r, json_t *obj,
    const json_t *old)
{
	json_t *meta = adm_obj(obj, "metadata");
	json_t *was = adm_obj(old, "metadata");
	json_t *v;

	if (!r->namespaced && meta)
		json_object_del(meta, "namespace");
	if (!old || !meta)
		return;
	if (adm_is_empty(adm_str(meta, "uid")) &&
	    (v = json_object_get(was, "uid")))
		json_object_set(meta, "uid", v);
	/* changes to the creation time are ignored */
	if ((v = json_object_get(was, "creationTimestamp")))
		json_object_set(meta, "creationTimestamp", v);
}

bool api_admit(const struct api_resource *r, json_t *obj, const json_t *old,
    struct api_error *e)
{
	int h = hook_index(r);
	api_default_fn defaults = r->defaults ? r->defaults :
	    h >= 0                            ? hooks[h].defaults :
						NULL;
	api_validate_fn validate = r->validate ? r->validate :
	    h >= 0                             ? hooks[h].validate :
						 NULL;
	char err[700];

	if (!adm_decode(adm_schema(r->group, r->kind), obj, err, sizeof err)) {
		adm_bad_request(e, r->kind, r->version, "%s", err);
		return false;
	}
	system_fields(r, obj, old);
	if (defaults)
		defaults(obj, old);
	if (validate)
		validate(obj, old, e);
	if (e->code == 422 || json_array_size(e->causes)) {
		const char *name = adm_str(adm_obj(obj, "metadata"), "name");
		char kq[96];
		api_err_invalid(e, api_kind_qual(r, kq, sizeof kq), name ? name : "");
		return false;
	}
	return e->code == 0;
}

/* With fieldValidation=Strict Kubernetes answers 400 BadRequest,
 * "<Kind> in version \"v1\" cannot be handled as a <Kind>: strict
 * decoding error: unknown field \"spec.foo\", unknown field …", before
 * any defaulting or validation. The same paths are added as causes so
 * that Warn can send each as a Warning header instead. */
bool api_check_unknown_fields(const struct api_resource *r, const json_t *obj,
    struct api_error *e)
{
	json_t *unknown = json_array();
	char *msg = NULL;
	size_t len = 0, i;
	json_t *u;
	FILE *f;

	adm_unknown_fields(adm_schema(r->group, r->kind), obj, unknown);
	if (!json_array_size(unknown)) {
		json_decref(unknown);
		return true;
	}
	f = open_memstream(&msg, &len);
	fputs("strict decoding error: ", f);
	json_array_foreach(unknown, i, u)
		fprintf(f, "%sunknown field \"%s\"", i ? ", " : "",
		    json_string_value(u));
	fclose(f);
	adm_bad_request(e, r->kind, r->version, "%s", msg);
	json_array_foreach(unknown, i, u)
		api_err_cause(e, "FieldValueInvalid", json_string_value(u),
		    "unknown field \"%s\"", json_string_value(u));
	free(msg);
	json_decref(unknown);
	return false;
}
