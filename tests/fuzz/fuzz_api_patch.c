/* tests/fuzz/fuzz_api_patch.c — libFuzzer target for the API server's
 * PATCH engine: api_patch (plugins/apiserver/patch.c, patch_smp.c,
 * patch_keys.c) and the pod writes made on the watch cache's bytes
 * (podwrite.c, mpedit.c).
 *
 * Input: byte 0 picks the mode (low nibble, see enum mode) and the kind
 * (high nibble, an index into kinds[]; for the pod modes its low bit
 * says whether a node principal writes). The rest is the live object as
 * JSON, a NUL, then the body; without a NUL all of it is the body, and
 * the live object is the kind's sample. Each is decoded as the server
 * decodes it (the body by its patch's Content-Type); an input that does
 * not decode is one the server refuses before patching, and is skipped.
 *
 * api_patch must fail with a Status the server can send (a 4xx, or the
 * bare 500 with no reason that Kubernetes gives for some strategic merge
 * errors, which the unit tests pin), or give an object that shares no
 * json_t with its inputs (admission mutates it in place), that leaves
 * them as they were, and that the store can encode. A merge patch
 * applied twice gives what it gave once (RFC 7386); on a kind with no
 * strategic-merge tags, a strategic merge patch without directives is
 * that merge patch.
 *
 * The pod fast paths must give one msgpack map of the same pod (name,
 * uid, everything they do not write), and leave to the JSON path what
 * their contract says they leave to it. A status patch gives the same
 * bytes when asked again; on a pod whose status is as admission stores
 * it, the bytes the JSON path stores: the merge-patched status decoded
 * as admission decodes it, which decoding leaves as it is. A deletion
 * gives the pod with its deletionTimestamp (kept) or as it was read
 * (answered).
 * Seeds: tests/fuzz/api_patch/ (byte 0 as above).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "api.h"
#include "codec.h"
#include "fuzz.h"
#include "patch.h"
#include "podwrite.h"

enum mode {
	M_JSON,         /* api_patch, application/json-patch+json */
	M_MERGE,        /* application/merge-patch+json */
	M_STRATEGIC,    /* application/strategic-merge-patch+json */
	M_APPLY,        /* application/apply-patch+yaml on the live object */
	M_APPLY_CREATE, /* the same with no live object (apply creates) */
	M_POD_STATUS,   /* api_pod_status_mp_rv: a merge patch of the status */
	M_POD_DELETE,   /* api_pod_delete_mp_rv: DeleteOptions as the body */
	NMODES
};

static const struct {
	int type;
	const char *content_type;
} modes[NMODES] = {
	[M_JSON] = { API_PATCH_JSON, "application/json-patch+json" },
	[M_MERGE] = { API_PATCH_MERGE, "application/merge-patch+json" },
	[M_STRATEGIC] = { API_PATCH_STRATEGIC,
	    "application/strategic-merge-patch+json" },
	[M_APPLY] = { API_PATCH_APPLY, "application/apply-patch+yaml" },
	[M_APPLY_CREATE] = { API_PATCH_APPLY, "application/apply-patch+yaml" },
	[M_POD_STATUS] = { API_PATCH_MERGE, "application/merge-patch+json" },
	[M_POD_DELETE] = { API_PATCH_NONE, "application/json" },
};

#define POD_SAMPLE                                                             \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"      \
	"\"web-0\",\"namespace\":\"default\",\"uid\":\"u-1\",\"labels\":"      \
	"{\"app\":\"web\"},\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},"   \
	"\"spec\":{\"nodeName\":\"node-1\",\"containers\":[{\"name\":\"c\","   \
	"\"image\":\"nginx:1.27\",\"ports\":[{\"containerPort\":80}],\"env\":" \
	"[{\"name\":\"A\",\"value\":\"1\"}]}],\"volumes\":[{\"name\":\"v\","   \
	"\"emptyDir\":{}}]},\"status\":{\"phase\":\"Pending\",\"conditions\":" \
	"[{\"type\":\"PodScheduled\",\"status\":\"True\"}]}}"

/* The kinds a patch lands on, each with a live object for inputs that
 * bring none. */
static const struct {
	const char *group, *plural, *sample;
} kinds[] = {
	{ "", "pods", POD_SAMPLE },
	{ "apps", "deployments",
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":"
	    "{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"u-2\"},"
	    "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":"
	    "\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}}"
	    ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"nginx\","
	    "\"env\":[{\"name\":\"X\",\"value\":\"1\"}]},{\"name\":\"b\","
	    "\"image\":\"busybox\"}]}}}}" },
	{ "", "services",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
	    "\"web\",\"namespace\":\"default\"},\"spec\":{\"selector\":{\"app\":"
	    "\"web\"},\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":"
	    "8080},{\"name\":\"https\",\"port\":443}]}}" },
	{ "", "configmaps",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	    "\"cfg\",\"namespace\":\"default\",\"finalizers\":[\"a/b\"]},"
	    "\"data\":{\"a\":\"1\",\"b\":\"2\"}}" },
	{ "", "nodes",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":"
	    "\"node-1\"},\"spec\":{\"podCIDRs\":[\"10.244.0.0/24\"]},\"status\":"
	    "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
	    "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"}]}}" },
	{ "apps", "replicasets",
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
	    "{\"name\":\"web-1\"},\"spec\":{\"replicas\":1,\"template\":{\"spec\""
	    ":{\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"}]}}}}" },
	{ "", "namespaces",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
	    "\"ns\"},\"spec\":{\"finalizers\":[\"kubernetes\"]}}" },
	{ "", "serviceaccounts",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":"
	    "{\"name\":\"sa\"},\"secrets\":[{\"name\":\"t\"}]}" },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

#define NODE "node-1"
#define NOW "2026-11-29T03:00:00Z"
#define RV 7
#define RV_TEXT "7"

/* --- json_t helpers ------------------------------------------------------- */

struct ptrs {
	const json_t **p;
	size_t n, cap;
};

/* Every object and array in j (scalars may be shared singletons). */
static void collect(const json_t *j, struct ptrs *s)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(j) && !json_is_array(j))
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->p = realloc(s->p, s->cap * sizeof(*s->p));
		CHECK(s->p != NULL);
	}
	s->p[s->n++] = j;
	json_object_foreach((json_t *)j, k, v)
		collect(v, s);
	json_array_foreach(j, i, v)
		collect(v, s);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const json_t *const *)a;
	uintptr_t y = (uintptr_t) * (const json_t *const *)b;
	return x < y ? -1 : x > y;
}

static bool has_ptr(const struct ptrs *s, const json_t *j)
{
	return bsearch(&j, s->p, s->n, sizeof(*s->p), cmp_ptr) != NULL;
}

/* out holds each of its containers once, and none of a's or b's: what
 * admission changes in place changes nothing else. */
static void check_unshared(const json_t *out, const json_t *a, const json_t *b)
{
	struct ptrs o = { 0 }, in = { 0 };

	collect(out, &o);
	collect(a, &in);
	collect(b, &in);
	qsort(o.p, o.n, sizeof(*o.p), cmp_ptr);
	qsort(in.p, in.n, sizeof(*in.p), cmp_ptr);
	for (size_t i = 0; i < o.n; i++) {
		CHECK(i == 0 || o.p[i] != o.p[i - 1]);
		CHECK(!has_ptr(&in, o.p[i]));
	}
	free(o.p);
	free(in.p);
}

/* A key anywhere in j starts with '$' or is one of the two tagged
 * fields of ObjectMeta. */
static bool has_smp_part(const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)j, k, v)
		if (k[0] == '$' || !strcmp(k, "finalizers") ||
		    !strcmp(k, "ownerReferences") || has_smp_part(v))
			return true;
	json_array_foreach(j, i, v)
		if (has_smp_part(v))
			return true;
	return false;
}

/* A copy of obj without its member key. */
static json_t *without(const json_t *obj, const char *key)
{
	json_t *c = json_deep_copy(obj);

	CHECK(c != NULL);
	json_object_del(c, key);
	return c;
}

/* The string at path is want (a missing one reads as ""). */
static bool str_at(const json_t *obj, const char *path, const char *want)
{
	const char *s = api_get_str(obj, path);
	return !strcmp(s ? s : "", want);
}

static bool same_at(const json_t *a, const json_t *b, const char *path)
{
	const json_t *x = api_get(a, path), *y = api_get(b, path);
	return x == y || (x && y && json_equal((json_t *)x, (json_t *)y));
}

/* --- api_patch ------------------------------------------------------------ */

/* A failure the server can answer: a client error, or the reasonless
 * 500s Kubernetes passes up from apimachinery's strategic merge (and
 * from apply's typed conversion), never an internal error. */
static void check_failure(struct api_error *e)
{
	CHECK(e->code >= 400 && e->code <= 500);
	CHECK(e->code < 500 || (e->reason && !*e->reason));
	CHECK(e->reason != NULL && e->message[0] != '\0');
	json_t *s = api_status(e);
	CHECK(s != NULL && json_object_get(s, "message") != NULL);
	json_decref(s);
	api_err_clear(e);
}

/* What the store does with a patched object next. */
static void check_storable(const json_t *out)
{
	char *mp = NULL;
	size_t len = 0;

	CHECK(api_mp_encode(out, &mp, &len) == 0);
	json_t *back = api_mp_decode(mp, len);
	CHECK(back != NULL && json_equal(back, (json_t *)out));
	json_decref(back);
	free(mp);
}

/* RFC 7386: a merge patch is idempotent. */
static void check_merge_again(const struct api_resource *r, const json_t *out,
    const json_t *patch)
{
	struct api_error e = { 0 };
	json_t *again = api_patch(API_PATCH_MERGE, r, out, patch, &e);

	CHECK(again != NULL && json_equal(again, (json_t *)out));
	json_decref(again);
}

/* A kind whose only tags are metadata's: without directives or those
 * fields anywhere, strategic merge (and apply) is a merge patch, and so
 * cannot fail (out NULL: it did). */
static void check_as_merge(const struct api_resource *r, const json_t *obj,
    const json_t *patch, const json_t *out)
{
	struct api_error e = { 0 };
	json_t *empty = NULL;

	if (smp_kind_type(r->kind) != smp_kind_type(NULL) ||
	    !json_is_object(patch) || has_smp_part(patch))
		return;
	if (obj == NULL)
		obj = empty = json_object();
	json_t *m = api_patch(API_PATCH_MERGE, r, obj, patch, &e);
	CHECK(m != NULL && out != NULL && json_equal(m, (json_t *)out));
	json_decref(m);
	json_decref(empty);
}

static void fuzz_api_patch(enum mode mode, const struct api_resource *r,
    const json_t *obj, const json_t *patch)
{
	struct api_error e = { 0 };
	json_t *obj0 = json_deep_copy(obj), *patch0 = json_deep_copy(patch);
	json_t *out = api_patch(modes[mode].type, r, obj, patch, &e);

	CHECK(json_equal(obj0, (json_t *)obj) || obj == NULL);
	CHECK(json_equal(patch0, (json_t *)patch));
	if (out == NULL) {
		check_failure(&e);
		/* a strategic merge without directives never fails here */
		if (mode == M_STRATEGIC)
			check_as_merge(r, obj, patch, NULL);
		goto out;
	}
	CHECK(e.code == 0 && json_is_object(out));
	check_unshared(out, obj, patch);
	check_storable(out);
	if (mode == M_MERGE)
		check_merge_again(r, out, patch);
	if (mode != M_JSON && mode != M_MERGE)
		check_as_merge(r, obj, patch, out);
out:
	json_decref(out);
	json_decref(obj0);
	json_decref(patch0);
}

/* --- the pod fast paths --------------------------------------------------- */

/* The pod as the store holds it: no resourceVersion (the cache splices
 * it in), and a status decoded as admission decodes what it stores.
 * False when the status is not one admission would have stored: the
 * fast path then takes it on trust, and what it makes cannot be
 * foretold. */
static bool stored_form(json_t *pod)
{
	const struct adm_stype *t = adm_schema("", "Pod");
	json_t *st = json_object_get(pod, "status");
	char err[256];
	bool ok;

	json_object_del(json_object_get(pod, "metadata"), "resourceVersion");
	if (st == NULL)
		return true;
	if (!json_is_object(st))
		return false;
	json_t *w = json_pack("{s:o}", "status", json_deep_copy(st));
	CHECK(w != NULL);
	ok = adm_decodable(t, w) && adm_decode(t, w, err, sizeof(err)) &&
	    json_object_size(w) == 1 &&
	    json_is_object(json_object_get(w, "status"));
	if (ok)
		json_object_set(pod, "status", json_object_get(w, "status"));
	json_decref(w);
	return ok;
}

/* The bytes are one msgpack value, a map: the object they hold. */
static json_t *whole_map(const char *b, size_t len)
{
	json_t *j = api_mp_decode(b, len);

	CHECK(json_is_object(j));
	return j;
}

/* got is pod but for what a write may change: the status, or the
 * metadata's deletion fields and resourceVersion. */
static void check_same_pod(const json_t *got, const json_t *pod,
    bool status_too)
{
	CHECK(same_at(got, pod, "metadata.name"));
	CHECK(same_at(got, pod, "metadata.uid"));
	json_t *a = without(got, status_too ? "status" : "metadata");
	json_t *b = without(pod, status_too ? "status" : "metadata");
	if (status_too) {
		json_object_del(json_object_get(b, "metadata"),
		    "resourceVersion");
	}
	CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	if (status_too)
		return;
	a = json_deep_copy(json_object_get(got, "metadata"));
	b = json_deep_copy(json_object_get(pod, "metadata"));
	CHECK(a != NULL && b != NULL);
	const char *drop[] = { "deletionTimestamp",
		"deletionGracePeriodSeconds", "resourceVersion" };
	for (size_t i = 0; i < 3; i++) {
		json_object_del(a, drop[i]);
		json_object_del(b, drop[i]);
	}
	CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
}

/* What the JSON path stores for a status patch: the pod with its status
 * merge-patched and decoded as admission decodes it; NULL when decoding
 * refuses it (a 400, or unknown fields), which the fast path must leave
 * to that path. */
static json_t *status_patched(const struct api_resource *r, const json_t *pod,
    const json_t *patch)
{
	const struct adm_stype *t = adm_schema("", "Pod");
	struct api_error e = { 0 };
	json_t *base = json_object(), *st, *want = NULL;
	char err[256];

	CHECK(base != NULL);
	if (json_object_get(pod, "status"))
		json_object_set(base, "status", json_object_get(pod, "status"));
	st = api_patch(API_PATCH_MERGE, r, base, patch, &e);
	CHECK(st != NULL);
	if (adm_decodable(t, st) && adm_decode(t, st, err, sizeof(err)) &&
	    json_object_size(st) == 1 &&
	    json_is_object(json_object_get(st, "status"))) {
		want = json_deep_copy(pod);
		json_object_del(json_object_get(want, "metadata"),
		    "resourceVersion");
		json_object_set(want, "status", json_object_get(st, "status"));
	}
	json_decref(st);
	json_decref(base);
	return want;
}

/* What a status write stores is what decoding gives again: else the
 * next write of the pod, which decodes it, fails. */
static void check_decoded(const json_t *pod)
{
	const struct adm_stype *t = adm_schema("", "Pod");
	json_t *w =
	    json_pack("{s:O}", "status", json_object_get(pod, "status"));
	json_t *d = json_deep_copy(w);
	char err[256];

	CHECK(w != NULL && d != NULL);
	CHECK(adm_decodable(t, d) && adm_decode(t, d, err, sizeof(err)));
	CHECK(json_equal(w, d));
	json_decref(w);
	json_decref(d);
}

/* The preconditions the fast status patch holds to, and its bytes:
 * `plain` when the pod's status is as admission stores it, so that the
 * bytes the JSON path would store can be made here. */
static void check_status_out(const struct api_resource *r, const json_t *pod,
    const json_t *patch, const char *node, bool plain, const char *out,
    size_t outlen)
{
	CHECK(json_object_size(patch) == 1 &&
	    json_is_object(json_object_get(patch, "status")));
	CHECK(str_at(pod, "kind", "Pod") && str_at(pod, "apiVersion", "v1"));
	CHECK(!node || str_at(pod, "spec.nodeName", node));
	json_t *got = whole_map(out, outlen);
	CHECK(api_get(got, "metadata.resourceVersion") == NULL);
	check_same_pod(got, pod, true);
	if (plain) {
		check_decoded(got);
		json_t *want = status_patched(r, pod, patch);
		char *mp = NULL;
		size_t len = 0;
		CHECK(want != NULL);
		CHECK(api_mp_encode(want, &mp, &len) == 0);
		CHECK(len == outlen && !memcmp(mp, out, len));
		free(mp);
		json_decref(want);
	}
	json_decref(got);
}

/* The cache's bytes of pod (an exact copy), resourceVersion RV spliced
 * in last; NULL when it has no metadata map, with its bytes as stored
 * in *raw. */
static char *cache_bytes(const json_t *pod, size_t *len, char **raw,
    size_t *rawlen)
{
	char *mp = NULL, *with = NULL, *c = NULL;
	size_t mplen = 0, wl = 0;

	*raw = NULL;
	CHECK(api_mp_encode(pod, &mp, &mplen) == 0);
	if (api_mp_with_rv(mp, mplen, RV, &with, &wl) != 0) {
		*raw = exact_copy(mp, mplen);
		*rawlen = mplen;
	} else {
		c = exact_copy(with, wl);
		*len = wl;
	}
	free(mp);
	free(with);
	return c;
}

static void fuzz_pod_status(json_t *pod, json_t *patch, const char *node)
{
	const struct api_resource *r = api_resource_find("", "v1", "pods");
	char *data, *raw, *out = NULL, *again = NULL;
	size_t len = 0, rawlen = 0, outlen = 0, alen = 0;
	bool plain = stored_form(pod);
	/* the fast path may decode parts of the patch in place */
	json_t *patch0 = json_deep_copy(patch);

	data = cache_bytes(pod, &len, &raw, &rawlen);
	if (data == NULL) {
		CHECK(api_pod_status_mp_rv(r, raw, rawlen, patch, node, &out,
			  &outlen) == API_PSTAT_JSON);
		CHECK(out == NULL);
		goto out;
	}
	enum api_pstat rc =
	    api_pod_status_mp_rv(r, data, len, patch, node, &out, &outlen);
	CHECK(rc == API_PSTAT_OK || rc == API_PSTAT_JSON);
	if (rc != API_PSTAT_OK)
		goto out;
	/* a write that meets a conflict is made again from the patch */
	rc = api_pod_status_mp_rv(r, data, len, patch, node, &again, &alen);
	CHECK(
	    rc == API_PSTAT_OK && alen == outlen && !memcmp(again, out, alen));
	check_status_out(r, pod, patch0, node, plain, out, outlen);
out:
	free(again);
	free(out);
	free(data);
	free(raw);
	json_decref(patch0);
}

/* What the fast deletion holds to: DeleteOptions it cannot take, a uid
 * precondition that fails, finalizers and another node's pod are left to
 * the JSON path. */
static void check_delete_pre(const json_t *pod, const json_t *opts,
    const char *node)
{
	const json_t *pre = json_object_get(opts, "preconditions");
	const char *uid = json_string_value(json_object_get(pre, "uid"));

	CHECK(opts == NULL || json_is_object(opts));
	CHECK(api_get(pod, "metadata.finalizers") == NULL);
	CHECK(!node || str_at(pod, "spec.nodeName", node));
	CHECK(!uid || str_at(pod, "metadata.uid", uid));
}

static void check_delete_out(const json_t *pod, bool keep, const char *b,
    size_t len)
{
	json_t *got = whole_map(b, len);
	const json_t *dgps =
	    api_get(got, "metadata.deletionGracePeriodSeconds");

	check_same_pod(got, pod, false);
	if (keep) {
		/* stored: the cache splices the new version in */
		CHECK(api_get(got, "metadata.resourceVersion") == NULL);
		CHECK(api_get(got, "metadata.deletionTimestamp") != NULL);
	} else {
		/* answered as it was read */
		CHECK(same_at(got, pod, "metadata.resourceVersion"));
	}
	if (api_get(pod, "metadata.deletionTimestamp") == NULL) {
		CHECK(str_at(got, "metadata.deletionTimestamp", NOW));
		CHECK(json_is_integer(dgps) &&
		    (json_integer_value(dgps) > 0) == keep);
	}
	json_decref(got);
}

static void fuzz_pod_delete(json_t *pod, const json_t *opts, const char *node)
{
	char *data, *raw, *put = NULL, *ans = NULL;
	size_t len = 0, rawlen = 0, putlen = 0, anslen = 0;
	bool keep = false;

	json_object_del(json_object_get(pod, "metadata"), "resourceVersion");
	data = cache_bytes(pod, &len, &raw, &rawlen);
	if (data == NULL) {
		CHECK(api_pod_delete_mp_rv(raw, rawlen, opts, node, NOW, &keep,
			  &put, &putlen, &ans, &anslen) == API_PSTAT_JSON);
		CHECK(put == NULL && ans == NULL);
		goto out;
	}
	enum api_pstat rc = api_pod_delete_mp_rv(data, len, opts, node, NOW,
	    &keep, &put, &putlen, &ans, &anslen);
	CHECK(rc == API_PSTAT_OK || rc == API_PSTAT_JSON);
	if (rc != API_PSTAT_OK) {
		CHECK(put == NULL && ans == NULL);
		goto out;
	}
	CHECK(keep ? put && !ans : ans && !put);
	check_delete_pre(pod, opts, node);
	/* the pod as read: with its resourceVersion */
	json_object_set_new(json_object_get(pod, "metadata"), "resourceVersion",
	    json_string(RV_TEXT));
	check_delete_out(pod, keep, keep ? put : ans, keep ? putlen : anslen);
out:
	free(put);
	free(ans);
	free(data);
	free(raw);
}

/* --- the input ------------------------------------------------------------ */

/* The live object: the JSON before the first NUL, or the kind's sample. */
static json_t *live_object(size_t kind, const uint8_t **in, size_t *n)
{
	struct api_error e = { 0 };
	const uint8_t *nul = memchr(*in, 0, *n);
	const char *text = kinds[kind].sample;
	size_t len = strlen(text);
	json_t *obj;

	if (nul) {
		text = (const char *)*in;
		len = (size_t)(nul - *in);
		*n -= len + 1;
		*in = nul + 1;
	}
	/* the store's objects come from a decoder, bounded as this one */
	char *c = exact_copy(text, len);
	obj = api_parse_body("application/json", c, len, &e);
	free(c);
	api_err_clear(&e);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_error e = { 0 };
	const struct api_resource *r;
	json_t *obj, *body = NULL;
	char *in;

	if (size == 0)
		return 0;
	enum mode mode = (enum mode)((data[0] & 0x0f) % NMODES);
	size_t kind = (size_t)(data[0] >> 4) % NKINDS;
	const char *node = (data[0] >> 4) & 1 ? NODE : NULL;
	const uint8_t *rest = data + 1;
	size_t n = size - 1;

	if (mode == M_POD_STATUS || mode == M_POD_DELETE)
		kind = 0;
	obj = live_object(kind, &rest, &n);
	if (obj == NULL)
		return 0;
	in = exact_copy((const char *)rest, n);
	/* a deletion may come with no body at all */
	if (n > 0 || mode != M_POD_DELETE) {
		body = api_parse_body(modes[mode].content_type, in, n, &e);
		api_err_clear(&e);
		if (body == NULL)
			goto out;
	}
	r = api_resource_find(kinds[kind].group, "v1", kinds[kind].plural);
	CHECK(r != NULL);
	if (mode == M_POD_STATUS)
		fuzz_pod_status(obj, body, node);
	else if (mode == M_POD_DELETE)
		fuzz_pod_delete(obj, body, node);
	else
		fuzz_api_patch(mode, r, mode == M_APPLY_CREATE ? NULL : obj,
		    body);
out:
	json_decref(body);
	json_decref(obj);
	free(in);
	return 0;
}
