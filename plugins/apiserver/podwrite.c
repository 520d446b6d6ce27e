/* plugins/apiserver/podwrite.c — pod writes on a pod's bytes (see
 * podwrite.h). */
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>

#include "admit.h"
#include "codec.h"
#include "mpedit.h"
#include "podwrite.h"

/* st ({"status": …}) decoded in place as admission decodes it: false
 * (st as it came) where it has unknown fields (warnings, or Strict's
 * 400), decoding refuses it (400), or it is not a status alone. */
static bool decode_status(json_t *st)
{
	const struct adm_stype *t = adm_schema("", "Pod");
	char err[256];
	return adm_decodable(t, st) && adm_decode(t, st, err, sizeof err) &&
	    json_object_size(st) == 1 && json_is_object(json_object_get(st, "status"));
}

/* The old status (NULL: none) merged with the patch, decoded as
 * admission decodes it: {"status": …}, or NULL where the JSON path is
 * the one to answer. */
static json_t *merged_status(const struct api_resource *r, const msgpack_object *old,
    const json_t *patch)
{
	json_t *base = json_object();
	if (base == NULL)
		return NULL;
	if (old) {
		json_t *o = api_json_from_mp(old);
		if (o == NULL || json_object_set_new(base, "status", o)) {
			json_decref(base);
			return NULL;
		}
	}
	struct api_error e = { 0 };
	json_t *st = api_patch(API_PATCH_MERGE, r, base, patch, &e);
	json_decref(base);
	api_err_clear(&e);
	if (st && !decode_status(st)) {
		json_decref(st);
		return NULL;
	}
	return st;
}

/* A patch {"status": S} whose S sets each of its keys to something that
 * is neither null nor an object: the merge replaces those keys whole, so
 * the merged status is the old one with S's keys set (in place, or
 * appended in S's order). */
static bool flat_patch(const json_t *patch)
{
	const json_t *s = json_object_get(patch, "status"), *v;
	const char *k;
	json_object_foreach ((json_t *)s, k, v)
		if (json_is_null(v) || json_is_object(v))
			return false;
	return true;
}

/* Such a patch decoded as admission decodes it ({"status": …}): decoding
 * works key by key, so decoding the merged status gives the old one's
 * keys (decoded when they were written) and, for S's keys, what decoding
 * S gives, which may drop one (an empty time). NULL where merged_status
 * would say no.
 *
 * Not a deep copy: the values below S's keys are decoded in place, in the
 * patch itself, which leaves it as good for the JSON path (decoding what
 * decoding made gives it again, and those values replace the old ones
 * whole). Only S's own keys are copied, since one that decoding drops
 * still has to remove the old key when that path merges the patch. And
 * only once adm_decodable has said decoding takes it all, so a patch
 * decoding refuses is left as it came for that path's answer. */
static json_t *decoded_patch(const json_t *patch)
{
	json_t *d = json_object(), *s = json_object();
	bool ok = d && s && !json_object_update(s, json_object_get(patch, "status")) &&
	    !json_object_set(d, "status", s) && decode_status(d);
	json_decref(s);
	if (!ok) {
		json_decref(d);
		return NULL;
	}
	return d;
}

/* The pod packed with the edits, into *out (malloc'd), *outlen. */
static enum api_pstat pack_edited(const msgpack_object *pod, const struct mpe_edit *edits,
    size_t n, size_t hint, char **out, size_t *outlen)
{
	msgpack_sbuffer sb = { .alloc = hint + 512 };
	msgpack_packer pk;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return API_PSTAT_NOMEM;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = mpe_pack(&pk, pod, edits, n);
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return rc == KB_EINVAL ? API_PSTAT_JSON : API_PSTAT_NOMEM;
	}
	*out = sb.data;
	*outlen = sb.size;
	return API_PSTAT_OK;
}

/* The pod (rv dropped) packed with the status `st` ({"status": …}) in
 * place of its own. */
static enum api_pstat pack_status(const msgpack_object *pod, const json_t *st, size_t hint,
    char **out, size_t *outlen)
{
	char *smp = NULL;
	size_t slen = 0, off = 0;
	msgpack_zone z;
	msgpack_object w;
	if (api_mp_encode(st, &smp, &slen) != 0)
		return API_PSTAT_NOMEM;
	if (!msgpack_zone_init(&z, slen * 2 + 256)) {
		free(smp);
		return API_PSTAT_NOMEM;
	}
	enum api_pstat r = API_PSTAT_JSON;
	if (msgpack_unpack(smp, slen, &off, &z, &w) == MSGPACK_UNPACK_SUCCESS &&
	    off == slen && w.type == MSGPACK_OBJECT_MAP && w.via.map.size == 1) {
		const struct mpe_edit edit = { "status", MPE_SET, &w.via.map.ptr[0].val, NULL };
		r = pack_edited(pod, &edit, 1, hint, out, outlen);
	}
	msgpack_zone_destroy(&z);
	free(smp);
	return r;
}

/* Where the cache's bytes of a pod hold what a status write changes:
 * the metadata map (its head, its entries, its last entry, which is the
 * resourceVersion the cache spliced in, and its end) and the status. */
struct pod_at {
	const unsigned char *md, *md_body, *rv, *md_end, *st, *st_end, *spec, *end;
	uint64_t mdn;
	/* kind Pod, apiVersion v1, a deletionTimestamp in the metadata and
	 * a deletionGracePeriodSeconds above 0 */
	bool pod, v1, deleting, grace;
};

static bool key_is(const struct api_mval *k, const char *want)
{
	return k->kind == API_MV_STR && k->n == strlen(want) && !memcmp(k->s, want, k->n);
}

/* The spans of a pod's bytes as the cache holds them (each key once,
 * a status present); false for anything else. */
static bool pod_spans(const void *data, size_t len, struct pod_at *at)
{
	struct api_mpc c = { data, (const unsigned char *)data + len };
	struct api_mval v, k, m, mk = { 0 };
	memset(at, 0, sizeof(*at));
	if (!api_mpc_read(&c, &v) || v.kind != API_MV_MAP)
		return false;
	for (uint64_t i = 0; i < v.n; i++) {
		if (!api_mpc_read(&c, &k) || k.kind != API_MV_STR)
			return false;
		if (key_is(&k, "metadata")) {
			if (at->md)
				return false;
			at->md = c.p;
			if (!api_mpc_read(&c, &m) || m.kind != API_MV_MAP || m.n == 0)
				return false;
			at->md_body = c.p;
			at->mdn = m.n;
			for (uint64_t j = 0; j < m.n; j++) {
				at->rv = c.p;
				if (!api_mpc_read(&c, &mk) || mk.kind != API_MV_STR)
					return false;
				at->deleting |= key_is(&mk, "deletionTimestamp");
				if (key_is(&mk, "deletionGracePeriodSeconds")) {
					struct api_mval g;
					const unsigned char *gp = c.p;
					if (api_mpc_read(&c, &g) && g.kind == API_MV_INT)
						at->grace = g.i > 0;
					c.p = gp;
				}
				if (!api_mpc_skip(&c, 2))
					return false;
			}
			if (!key_is(&mk, "resourceVersion"))
				return false;
			at->md_end = c.p;
		} else if (key_is(&k, "status")) {
			if (at->st)
				return false;
			at->st = c.p;
			if (!api_mpc_skip(&c, 1))
				return false;
			at->st_end = c.p;
		} else if (key_is(&k, "kind") || key_is(&k, "apiVersion")) {
			bool kind = k.s[0] == 'k';
			struct api_mval t;
			if (!api_mpc_read(&c, &t))
				return false;
			if (t.kind == API_MV_STR && kind)
				at->pod = t.n == 3 && !memcmp(t.s, "Pod", 3);
			else if (t.kind == API_MV_STR)
				at->v1 = t.n == 2 && !memcmp(t.s, "v1", 2);
			else if (t.kind == API_MV_MAP || t.kind == API_MV_ARR)
				return false; /* not one an encoder of ours wrote */
		} else {
			if (key_is(&k, "spec"))
				at->spec = c.p;
			if (!api_mpc_skip(&c, 1))
				return false;
		}
	}
	at->end = c.end;
	return c.p == c.end && at->md && at->st;
}

/* The checks api_pod_status_mp_rv makes on the unpacked pod, on its
 * bytes: a Pod of v1, its status a map, on `node` when one is given.
 * Being deleted, in its grace period: a write does not finish it (rest.c's
 * finalized wants a grace period of 0), so the kubelet's patches of a pod
 * it is stopping are taken here too. */
static bool pod_plain(const struct pod_at *at, const char *node)
{
	struct api_mpc c = { at->st, at->st_end };
	struct api_mval v;
	if (!at->pod || !at->v1 || (at->deleting && !at->grace) || !api_mpc_read(&c, &v) ||
	    v.kind != API_MV_MAP)
		return false;
	if (node == NULL)
		return true;
	c = (struct api_mpc){ at->spec, at->end };
	if (at->spec == NULL || !api_mpc_find(&c, "nodeName", 8) || !api_mpc_read(&c, &v))
		return false;
	return v.kind == API_MV_STR && v.n == strlen(node) && !memcmp(v.s, node, v.n);
}

/* A stretch of the bytes replaced: the metadata's or the status's. */
struct span {
	const unsigned char *from, *to;
	bool md;
};

/* The pod's bytes with its resourceVersion dropped and the status value
 * val (vlen bytes) in place of its own: spliced rather than packed again
 * (pack_status), which gives the same bytes for bytes as the encoder
 * writes them (api_mp_with_rv splices on the same ground). */
static enum api_pstat splice_status_bytes(const void *data, size_t len, const struct pod_at *at,
    const unsigned char *val, size_t vlen, char **out, size_t *outlen)
{
	const unsigned char *d = data;
	msgpack_sbuffer sb = { .alloc = len + vlen + 16 };
	msgpack_packer pk;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return API_PSTAT_NOMEM;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* the two edits in the order they come in the bytes */
	struct span e[2] = { { at->md, at->md_end, true }, { at->st, at->st_end, false } };
	if (at->st < at->md) {
		e[0] = (struct span){ at->st, at->st_end, false };
		e[1] = (struct span){ at->md, at->md_end, true };
	}
	const unsigned char *from = d;
	int rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		rc = msgpack_sbuffer_write(&sb, (const char *)from, (size_t)(e[i].from - from));
		if (rc == 0 && e[i].md)
			rc = msgpack_pack_map(&pk, (size_t)at->mdn - 1) ||
			    msgpack_sbuffer_write(&sb, (const char *)at->md_body,
				(size_t)(at->rv - at->md_body));
		else if (rc == 0)
			rc = msgpack_sbuffer_write(&sb, (const char *)val, vlen);
		from = e[i].to;
	}
	if (rc == 0)
		rc = msgpack_sbuffer_write(&sb, (const char *)from, len - (size_t)(from - d));
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return API_PSTAT_NOMEM;
	}
	*out = sb.data;
	*outlen = sb.size;
	return API_PSTAT_OK;
}

/* st ({"status": …}) encoded: c at the status value; NULL (nothing to
 * free) when it is not so. */
static char *encode_status(const json_t *st, struct api_mpc *c, bool *nomem)
{
	char *smp = NULL;
	size_t slen = 0;
	struct api_mval v, k;
	*nomem = api_mp_encode(st, &smp, &slen) != 0;
	if (*nomem)
		return NULL;
	*c = (struct api_mpc){ (const unsigned char *)smp, (const unsigned char *)smp + slen };
	if (!api_mpc_read(c, &v) || v.kind != API_MV_MAP || v.n != 1 || !api_mpc_read(c, &k) ||
	    !key_is(&k, "status")) {
		free(smp);
		return NULL;
	}
	return smp;
}

/* The same with the status `st` ({"status": …}) encoded. */
static enum api_pstat splice_status(const void *data, size_t len, const struct pod_at *at,
    const json_t *st, char **out, size_t *outlen)
{
	struct api_mpc c;
	bool nomem;
	char *smp = encode_status(st, &c, &nomem);
	if (smp == NULL)
		return nomem ? API_PSTAT_NOMEM : API_PSTAT_JSON;
	enum api_pstat r = splice_status_bytes(data, len, at, c.p, (size_t)(c.end - c.p), out, outlen);
	free(smp);
	return r;
}

/* A map's entries as bytes: each key's text and the span of the entry
 * (key and value). */
#define ENTRIES_MAX 64
struct entries {
	size_t n;
	struct {
		const char *k;
		size_t kn;
		const unsigned char *from, *to;
	} e[ENTRIES_MAX];
};

/* The map at c, c moved past it: false when it is not one, has more
 * than ENTRIES_MAX entries, a key that is no str, or a key twice. */
static bool read_entries(struct api_mpc *c, struct entries *es)
{
	struct api_mval v, k;
	if (!api_mpc_read(c, &v) || v.kind != API_MV_MAP || v.n > ENTRIES_MAX)
		return false;
	es->n = (size_t)v.n;
	for (size_t i = 0; i < es->n; i++) {
		es->e[i].from = c->p;
		if (!api_mpc_read(c, &k) || k.kind != API_MV_STR || !api_mpc_skip(c, 1))
			return false;
		es->e[i].k = k.s;
		es->e[i].kn = (size_t)k.n;
		es->e[i].to = c->p;
		for (size_t j = 0; j < i; j++)
			if (es->e[j].kn == k.n && !memcmp(es->e[j].k, k.s, k.n))
				return false;
	}
	return true;
}

/* Whether es has key k (kn bytes), at *i. */
static bool entry_of(const struct entries *es, const char *k, size_t kn, size_t *i)
{
	for (*i = 0; *i < es->n; (*i)++)
		if (es->e[*i].kn == kn && !memcmp(es->e[*i].k, k, kn))
			return true;
	return false;
}

/* The merge of a flat patch (flat_patch: S, the patch's status; dec, it
 * decoded) on the old status's bytes, as bytes: the old entries in their
 * order, those S sets taken from dec (or dropped where decoding dropped
 * them), then dec's entries the old status lacks, in dec's order — what
 * merge_patch and decoding the merged status give, encoded. Spliced
 * into the pod as splice_status does. */
static enum api_pstat splice_merged(const void *data, size_t len, const struct pod_at *at,
    const json_t *patch, const json_t *dec, char **out, size_t *outlen)
{
	const json_t *s = json_object_get(patch, "status");
	struct api_mpc c, oc = { at->st, at->st_end };
	struct entries *pe = malloc(2 * sizeof(*pe)), *oe = pe + 1;
	if (pe == NULL)
		return API_PSTAT_NOMEM;
	bool nomem;
	char *smp = encode_status(dec, &c, &nomem);
	enum api_pstat r = nomem ? API_PSTAT_NOMEM : API_PSTAT_JSON;
	if (smp == NULL || !read_entries(&c, pe) || c.p != c.end || !read_entries(&oc, oe) ||
	    oc.p != at->st_end)
		goto out;
	/* the merged entries, in order, as spans of the two encodings */
	const unsigned char *from[2 * ENTRIES_MAX], *to[2 * ENTRIES_MAX];
	bool taken[ENTRIES_MAX] = { false };
	size_t n = 0, j;
	for (size_t i = 0; i < oe->n; i++) {
		const struct entries *es = oe;
		size_t at_i = i;
		if (json_object_getn(s, oe->e[i].k, oe->e[i].kn)) {
			if (!entry_of(pe, oe->e[i].k, oe->e[i].kn, &j))
				continue; /* dropped by decoding: the old one goes */
			taken[j] = true;
			es = pe;
			at_i = j;
		}
		from[n] = es->e[at_i].from;
		to[n++] = es->e[at_i].to;
	}
	for (size_t i = 0; i < pe->n; i++)
		if (!taken[i]) {
			from[n] = pe->e[i].from;
			to[n++] = pe->e[i].to;
		}
	msgpack_sbuffer sb = { .alloc = (size_t)(at->st_end - at->st) + (size_t)(c.end - c.p) + 16 };
	msgpack_packer pk;
	r = API_PSTAT_NOMEM;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		goto out;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = msgpack_sbuffer_write(&sb, (const char *)from[i], (size_t)(to[i] - from[i]));
	if (rc == 0)
		r = splice_status_bytes(data, len, at, (const unsigned char *)sb.data, sb.size, out,
		    outlen);
	msgpack_sbuffer_destroy(&sb);
out:
	free(smp);
	free(pe);
	return r;
}

/* The pod's bytes with its metadata (the span at->md..at->md_end) packed
 * anew from md with the edits (paths within the metadata): only that map
 * is packed again, for the same bytes. */
static enum api_pstat splice_metadata(const void *data, size_t len, const struct pod_at *at,
    const msgpack_object *md, const struct mpe_edit *edits, size_t n, char **out,
    size_t *outlen)
{
	const unsigned char *d = data;
	msgpack_sbuffer sb = { .alloc = len + 256 };
	msgpack_packer pk;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return API_PSTAT_NOMEM;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = msgpack_sbuffer_write(&sb, data, (size_t)(at->md - d));
	if (rc == 0)
		rc = mpe_pack(&pk, md, edits, n);
	if (rc == 0 && msgpack_sbuffer_write(&sb, (const char *)at->md_end,
			   len - (size_t)(at->md_end - d)))
		rc = KB_ENOMEM;
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return rc == KB_EINVAL ? API_PSTAT_JSON : API_PSTAT_NOMEM;
	}
	*out = sb.data;
	*outlen = sb.size;
	return API_PSTAT_OK;
}

/* The cache's bytes of a pod unpacked into z (initialised here): false
 * when they do not unpack whole into a map (msgpack-c stops at 32
 * levels: the JSON path decodes deeper) or their metadata is no map
 * ending in a resourceVersion. *md is that map, its resourceVersion
 * dropped (the stored object's). */
static bool unpack_pod(const void *data, size_t len, msgpack_zone *z, msgpack_object *pod,
    msgpack_object **md)
{
	size_t off = 0;
	*md = NULL;
	if (data == NULL || len == 0 || !msgpack_zone_init(z, len * 2 + 1024))
		return false;
	if (msgpack_unpack(data, len, &off, z, pod) != MSGPACK_UNPACK_SUCCESS || off != len ||
	    pod->type != MSGPACK_OBJECT_MAP) {
		msgpack_zone_destroy(z);
		return false;
	}
	/* it points into the zone: editable */
	*md = (msgpack_object *)mpe_key(pod, "metadata");
	if (!mpe_drop_rv(*md) || mpe_key(*md, "resourceVersion")) {
		msgpack_zone_destroy(z);
		return false;
	}
	return true;
}

enum api_pstat api_pod_status_mp_rv(const struct api_resource *r, const void *data,
    size_t len, const json_t *patch, const char *node, char **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (!json_is_object(patch) || json_object_size(patch) != 1 ||
	    !json_is_object(json_object_get(patch, "status")))
		return API_PSTAT_JSON;
	struct pod_at at;
	bool spans = pod_spans(data, len, &at);
	json_t *st = NULL;
	enum api_pstat ret = API_PSTAT_JSON;
	/* a kubelet's patch: neither the pod nor its status unpacked */
	if (spans && pod_plain(&at, node) && flat_patch(patch) && (st = decoded_patch(patch))) {
		ret = splice_merged(data, len, &at, patch, st, out, outlen);
		json_decref(st);
		return ret;
	}
	msgpack_zone z;
	msgpack_object pod, *md;
	if (!unpack_pod(data, len, &z, &pod, &md))
		return API_PSTAT_JSON;
	const msgpack_object *old = mpe_key(&pod, "status");
	/* carry_over sets kind and apiVersion: where they are not as it
	 * sets them, the JSON path's bytes differ */
	if (!mpe_key(md, "deletionTimestamp") && mpe_str_is(mpe_key(&pod, "kind"), "Pod") &&
	    mpe_str_is(mpe_key(&pod, "apiVersion"), "v1") &&
	    (!node || mpe_str_is(mpe_key(mpe_key(&pod, "spec"), "nodeName"), node)) &&
	    (!old || old->type == MSGPACK_OBJECT_MAP) && (st = merged_status(r, old, patch)))
		ret = spans ? splice_status(data, len, &at, st, out, outlen)
			    : pack_status(&pod, st, len, out, outlen);
	json_decref(st);
	msgpack_zone_destroy(&z);
	return ret;
}

/* DeleteOptions the fast path takes: those rest.c's delete_one reads
 * that change nothing here but the grace period and a uid to check. */
static bool plain_options(const json_t *opts, const char **uid)
{
	const char *k;
	json_t *v;
	*uid = NULL;
	if (opts == NULL)
		return true;
	if (!json_is_object(opts))
		return false;
	json_object_foreach((json_t *)opts, k, v) {
		if (!strcmp(k, "gracePeriodSeconds") || !strcmp(k, "apiVersion") ||
		    !strcmp(k, "kind"))
			continue;
		if (!strcmp(k, "propagationPolicy") && json_is_string(v) &&
		    !strcmp(json_string_value(v), "Background"))
			continue;
		if (!strcmp(k, "orphanDependents") && !json_is_true(v))
			continue;
		if (!strcmp(k, "preconditions") && json_is_object(v) && json_object_size(v) == 1 &&
		    json_is_string(json_object_get(v, "uid"))) {
			*uid = json_string_value(json_object_get(v, "uid"));
			continue;
		}
		return false;
	}
	return true;
}

enum api_pstat api_pod_delete_mp_rv(const void *data, size_t len, const json_t *opts,
    const char *node, const char *now, bool *keep, char **put, size_t *putlen,
    char **answer, size_t *anslen)
{
	const char *uid;
	*put = *answer = NULL;
	*putlen = *anslen = 0;
	*keep = false;
	if (!plain_options(opts, &uid))
		return API_PSTAT_JSON;
	msgpack_zone z;
	msgpack_object pod, *md;
	if (!unpack_pod(data, len, &z, &pod, &md))
		return API_PSTAT_JSON;
	const msgpack_object *spec = mpe_key(&pod, "spec");
	const char *s;
	size_t n;
	if (mpe_key(md, "finalizers") || (node && !mpe_str_is(mpe_key(spec, "nodeName"), node)) ||
	    (uid && !mpe_str_is(mpe_key(md, "uid"), uid))) {
		msgpack_zone_destroy(&z);
		return API_PSTAT_JSON;
	}
	/* as delete_one reads them (pod_grace, get_int, api_get_str) */
	int64_t grace = 30, was = INT64_MAX;
	json_t *g = opts ? json_object_get(opts, "gracePeriodSeconds") : NULL;
	if (json_is_integer(g))
		grace = json_integer_value(g);
	else
		mpe_int(mpe_key(spec, "terminationGracePeriodSeconds"), &grace);
	mpe_int(mpe_key(md, "deletionGracePeriodSeconds"), &was);
	bool deleting = mpe_key(md, "deletionTimestamp") != NULL;
	/* a nodeName up to a NUL, as the JSON path reads it */
	bool bound = mpe_str(mpe_key(spec, "nodeName"), &s, &n) && n && *s;
	const msgpack_object *phase = mpe_key(mpe_key(&pod, "status"), "phase");
	bool done = mpe_str_is(phase, "Succeeded") || mpe_str_is(phase, "Failed");
	if (!bound || done)
		grace = 0;
	*keep = grace > 0;
	msgpack_object gv = { .type = grace < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER :
						  MSGPACK_OBJECT_POSITIVE_INTEGER };
	gv.via.i64 = grace;
	msgpack_object ts = mpe_cstr(now);
	/* the same edits of the pod and of its metadata alone */
	struct mpe_edit edits[2], md_edits[2];
	size_t ne = 0;
	if (!deleting || grace < was)
		edits[ne++] = (struct mpe_edit){ "metadata.deletionGracePeriodSeconds", MPE_SET, &gv, NULL };
	if (!deleting)
		edits[ne++] = (struct mpe_edit){ "metadata.deletionTimestamp", MPE_SET, &ts, NULL };
	for (size_t i = 0; i < ne; i++) {
		md_edits[i] = edits[i];
		md_edits[i].path += strlen("metadata.");
	}
	/* the answer: the pod as it was read, resourceVersion and all */
	if (!*keep)
		md->via.map.size++;
	char **out = *keep ? put : answer;
	size_t *outlen = *keep ? putlen : anslen;
	struct pod_at at;
	enum api_pstat ret = pod_spans(data, len, &at) ?
	    splice_metadata(data, len, &at, md, md_edits, ne, out, outlen) :
	    pack_edited(&pod, edits, ne, len, out, outlen);
	msgpack_zone_destroy(&z);
	return ret;
}
