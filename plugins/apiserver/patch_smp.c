/* plugins/apiserver/patch_smp.c — strategic merge patch on json_t trees.
 *
 * What kube-apiserver does with application/strategic-merge-patch+json
 * (apimachinery's strategicpatch.StrategicMergeMapPatch): maps merge key by
 * key and null deletes; lists tagged "merge" (patch_keys.c) merge by their
 * merge key, or as sets of scalars; other lists are replaced. Directives:
 *
 *   $patch: replace|delete        in a map: replace it / empty it
 *   {"$patch": "delete", <key>}   in a merged list: drop that element
 *   {"$patch": "replace"}         in a merged list: the rest is the list
 *   $retainKeys: [..]             drop the original's other keys first
 *   $setElementOrder/<list>       the order of <list> after the merge
 *   $deleteFromPrimitiveList/<l>  values to drop from a set of scalars
 *
 * Order is Kubernetes' (mergeSortedSlice): the patch's items in the
 * patch's order (or $setElementOrder's), the live object's other items in
 * theirs, and one of those goes ahead of a patch item only if both were in
 * the live list and it stood first; so new items come before the
 * server-only items that trail them.
 *
 * Kubernetes copies a patch value raw where the original has nothing and
 * lets the typed decode drop what it does not know (directives, nulls);
 * here such a value is merged into an empty one instead, which gives the
 * same object, so no directive ever reaches the result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "patch.h"

#define DIRECTIVE "$patch"
#define RETAIN_KEYS "$retainKeys"
#define SET_ORDER "$setElementOrder"
#define DELETE_FROM "$deleteFromPrimitiveList"
#define MAP_T "map[string]interface {}"
#define LIST_T "[]interface {}"

static json_t *merge_map(json_t *orig, const json_t *patch,
    const struct smp_type *t, struct api_error *e);
static json_t *merge_list(json_t *orig, const json_t *patch,
    const struct smp_field *f, struct api_error *e);

/* --- small helpers -------------------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_str(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static bool is_merge(const struct smp_field *f)
{
	return f && f->strategy == SMP_MERGE;
}

static const char *merge_key_of(const struct smp_field *f)
{
	return is_merge(f) ? f->merge_key : NULL;
}

/* "$setElementOrder/containers" -> "containers"; NULL when malformed. */
static const char *directive_target(const char *key, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(key, prefix, n) != 0 || key[n] != '/')
		return NULL;
	return key + n + 1;
}

/* Keys the merge itself never copies. */
static bool is_control_key(const char *k)
{
	return strcmp(k, DIRECTIVE) == 0 || strcmp(k, RETAIN_KEYS) == 0 ||
	    has_prefix(k, SET_ORDER) || has_prefix(k, DELETE_FROM);
}

/* --- errors, worded as apimachinery's mergepatch package words them ------- */

static int bad_request(struct api_error *e, const char *msg)
{
	patch_fail(e, 400, "BadRequest", "%s", msg);
	return -1;
}

/* Kubernetes passes these plain Go errors up unwrapped: a 500 with no
 * reason, which kubectl prints as "Error from server: <message>". */
static int err_arg_type(struct api_error *e, const char *want,
    const json_t *got)
{
	patch_fail(e, 500, "", "expected a %s, but received a %s", want,
	    patch_go_type(got));
	return -1;
}

static int err_no_merge_key(struct api_error *e, const json_t *m,
    const char *key)
{
	char buf[512];

	patch_fail(e, 500, "",
	    "map: %s does not contain declared merge key: %s",
	    patch_go_fmt(m, buf, sizeof(buf)), key);
	return -1;
}

static int err_patch_type(struct api_error *e, const json_t *d, const json_t *m)
{
	char dv[128], mv[512];

	patch_go_fmt(d, dv, sizeof(dv));
	patch_go_fmt(m, mv, sizeof(mv));
	if (json_is_string(d))
		patch_fail(e, 500, "", "unknown patch type: %s in map: %s", dv,
		    mv);
	else
		patch_fail(e, 500, "",
		    "unknown patch type: %%!s(%s=%s) in map: %s",
		    patch_go_type(d), dv, mv);
	return -1;
}

static int err_oom(struct api_error *e)
{
	patch_fail(e, 500, "InternalError", "out of memory");
	return -1;
}

/* --- list positions ------------------------------------------------------- */

/* Do l and r name the same element: equal merge keys (key) or equal
 * values? 1/0, or -1 with e set when either lacks the key. */
static int same_item(const json_t *l, const json_t *r, const char *key,
    struct api_error *e)
{
	if (key == NULL)
		return json_equal(l, r);
	if (!json_is_object(l))
		return err_arg_type(e, MAP_T, l);
	if (!json_is_object(r))
		return err_arg_type(e, MAP_T, r);
	const json_t *lv = json_object_get(l, key);
	const json_t *rv = json_object_get(r, key);
	if (lv == NULL)
		return err_no_merge_key(e, l, key);
	if (rv == NULL)
		return err_no_merge_key(e, r, key);
	return json_equal(lv, rv);
}

/* Position of item in list (by merge key, or by value), -1 if absent.
 * Callers have checked that every element has its key. */
static ssize_t index_of(const json_t *list, const json_t *item, const char *key)
{
	const json_t *want = key ? json_object_get(item, key) : item;
	size_t i;
	json_t *x;

	json_array_foreach(list, i, x) {
		const json_t *have = key ? json_object_get(x, key) : x;
		if (want && have && json_equal(want, have))
			return (ssize_t)i;
	}
	return -1;
}

/* Every element of list is a map holding key (no-op without a key). */
static int check_keys(const json_t *list, const char *key, struct api_error *e)
{
	size_t i;
	json_t *x;

	if (key == NULL)
		return 0;
	json_array_foreach(list, i, x) {
		if (!json_is_object(x))
			return err_arg_type(e, MAP_T, x);
		if (json_object_get(x, key) == NULL)
			return err_no_merge_key(e, x, key);
	}
	return 0;
}

struct ranked {
	json_t *v;
	size_t rank;
};

/* items sorted (stably) by their position in order; items order does not
 * name go last. New array. */
static json_t *sorted_by(const json_t *items, const json_t *order,
    const char *key)
{
	size_t n = json_array_size(items);
	struct ranked *a = calloc(n ? n : 1, sizeof(*a));
	json_t *out = json_array();

	if (a == NULL || out == NULL) {
		free(a);
		json_decref(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct ranked cur = { json_array_get(items, i), SIZE_MAX };
		ssize_t r = index_of(order, cur.v, key);
		if (r >= 0)
			cur.rank = (size_t)r;
		size_t j = i;
		for (; j > 0 && a[j - 1].rank > cur.rank; j--)
			a[j] = a[j - 1];
		a[j] = cur;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append(out, a[i].v);
	free(a);
	return out;
}

/* Merge two sorted lists: server-only items go before a patch item only
 * when both stood in the live list and the server item came first. */
static json_t *interleave(const json_t *left, const json_t *right,
    const json_t *server, const char *key)
{
	size_t nl = json_array_size(left), nr = json_array_size(right);
	size_t i = 0, j = 0;
	json_t *out = json_array();

	while (out && (i < nl || j < nr)) {
		json_t *l = json_array_get(left, i),
		       *r = json_array_get(right, j);
		bool take_left = j >= nr;
		if (i < nl && j < nr) {
			ssize_t li = index_of(server, l, key);
			ssize_t ri = index_of(server, r, key);
			take_left = li >= 0 && ri >= 0 && li < ri;
		}
		json_array_append(out, take_left ? l : r);
		if (take_left)
			i++;
		else
			j++;
	}
	return out;
}

/* The merged list in Kubernetes' order: items named by `order` in its
 * order, the others in `server`'s, interleaved. New array. */
static json_t *order_list(const json_t *merged, const json_t *order,
    const json_t *server, const char *key, struct api_error *e)
{
	if (check_keys(merged, key, e) || check_keys(order, key, e))
		return NULL;
	json_t *named = json_array(), *others = json_array();
	size_t i;
	json_t *x;

	json_array_foreach(merged, i, x)
		json_array_append(index_of(order, x, key) >= 0 ? named : others,
		    x);
	json_t *a = sorted_by(named, order, key);
	json_t *b = sorted_by(others, server, key);
	json_t *out = a && b ? interleave(b, a, server, key) : NULL;
	json_decref(named);
	json_decref(others);
	json_decref(a);
	json_decref(b);
	if (out == NULL)
		err_oom(e);
	return out;
}

/* --- lists ---------------------------------------------------------------- */

/* The one element type of both lists, as Go's decode types them: a
 * jansson type, or -1 with e set (lists of lists, mixed types). */
static int element_type(const json_t *orig, const json_t *patch,
    struct api_error *e)
{
	const json_t *lists[2] = { orig, patch };
	const json_t *first = NULL;
	char buf[512], a[256], b[256];

	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *x;
		json_array_foreach(lists[l], i, x) {
			if (first == NULL && json_is_array(x)) {
				patch_fail(e, 422, "Invalid", PATCH_REJECTED);
				return -1;
			}
			if (first == NULL)
				first = x;
			if (strcmp(patch_go_type(first), patch_go_type(x)) == 0)
				continue;
			snprintf(buf, sizeof(buf), "[%s %s]",
			    patch_go_fmt(orig, a, sizeof(a)),
			    patch_go_fmt(patch, b, sizeof(b)));
			patch_fail(e, 500, "",
			    "list element types are not identical: %s", buf);
			return -1;
		}
	}
	return first ? (int)json_typeof(first) : JSON_NULL;
}

/* A set of scalars: the union, ordered. New array. */
static json_t *merge_scalars(const json_t *orig, const json_t *patch,
    struct api_error *e)
{
	json_t *merged = json_array();
	size_t i;
	json_t *x;

	json_array_foreach(orig, i, x)
		if (index_of(merged, x, NULL) < 0)
			json_array_append(merged, x);
	json_array_foreach(patch, i, x)
		if (index_of(merged, x, NULL) < 0)
			json_array_append_new(merged, json_deep_copy(x));
	json_t *out = order_list(merged, patch, orig, NULL, e);
	json_decref(merged);
	return out;
}

static void delete_matching(json_t *list, const char *key, const json_t *kv)
{
	for (size_t i = json_array_size(list); i-- > 0;)
		if (json_equal(json_object_get(json_array_get(list, i), key),
			kv))
			json_array_remove(list, i);
}

/* Apply the $patch elements of a merged list of maps to list; collect
 * the others in plain. 1 when the list is to be replaced, 0, -1. */
static int special_elements(json_t *list, const json_t *patch, json_t *plain,
    const char *key, struct api_error *e)
{
	int replace = 0;
	size_t i;
	json_t *p;

	json_array_foreach(patch, i, p) {
		const json_t *d = json_object_get(p, DIRECTIVE);
		const json_t *kv = key ? json_object_get(p, key) : NULL;
		if (d == NULL) {
			json_array_append(plain, p);
		} else if (is_str(d, "delete")) {
			if (kv == NULL)
				return err_no_merge_key(e, p, key);
			delete_matching(list, key, kv);
		} else if (is_str(d, "replace")) {
			replace = 1;
		} else if (is_str(d, "merge")) {
			patch_fail(e, 500, "",
			    "merging lists cannot yet be "
			    "specified in the patch");
			return -1;
		} else {
			return err_patch_type(e, d, p);
		}
	}
	return replace;
}

/* Merge each plain patch element into list's element with the same key,
 * or append it. */
static int merge_elements(json_t *list, const json_t *plain,
    const struct smp_field *f, struct api_error *e)
{
	size_t i;
	json_t *p;

	json_array_foreach(plain, i, p) {
		const json_t *kv = json_object_get(p, f->merge_key);
		if (kv == NULL)
			return err_no_merge_key(e, p, f->merge_key);
		ssize_t at = index_of(list, p, f->merge_key);
		json_t *cur = at >= 0 ? json_incref(json_array_get(list, at)) :
					NULL;
		json_t *m = merge_map(cur, p, f->type, e);
		if (m == NULL)
			return -1;
		if (at >= 0)
			json_array_set_new(list, (size_t)at, m);
		else
			json_array_append_new(list, m);
	}
	return 0;
}

/* A list of maps merged by f->merge_key; list (ours) is changed. */
static json_t *merge_map_list(json_t *list, const json_t *patch,
    const struct smp_field *f, struct api_error *e)
{
	json_t *plain = json_array(), *server = NULL, *out = NULL;
	int replace;

	if (f->merge_key == NULL) {
		patch_fail(e, 500, "",
		    "cannot merge lists without merge key for type struct");
		goto out;
	}
	if (check_keys(list, f->merge_key, e))
		goto out;
	replace = special_elements(list, patch, plain, f->merge_key, e);
	if (replace < 0)
		goto out;
	if (replace) {
		json_array_clear(list);
		server = json_array();
	} else {
		server = json_copy(list);
	}
	if (merge_elements(list, plain, f, e) == 0)
		out = order_list(list, plain, server, f->merge_key, e);
out:
	json_decref(plain);
	json_decref(server);
	return out;
}

/* Merge patch (an array) into orig (stolen) for a field with the merge
 * strategy. New reference or NULL. */
static json_t *merge_list(json_t *orig, const json_t *patch,
    const struct smp_field *f, struct api_error *e)
{
	json_t *out = NULL;

	if (orig == NULL)
		return NULL;
	if (json_array_size(orig) == 0 && json_array_size(patch) == 0)
		return orig;
	int type = element_type(orig, patch, e);
	if (type == JSON_OBJECT)
		out = merge_map_list(orig, patch, f, e);
	else if (type >= 0)
		out = merge_scalars(orig, patch, e);
	json_decref(orig);
	return out;
}

/* A patch value placed where the original has nothing (or a value of
 * another type): merged into an empty value, so that its directives and
 * nulls act and do not stay. */
static json_t *fresh(const json_t *v, const struct smp_field *f,
    struct api_error *e)
{
	const struct smp_type *t = f ? f->type : NULL;

	if (json_is_object(v))
		return merge_map(NULL, v, t, e);
	if (!json_is_array(v))
		return json_deep_copy(v);
	if (is_merge(f))
		return merge_list(json_array(), v, f, e);
	json_t *out = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x) {
		json_t *c = json_is_object(x) ? merge_map(NULL, x, t, e) :
						fresh(x, NULL, e);
		if (c == NULL) {
			json_decref(out);
			return NULL;
		}
		json_array_append_new(out, c);
	}
	return out;
}

/* --- directives on a map -------------------------------------------------- */

static bool list_has_string(const json_t *list, const char *s)
{
	size_t i;
	json_t *x;

	json_array_foreach(list, i, x)
		if (is_str(x, s))
			return true;
	return false;
}

/* $retainKeys: every key the patch sets must be listed; the original
 * keeps only the listed keys. */
static int retain_keys(json_t *orig, const json_t *patch, struct api_error *e)
{
	const json_t *keep = json_object_get(patch, RETAIN_KEYS);
	const char *k;
	json_t *v;
	void *tmp;

	if (keep == NULL)
		return 0;
	if (!json_is_array(keep))
		return bad_request(e, "invalid patch format of retainKeys");
	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v) || is_control_key(k))
			continue;
		if (!list_has_string(keep, k))
			return bad_request(e,
			    "invalid patch format of retainKeys");
	}
	json_object_foreach_safe(orig, tmp, k, v)
		if (!list_has_string(keep, k))
			json_object_del(orig, k);
	return 0;
}

/* Is the patch list consistent with $setElementOrder: all its items
 * there, in the same relative order? */
static int check_order(const json_t *pl, const json_t *order, const char *key,
    struct api_error *e)
{
	size_t n = json_array_size(pl), m = json_array_size(order);
	size_t pi = 0, si = 0;
	char a[256], b[256];

	if (key && check_keys(order, key, e))
		return -1;
	while (pi < n && si < m) {
		const json_t *x = json_array_get(pl, pi);
		const json_t *d = json_object_get(x, DIRECTIVE);
		if (key && !json_is_object(x))
			return err_arg_type(e, MAP_T, x);
		if (d) { /* deletions and replace markers are not ordered */
			pi++;
			continue;
		}
		int same = same_item(x, json_array_get(order, si), key, e);
		if (same < 0)
			return -1;
		pi += same;
		si++;
	}
	while (pi < n && json_object_get(json_array_get(pl, pi), DIRECTIVE))
		pi++;
	if (pi < n && si >= m) {
		patch_fail(e, 500, "",
		    "The order in patch list:\n%s\n doesn't match %s "
		    "list:\n%s\n",
		    patch_go_fmt(pl, a, sizeof(a)), SET_ORDER,
		    patch_go_fmt(order, b, sizeof(b)));
		return -1;
	}
	return 0;
}

/* The merged value of list `name` for $setElementOrder. */
static json_t *merged_for_order(json_t *ol, const json_t *pl,
    const struct smp_field *f, struct api_error *e)
{
	if (pl == NULL)
		return json_incref(ol);
	if (ol && is_merge(f))
		return merge_list(json_incref(ol), pl, f, e);
	return fresh(pl, f, e);
}

/* One "$setElementOrder/<name>": merge <name> now and order it. */
static int set_order(json_t *orig, const json_t *patch, const char *k,
    const json_t *order, const struct smp_type *t, json_t *done,
    struct api_error *e)
{
	if (!json_is_array(order))
		return err_arg_type(e, LIST_T, order);
	const char *name = directive_target(k, SET_ORDER);
	if (name == NULL)
		return bad_request(e,
		    "invalid patch format of setElementOrder list");
	json_t *ol = json_object_get(orig, name);
	const json_t *pl = json_object_get(patch, name);
	if (json_is_null(ol))
		ol = NULL;
	if (ol && !json_is_array(ol))
		return err_arg_type(e, LIST_T, ol);
	if (pl && !json_is_array(pl))
		return err_arg_type(e, LIST_T, pl);
	const struct smp_field *f = smp_type_field(t, name);
	if (check_order(pl, order, merge_key_of(f), e))
		return -1;
	if (ol == NULL && pl == NULL)
		return 0;
	json_t *server = ol ? json_copy(ol) : json_array();
	json_t *merged = merged_for_order(ol, pl, f, e);
	if (merged && is_merge(f)) {
		json_t *sorted =
		    order_list(merged, order, server, merge_key_of(f), e);
		json_decref(merged);
		merged = sorted;
	}
	json_decref(server);
	if (merged == NULL)
		return -1;
	json_object_set_new(orig, name, merged);
	json_object_set_new(done, name, json_true());
	return 0;
}

static int set_orders(json_t *orig, const json_t *patch,
    const struct smp_type *t, json_t *done, struct api_error *e)
{
	const char *k;
	json_t *order;

	json_object_foreach((json_t *)patch, k, order)
		if (has_prefix(k, SET_ORDER) &&
		    set_order(orig, patch, k, order, t, done, e))
			return -1;
	return 0;
}

/* "$deleteFromPrimitiveList/<name>": drop those values from the list. */
static int delete_from(json_t *orig, const char *k, const json_t *values,
    struct api_error *e)
{
	const char *name = directive_target(k, DELETE_FROM);
	json_t *list;

	if (name == NULL || !json_is_array(values))
		return bad_request(e, "invalid patch format of primitive list");
	list = json_object_get(orig, name);
	if (!json_is_array(list))
		return 0;
	for (size_t i = json_array_size(list); i-- > 0;)
		if (index_of(values, json_array_get(list, i), NULL) >= 0)
			json_array_remove(list, i);
	return 0;
}

/* --- maps ----------------------------------------------------------------- */

/* Both maps, both lists, or both scalars (which the patch replaces). */
static bool same_shape(const json_t *a, const json_t *b)
{
	if (json_is_object(a) || json_is_object(b))
		return json_is_object(a) && json_is_object(b);
	if (json_is_array(a) || json_is_array(b))
		return json_is_array(a) && json_is_array(b);
	return true;
}

/* The merge of one patch field pv into the original's value ov. */
static json_t *merge_value(json_t *ov, const json_t *pv,
    const struct smp_field *f, struct api_error *e)
{
	if (ov == NULL || !same_shape(ov, pv))
		return fresh(pv, f, e);
	if (json_is_object(pv) && !(f && f->strategy == SMP_REPLACE))
		return merge_map(json_incref(ov), pv, f ? f->type : NULL, e);
	if (json_is_array(pv) && is_merge(f))
		return merge_list(json_incref(ov), pv, f, e);
	return fresh(pv, f, e);
}

static int merge_field(json_t *orig, const char *k, const json_t *pv,
    const struct smp_type *t, const json_t *done, struct api_error *e)
{
	if (has_prefix(k, DELETE_FROM))
		return delete_from(orig, k, pv, e);
	/* Other directives are done, and other "$" keys are no field of any
	 * kind (Kubernetes' typed decode drops them). */
	if (k[0] == '$' || json_object_get(done, k))
		return 0;
	if (json_is_null(pv)) {
		json_object_del(orig, k);
		return 0;
	}
	json_t *v =
	    merge_value(json_object_get(orig, k), pv, smp_type_field(t, k), e);
	if (v == NULL)
		return -1;
	json_object_set_new(orig, k, v);
	return 0;
}

/* Merge patch (a map) into orig (stolen; NULL is {}); new reference or
 * NULL with e set. */
static json_t *merge_map(json_t *orig, const json_t *patch,
    const struct smp_type *t, struct api_error *e)
{
	const json_t *d = json_object_get(patch, DIRECTIVE);
	json_t *done = json_object(), *pv;
	const char *k;

	if (d && !is_str(d, "replace")) {
		json_decref(orig);
		json_decref(done);
		if (is_str(d, "delete"))
			return json_object();
		err_patch_type(e, d, patch);
		return NULL;
	}
	if (d || orig == NULL) {
		json_decref(orig);
		orig = json_object();
	}
	if (orig == NULL || done == NULL) {
		err_oom(e);
		goto fail;
	}
	if (retain_keys(orig, patch, e) || set_orders(orig, patch, t, done, e))
		goto fail;
	json_object_foreach((json_t *)patch, k, pv)
		if (merge_field(orig, k, pv, t, done, e))
			goto fail;
	json_decref(done);
	return orig;
fail:
	json_decref(done);
	json_decref(orig);
	return NULL;
}

json_t *smp_patch(const struct smp_type *t, const json_t *obj,
    const json_t *patch, struct api_error *e)
{
	json_t *orig = NULL;

	if (json_is_object(obj) && (orig = json_deep_copy(obj)) == NULL) {
		err_oom(e);
		return NULL;
	}
	return merge_map(orig, patch, t, e);
}
