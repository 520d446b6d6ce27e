/* admit_pod_obj.c — the Pod object and pod templates: ValidatePodCreate,
 * ValidatePodUpdate (only images, activeDeadlineSeconds, added
 * tolerations and removed scheduling gates may change), the Priority
 * admission plugin's refusals, pod-specific annotations and
 * ValidatePodTemplateSpec. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define MIRROR "kubernetes.io/config.mirror"
#define DELETION_COST "controller.kubernetes.io/pod-deletion-cost"
#define SECCOMP_POD "seccomp.security.alpha.kubernetes.io/pod"
#define SECCOMP_CTR "container.seccomp.security.alpha.kubernetes.io/"
#define APPARMOR_CTR "container.apparmor.security.beta.kubernetes.io/"

#define UPDATABLE                                                               \
	"pod updates may not change fields other than "                         \
	"`spec.containers[*].image`,`spec.initContainers[*].image`,"            \
	"`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "   \
	"existing tolerations),`spec.terminationGracePeriodSeconds` (allow it " \
	"to be set to 1 if it was previously negative)"

/* --- annotations ------------------------------------------------------------ */

/* GetDeletionCostFromPodAnnotations: a 32-bit integer without '+' or
 * leading zeros. */
static bool deletion_cost_ok(const char *v)
{
	const char *d = *v == '-' ? v + 1 : v;
	char *end;
	long long n;

	if (!*d || (*d == '0' && d[1]) || *d < '0' || *d > '9')
		return false;
	errno = 0;
	n = strtoll(v, &end, 10);
	return !*end && !errno && n >= INT32_MIN && n <= INT32_MAX;
}

static void seccomp_annotation(const char *key, const char *v, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];

	adm_path(p, "%s.%s", path, key);
	if (!strcmp(v, "runtime/default") || !strcmp(v, "docker/default") ||
	    !strcmp(v, "unconfined"))
		return;
	if (!strncmp(v, "localhost/", 10)) {
		adm_local_path(v + 10, p, false, e);
		return;
	}
	adm_invalid_str(e, p, v, "must be a valid seccomp profile");
}

static bool has_container(const json_t *spec, const char *name)
{
	static const char *const lists[] = { "initContainers", "containers",
		"ephemeralContainers" };
	size_t i;
	json_t *c;

	for (int l = 0; l < 3; l++)
		json_array_foreach(adm_arr(spec, lists[l]), i, c)
			if (adm_str(c, "name") &&
			    !strcmp(adm_str(c, "name"), name))
				return true;
	return false;
}

static void apparmor_annotation(const char *key, const char *v,
    const json_t *spec, const char *path, struct api_error *e)
{
	char p[ADM_PATH], d[300];
	const char *ctr = key + strlen(APPARMOR_CTR);

	adm_path(p, "%s[%s]", path, key);
	if (!has_container(spec, ctr))
		adm_invalid_str(e, p, ctr, "container not found");
	if (*v && strcmp(v, "runtime/default") && strcmp(v, "unconfined") &&
	    strncmp(v, "localhost/", 10)) {
		char *q = adm_quote(v);
		snprintf(d, sizeof d, "invalid AppArmor profile name: %s", q);
		free(q);
		adm_invalid_str(e, p, v, d);
	}
}

void adm_pod_annotations(const json_t *ann, const json_t *spec,
    const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *v, *k;
	json_t *x;

	if ((v = adm_str(ann, MIRROR)) &&
	    adm_is_empty(adm_str(spec, "nodeName")))
		adm_invalid_str(e, adm_path(p, "%s[%s]", path, MIRROR), v,
		    "must set spec.nodeName if mirror pod annotation is set");
	if ((v = adm_str(ann, DELETION_COST)) && !deletion_cost_ok(v))
		adm_invalid_str(e, adm_path(p, "%s[%s]", path, DELETION_COST),
		    v, "must be a 32bit integer");
	if ((v = adm_str(ann, SECCOMP_POD)))
		seccomp_annotation(SECCOMP_POD, v, path, e);
	json_object_foreach((json_t *)ann, k, x) {
		if (!json_is_string(x))
			continue;
		if (!strncmp(k, SECCOMP_CTR, strlen(SECCOMP_CTR)))
			seccomp_annotation(k, json_string_value(x), path, e);
	}
	json_object_foreach((json_t *)ann, k, x)
		if (json_is_string(x) &&
		    !strncmp(k, APPARMOR_CTR, strlen(APPARMOR_CTR)))
			apparmor_annotation(k, json_string_value(x), spec, path,
			    e);
}

/* --- templates ---------------------------------------------------------------- */

void adm_template_validate(const json_t *tmpl, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	json_t *meta = adm_obj(tmpl, "metadata");
	json_t *spec = adm_obj(tmpl, "spec");
	json_t *ann = adm_obj(meta, "annotations");

	/* the internal PodTemplateSpec embeds its ObjectMeta, so these
	 * paths have no "metadata" in them */
	adm_labels(adm_obj(meta, "labels"), adm_path(p, "%s.labels", path), e);
	adm_annotations(ann, adm_path(p, "%s.annotations", path), e);
	adm_pod_annotations(ann, spec, p, e);
	adm_podspec_validate(spec, adm_path(p, "%s.spec", path), false, e);
	if (json_array_size(adm_arr(spec, "ephemeralContainers")))
		adm_forbidden(e,
		    adm_path(p, "%s.spec.ephemeralContainers", path),
		    "ephemeral containers not allowed in pod template");
}

/* --- Pod create ----------------------------------------------------------------- */

static void image_whitespace(const json_t *spec, const char *list,
    struct api_error *e)
{
	char p[ADM_PATH];
	size_t i, n;
	json_t *c;

	json_array_foreach(adm_arr(spec, list), i, c) {
		const char *img = adm_str(c, "image") ?: "";
		n = strlen(img);
		if (n &&
		    (strchr(" \t\n\v\f\r", img[0]) ||
			strchr(" \t\n\v\f\r", img[n - 1])))
			adm_invalid_str(e,
			    adm_path(p, "spec.%s[%zu].image", list, i), img,
			    "must not have leading or trailing whitespace");
	}
}

static void token_without_sa(const json_t *spec, struct api_error *e)
{
	char p[ADM_PATH];
	size_t i, j;
	json_t *v, *src;

	if (!adm_is_empty(adm_str(spec, "serviceAccountName")))
		return;
	json_array_foreach(adm_arr(spec, "volumes"), i, v)
		json_array_foreach(adm_arr(adm_obj(v, "projected"), "sources"),
		    j, src)
			if (adm_obj(src, "serviceAccountToken"))
				adm_forbidden(e,
				    adm_path(p,
					"spec.volumes[%zu]."
					"projected.sources[%zu].serviceAccountToken",
					i, j),
				    "must not be specified when "
				    "serviceAccountName is not set");
}

/* validatePodMetadataAndSpec */
static void pod_meta_and_spec(const json_t *pod, struct api_error *e)
{
	json_t *meta = adm_obj(pod, "metadata");
	json_t *spec = adm_obj(pod, "spec");

	adm_meta(pod, true, adm_name_subdomain, e);
	adm_pod_annotations(adm_obj(meta, "annotations"), spec,
	    "metadata.annotations", e);
	adm_podspec_validate(spec, "spec", true, e);
	token_without_sa(spec, e);
	image_whitespace(spec, "containers", e);
	image_whitespace(spec, "initContainers", e);
}

static void forbid(struct api_error *e, const json_t *pod, const char *fmt,
    long long a, long long b, const char *sa, const char *sb)
{
	const char *name = adm_str(adm_obj(pod, "metadata"), "name") ?: "";
	char why[400];

	if (sa)
		snprintf(why, sizeof why, fmt, sa, sb);
	else
		snprintf(why, sizeof why, fmt, a, b);
	api_err(e, 403, "Forbidden", "pods \"%s\" is forbidden: %s", name, why);
	snprintf(e->kind, sizeof e->kind, "pods");
	snprintf(e->name, sizeof e->name, "%s", name);
}

/* The Priority admission plugin refuses a priority (or preemption policy)
 * that differs from what the priority class gives. */
static bool priority_refused(const json_t *pod, struct api_error *e)
{
	json_t *spec = adm_obj(pod, "spec");
	long long want = adm_class_priority(adm_str(spec, "priorityClassName"));
	long long have;
	const char *pp = adm_str(spec, "preemptionPolicy");

	if (adm_int(spec, "priority", &have) && have != want) {
		forbid(e, pod,
		    "the integer value of priority (%lld) must not be "
		    "provided in pod spec; priority admission controller "
		    "computed %lld from the given PriorityClass name",
		    have, want, NULL, NULL);
		return true;
	}
	if (pp && strcmp(pp, "PreemptLowerPriority")) {
		forbid(e, pod,
		    "the string value of PreemptionPolicy (%s) must "
		    "not be provided in pod spec; priority admission controller "
		    "computed %s from the given PriorityClass name",
		    0, 0, pp, "PreemptLowerPriority");
		return true;
	}
	return false;
}

static void pod_create(const json_t *pod, struct api_error *e)
{
	json_t *spec = adm_obj(pod, "spec");

	if (priority_refused(pod, e))
		return;
	pod_meta_and_spec(pod, e);
	if (json_array_size(adm_arr(spec, "ephemeralContainers")))
		adm_forbidden(e, "spec.ephemeralContainers",
		    "cannot be set on create");
	if (!adm_is_empty(adm_str(spec, "nodeName")) &&
	    json_array_size(adm_arr(spec, "schedulingGates")))
		adm_forbidden(e, "spec.nodeName",
		    "cannot be set until all "
		    "schedulingGates have been cleared");
}

/* --- Pod update ------------------------------------------------------------------- */

static bool container_updates(const json_t *now, const json_t *was,
    const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	size_t i;
	json_t *c;

	if (json_array_size(now) != json_array_size(was)) {
		adm_forbidden(e, path,
		    "pod updates may not add or remove containers");
		return false;
	}
	json_array_foreach(now, i, c) {
		const char *img = adm_str(c, "image") ?: "";
		size_t n = strlen(img);
		if (!n)
			adm_required(e, adm_path(p, "%s[%zu].image", path, i),
			    "");
		if (n &&
		    (strchr(" \t\n\v\f\r", img[0]) ||
			strchr(" \t\n\v\f\r", img[n - 1])))
			adm_invalid_str(e,
			    adm_path(p, "%s[%zu].image", path, i), img,
			    "must not have leading or trailing whitespace");
	}
	return true;
}

static bool deadline_update(const json_t *now, const json_t *was,
    struct api_error *e)
{
	json_t *nv = json_object_get(now, "activeDeadlineSeconds");
	json_t *ov = json_object_get(was, "activeDeadlineSeconds");
	const char *p = "spec.activeDeadlineSeconds";

	if (json_is_integer(nv)) {
		long long n = json_integer_value(nv);
		if (n < 0 || n > 2147483647) {
			adm_invalid_int(e, p, n,
			    "must be between 0 and 2147483647, inclusive");
			return false;
		}
		if (json_is_integer(ov) && json_integer_value(ov) < n) {
			adm_invalid_int(e, p, n,
			    "must be less than or equal to previous value");
			return false;
		}
	} else if (json_is_integer(ov)) {
		adm_invalid_raw(e, p, "null",
		    "must not update from a positive integer to nil value");
	}
	return true;
}

/* Every old toleration must still be there (its seconds may change). */
static void tolerations_added(const json_t *now, const json_t *was,
    struct api_error *e)
{
	size_t i, j;
	json_t *o, *n;

	json_array_foreach(was, i, o) {
		bool found = false;
		json_t *oc = json_deep_copy(o);
		json_array_foreach(now, j, n) {
			json_t *sec = json_object_get(n, "tolerationSeconds");
			if (sec)
				json_object_set(oc, "tolerationSeconds", sec);
			else
				json_object_del(oc, "tolerationSeconds");
			found |= adm_equal(oc, n);
		}
		json_decref(oc);
		if (!found) {
			adm_forbidden(e, "spec.tolerations",
			    "existing toleration "
			    "can not be modified except its tolerationSeconds");
			return;
		}
	}
	adm_tolerations_validate(now, "spec.tolerations", e);
}

static void gates_deleted(const json_t *now, const json_t *was,
    struct api_error *e)
{
	char p[ADM_PATH], d[300];
	size_t i, j;
	json_t *g, *o;

	json_array_foreach(now, i, g) {
		const char *name = adm_str(g, "name") ?: "";
		bool old = false;
		json_array_foreach(was, j, o)
			old |= adm_str(o, "name") &&
			    !strcmp(adm_str(o, "name"), name);
		if (old)
			continue;
		snprintf(d, sizeof d,
		    "only deletion is allowed, but found new "
		    "scheduling gate '%s'",
		    name);
		adm_forbidden(e,
		    adm_path(p, "spec.schedulingGates[%zu].name", i), d);
	}
}

/* The updatable fields of the new spec, reset to the old values. */
static json_t *munge(const json_t *now, const json_t *was)
{
	static const char *const lists[] = { "containers", "initContainers" };
	static const char *const keep[] = { "activeDeadlineSeconds",
		"schedulingGates", "tolerations" };
	json_t *m = json_deep_copy(now);
	long long og, ng;
	size_t i;
	json_t *c;

	for (int l = 0; l < 2; l++)
		json_array_foreach(adm_arr(m, lists[l]), i, c) {
			json_t *oc = json_array_get(adm_arr(was, lists[l]), i);
			json_t *img = json_object_get(oc, "image");
			if (img)
				json_object_set(c, "image", img);
			else
				json_object_del(c, "image");
		}
	for (int k = 0; k < 3; k++) {
		json_t *v = json_object_get(was, keep[k]);
		if (v)
			json_object_set(m, keep[k], v);
		else
			json_object_del(m, keep[k]);
	}
	if (adm_int(was, "terminationGracePeriodSeconds", &og) && og < 0 &&
	    adm_int(m, "terminationGracePeriodSeconds", &ng) && ng == 1)
		json_object_set_new(m, "terminationGracePeriodSeconds",
		    json_integer(og));
	return m;
}

/* A short diff in the shape of go-cmp's (Kubernetes prints cmp.Diff of
 * the internal PodSpec; field names here are the JSON ones). */
static char *spec_diff(const json_t *now, const json_t *was)
{
	json_t *keys = json_object();
	size_t len = 0, cap = 256;
	char *out = malloc(cap);
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)was, k, v)
		json_object_set_new(keys, k, json_true());
	json_object_foreach((json_t *)now, k, v)
		json_object_set_new(keys, k, json_true());
	len = (size_t)snprintf(out, cap, "  core.PodSpec{\n");
	json_object_foreach(keys, k, v) {
		json_t *a = json_object_get(was, k),
		       *b = json_object_get(now, k);
		if (adm_equal(a, b))
			continue;
		char *ra = adm_render(a), *rb = adm_render(b);
		size_t need =
		    len + strlen(ra) + strlen(rb) + 2 * strlen(k) + 32;
		if (need > cap) {
			cap = need * 2;
			out = realloc(out, cap);
		}
		len += (size_t)snprintf(out + len, cap - len,
		    "- \t%s: %s,\n+ \t%s: %s,\n", k, ra, k, rb);
		free(ra);
		free(rb);
	}
	snprintf(out + len, cap - len, "  }\n");
	json_decref(keys);
	return out;
}

static void pod_update(const json_t *pod, const json_t *old,
    struct api_error *e)
{
	json_t *now = adm_obj(pod, "spec"), *was = adm_obj(old, "spec");

	adm_meta_update(pod, old, e);
	if (adm_equal(now, was) &&
	    adm_equal(adm_obj(adm_obj(pod, "metadata"), "annotations"),
		adm_obj(adm_obj(old, "metadata"), "annotations"))) {
		/* A status write or a label change: the spec, and the
		 * annotations read with it, are what was validated when
		 * written (as ValidatePodStatusUpdate reads no spec). */
		adm_meta(pod, true, adm_name_subdomain, e);
		return;
	}
	pod_meta_and_spec(pod, e);
	if (!container_updates(adm_arr(now, "containers"),
		adm_arr(was, "containers"), "spec.containers", e) ||
	    !container_updates(adm_arr(now, "initContainers"),
		adm_arr(was, "initContainers"), "spec.initContainers", e) ||
	    !deadline_update(now, was, e))
		return;
	tolerations_added(adm_arr(now, "tolerations"),
	    adm_arr(was, "tolerations"), e);
	gates_deleted(adm_arr(now, "schedulingGates"),
	    adm_arr(was, "schedulingGates"), e);
	if (adm_equal(now, was))
		return;
	json_t *m = munge(now, was);
	if (!adm_equal(m, was)) {
		char *diff = spec_diff(m, was);
		char *d = malloc(strlen(UPDATABLE) + strlen(diff) + 2);
		sprintf(d, "%s\n%s", UPDATABLE, diff);
		adm_forbidden(e, "spec", d);
		free(d);
		free(diff);
	}
	json_decref(m);
}

void api_validate_pod(const json_t *obj, const json_t *old, struct api_error *e)
{
	if (old)
		pod_update(obj, old, e);
	else
		pod_create(obj, e);
}
