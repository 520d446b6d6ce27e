/* admit_meta.c — ObjectMeta on create and update (apimachinery's
 * ValidateObjectMeta / ValidateObjectMetaUpdate plus core's finalizer
 * names), labels, annotations and label selectors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define ANNOTATIONS_MAX (256 * 1024)

void adm_label_name(const char *key, const char *path, struct api_error *e)
{
	struct adm_msgs m = { 0 };
	adm_qualified_name(key, &m);
	adm_invalid_msgs(e, path, key, &m);
}

void adm_labels(const json_t *labels, const char *path, struct api_error *e)
{
	const char *k;
	json_t *v;

	if (!json_is_object(labels))
		return;
	json_object_foreach((json_t *)labels, k, v) {
		struct adm_msgs m = { 0 };
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		adm_label_name(k, path, e);
		adm_label_value(s, &m);
		adm_invalid_msgs(e, path, s, &m);
	}
}

void adm_annotations(const json_t *ann, const char *path, struct api_error *e)
{
	const char *k;
	json_t *v;
	size_t total = 0;

	if (!json_is_object(ann))
		return;
	json_object_foreach((json_t *)ann, k, v) {
		struct adm_msgs m = { 0 };
		/* the rule is a qualified name, but case does not matter */
		char *low = strdup(k);
		for (char *p = low; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		adm_qualified_name(low, &m);
		free(low);
		adm_invalid_msgs(e, path, k, &m);
		total += strlen(k);
		if (json_is_string(v))
			total += json_string_length(v);
	}
	if (total > ANNOTATIONS_MAX)
		adm_toolong(e, path, ANNOTATIONS_MAX);
}

void adm_nonneg(struct api_error *e, const char *path, const json_t *v)
{
	if (json_is_integer(v) && json_integer_value(v) < 0)
		adm_invalid_int(e, path, json_integer_value(v),
		    "must be greater than or equal to 0");
}

void adm_immutable(struct api_error *e, const char *path, const json_t *now,
    const json_t *was)
{
	if (!adm_equal(now, was))
		adm_invalid_json(e, path, now, "field is immutable");
}

/* --- owner references and finalizers ------------------------------------- */

static void owner_ref(const json_t *r, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *av = adm_str(r, "apiVersion");
	const char *slash = av ? strrchr(av, '/') : NULL;
	const char *version = slash ? slash + 1 : av;
	static const struct {
		const char *field, *msg;
	} req[] = {
		{ "kind", "kind must not be empty" },
		{ "name", "name must not be empty" },
		{ "uid", "uid must not be empty" },
	};

	if (adm_is_empty(version))
		adm_invalid_str(e, adm_path(p, "%s.apiVersion", path), av,
		    "version must not be empty");
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		const char *v = adm_str(r, req[i].field);
		if (adm_is_empty(v))
			adm_invalid_str(e,
			    adm_path(p, "%s.%s", path, req[i].field), v,
			    req[i].msg);
	}
}

static void owner_refs(const json_t *refs, const char *path,
    struct api_error *e)
{
	char first[300] = "";
	size_t i;
	json_t *r;

	json_array_foreach(refs, i, r) {
		owner_ref(r, path, e);
		if (!adm_bool(r, "controller"))
			continue;
		char cur[300];
		snprintf(cur, sizeof cur, "%s/%s", adm_str(r, "kind") ?: "",
		    adm_str(r, "name") ?: "");
		if (!*first) {
			snprintf(first, sizeof first, "%s", cur);
			continue;
		}
		char d[700];
		snprintf(d, sizeof d,
		    "Only one reference can have Controller "
		    "set to true. Found \"true\" in references for %s and %s",
		    first, cur);
		adm_invalid_json(e, path, refs, d);
	}
}

static bool standard_finalizer(const char *f)
{
	return !strcmp(f, "kubernetes") || !strcmp(f, "orphan") ||
	    !strcmp(f, "foregroundDeletion");
}

/* core's check that an unqualified finalizer is a standard one */
static void kube_finalizer(const char *f, const char *path, struct api_error *e)
{
	if (!strchr(f, '/') && !standard_finalizer(f))
		adm_invalid_str(e, path, f,
		    "name is neither a standard "
		    "finalizer name nor is it fully qualified");
}

static void finalizers(const json_t *fins, const char *path,
    struct api_error *e)
{
	bool orphan = false, foreground = false;
	size_t i;
	json_t *f;

	json_array_foreach(fins, i, f) {
		struct adm_msgs m = { 0 };
		const char *s = json_is_string(f) ? json_string_value(f) : "";
		adm_qualified_name(s, &m);
		adm_invalid_msgs(e, path, s, &m);
		orphan |= !strcmp(s, "orphan");
		foreground |= !strcmp(s, "foregroundDeletion");
	}
	if (orphan && foreground)
		adm_invalid_json(e, path, fins,
		    "finalizer orphan and "
		    "foregroundDeletion cannot be both set");
}

static void kube_finalizers(const json_t *fins, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *f;

	json_array_foreach(fins, i, f)
		if (json_is_string(f))
			kube_finalizer(json_string_value(f),
			    adm_path(p, "%s[%zu]", path, i), e);
}

static void managed_fields(const json_t *mf, struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *f;

	json_array_foreach(mf, i, f) {
		const char *op = adm_str(f, "operation");
		const char *ft = adm_str(f, "fieldsType");
		if (!op || (strcmp(op, "Apply") && strcmp(op, "Update")))
			adm_invalid_str(e,
			    adm_path(p, "metadata.managedFields[%zu].operation",
				i),
			    op, "must be `Apply` or `Update`");
		if (!ft || strcmp(ft, "FieldsV1"))
			adm_invalid_str(e,
			    adm_path(p,
				"metadata.managedFields[%zu].fieldsType", i),
			    ft, "must be `FieldsV1`");
	}
}

/* labels … managedFields: the part create and update share */
static void meta_common(const json_t *meta, struct api_error *e)
{
	json_t *refs = adm_arr(meta, "ownerReferences");

	adm_labels(adm_obj(meta, "labels"), "metadata.labels", e);
	adm_annotations(adm_obj(meta, "annotations"), "metadata.annotations",
	    e);
	if (refs)
		owner_refs(refs, "metadata.ownerReferences", e);
}

/* --- create and update ------------------------------------------------------- */

static void meta_names(const json_t *meta, bool namespaced, adm_name_fn fn,
    struct api_error *e)
{
	const char *gn = adm_str(meta, "generateName");
	const char *name = adm_str(meta, "name");
	const char *ns = adm_str(meta, "namespace");
	struct adm_msgs m = { 0 };

	if (!adm_is_empty(gn)) {
		fn(gn, true, &m);
		adm_invalid_msgs(e, "metadata.generateName", gn, &m);
	}
	/* A name still to be generated from generateName is checked by
	 * whoever generates it: only a missing pair is an error here. */
	if (adm_is_empty(name) && adm_is_empty(gn)) {
		adm_required(e, "metadata.name",
		    "name or generateName is required");
	} else if (!adm_is_empty(name)) {
		m.n = 0;
		fn(name, false, &m);
		adm_invalid_msgs(e, "metadata.name", name, &m);
	}
	if (namespaced && adm_is_empty(ns)) {
		adm_required(e, "metadata.namespace", "");
	} else if (namespaced) {
		m.n = 0;
		adm_name_label(ns, false, &m);
		adm_invalid_msgs(e, "metadata.namespace", ns, &m);
	} else if (!adm_is_empty(ns)) {
		adm_forbidden(e, "metadata.namespace",
		    "not allowed on this type");
	}
}

void adm_meta(const json_t *obj, bool namespaced, adm_name_fn fn,
    struct api_error *e)
{
	json_t *meta = adm_obj(obj, "metadata");
	json_t *fins = adm_arr(meta, "finalizers");

	meta_names(meta, namespaced, fn, e);
	adm_nonneg(e, "metadata.generation",
	    json_object_get(meta, "generation"));
	meta_common(meta, e);
	if (fins)
		finalizers(fins, "metadata.finalizers", e);
	managed_fields(adm_arr(meta, "managedFields"), e);
	if (fins)
		kube_finalizers(fins, "metadata.finalizers", e);
}

/* No finalizer may be added once deletion has started. */
static void no_new_finalizers(const json_t *now, const json_t *was,
    struct api_error *e)
{
	json_t *extra = json_array();
	size_t i, j;
	json_t *f, *g;

	json_array_foreach(now, i, f) {
		bool found = false;
		json_array_foreach(was, j, g)
			found |= json_equal(f, g);
		if (!found)
			json_array_append(extra, f);
	}
	if (json_array_size(extra)) {
		/* the finalizers are printed with Go's %#v of a []string */
		char d[900];
		size_t n = (size_t)snprintf(d, sizeof d,
		    "no new finalizers can "
		    "be added if the object is being deleted, found new "
		    "finalizers []string{");
		json_array_foreach(extra, i, f) {
			char *q = adm_quote(json_string_value(f) ?: "");
			if (n < sizeof d)
				n += (size_t)snprintf(d + n, sizeof d - n,
				    "%s%s", i ? ", " : "", q);
			free(q);
		}
		if (n < sizeof d)
			snprintf(d + n, sizeof d - n, "}");
		adm_forbidden(e, "metadata.finalizers", d);
	}
	json_decref(extra);
}

void adm_meta_update(const json_t *obj, const json_t *old, struct api_error *e)
{
	json_t *meta = adm_obj(obj, "metadata");
	json_t *was = adm_obj(old, "metadata");
	static const char *const fixed[] = { "name", "namespace", "uid",
		"creationTimestamp" };
	char p[ADM_PATH];

	if (json_object_get(was, "deletionTimestamp") &&
	    adm_arr(meta, "finalizers"))
		no_new_finalizers(adm_arr(meta, "finalizers"),
		    adm_arr(was, "finalizers"), e);
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		adm_immutable(e, adm_path(p, "metadata.%s", fixed[i]),
		    json_object_get(meta, fixed[i]),
		    json_object_get(was, fixed[i]));
	meta_common(meta, e);
	managed_fields(adm_arr(meta, "managedFields"), e);
	kube_finalizers(adm_arr(meta, "finalizers"), "metadata.finalizers", e);
}

/* --- label selectors --------------------------------------------------------- */

static void selector_req(const json_t *r, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *op = adm_str(r, "operator");
	json_t *values = adm_arr(r, "values");
	size_t nv = json_array_size(values);
	size_t i;
	json_t *v;

	if (op && (!strcmp(op, "In") || !strcmp(op, "NotIn"))) {
		if (!nv)
			adm_required(e, adm_path(p, "%s.values", path),
			    "must be specified when `operator` is 'In' or "
			    "'NotIn'");
	} else if (op &&
	    (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist"))) {
		if (nv)
			adm_forbidden(e, adm_path(p, "%s.values", path),
			    "may not be specified when `operator` is 'Exists' "
			    "or 'DoesNotExist'");
	} else {
		adm_invalid_str(e, adm_path(p, "%s.operator", path), op,
		    "not a valid selector operator");
	}
	adm_label_name(adm_str(r, "key") ?: "", adm_path(p, "%s.key", path), e);
	json_array_foreach(values, i, v) {
		struct adm_msgs m = { 0 };
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		adm_label_value(s, &m);
		adm_invalid_msgs(e, adm_path(p, "%s.values[%zu]", path, i), s,
		    &m);
	}
}

void adm_label_selector(const json_t *sel, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *r;

	if (!json_is_object(sel))
		return;
	adm_labels(adm_obj(sel, "matchLabels"),
	    adm_path(p, "%s.matchLabels", path), e);
	json_array_foreach(adm_arr(sel, "matchExpressions"), i, r)
		selector_req(r,
		    adm_path(p, "%s.matchExpressions[%zu]", path, i), e);
}

bool adm_selector_empty(const json_t *sel)
{
	return !json_object_size(adm_obj(sel, "matchLabels")) &&
	    !json_array_size(adm_arr(sel, "matchExpressions"));
}

static bool in_values(const json_t *values, const char *v)
{
	size_t i;
	json_t *x;

	json_array_foreach(values, i, x)
		if (json_is_string(x) && !strcmp(json_string_value(x), v))
			return true;
	return false;
}

static bool req_matches(const json_t *r, const json_t *labels)
{
	const char *op = adm_str(r, "operator") ?: "";
	const char *v = adm_str(labels, adm_str(r, "key") ?: "");
	json_t *values = adm_arr(r, "values");

	if (!strcmp(op, "In"))
		return v && in_values(values, v);
	if (!strcmp(op, "NotIn"))
		return !v || !in_values(values, v);
	if (!strcmp(op, "Exists"))
		return v != NULL;
	if (!strcmp(op, "DoesNotExist"))
		return v == NULL;
	return false;
}

bool adm_selector_matches(const json_t *sel, const json_t *labels)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(adm_obj(sel, "matchLabels"), k, v) {
		const char *have = adm_str(labels, k);
		if (!have || !json_is_string(v) ||
		    strcmp(have, json_string_value(v)))
			return false;
	}
	json_array_foreach(adm_arr(sel, "matchExpressions"), i, v)
		if (!req_matches(v, labels))
			return false;
	return true;
}
